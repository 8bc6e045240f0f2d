package agent

import (
	"errors"
	"fmt"
	"log/slog"
	"path/filepath"
	"strings"
	"testing"

	"github.com/renewer/renewer/internal/status"
	"github.com/renewer/renewer/internal/testca"
)

// An install directory on a read-only disk blocks the order before the CA
// is asked (the CA here is a dead port: had renewer asked, the error would
// say it is unreachable); a missing hook program is a warning in the log,
// and the same findings are what Preflight gives plan.
func TestPreflightBlocksOrder(t *testing.T) {
	t.Parallel()
	port, err := testca.FreePort()
	if err != nil {
		t.Fatal(err)
	}
	ro := filepath.Join(testca.ReadOnlyDir(t), "www")
	logs := &syncLog{t: t}
	a, cfg := setupHCL(t, t.TempDir(), fmt.Sprintf(`
storage { path = "state" }
acme {
  directory    = "https://127.0.0.1:%d/dir"
  accept_terms = true
}
certificate "www" {
  domains = ["www.example.test"]
  challenge "http" { listen = "127.0.0.1:%d" }
  install { dir = %q }
  hook "reload" { command = ["/no/such/reload"] }
}`, port, port, ro))
	a.log = slog.New(slog.NewTextHandler(logs, nil))
	res := pass(t, a, PassOptions{})
	var pe *PreflightError
	if res[0].Action != status.Failed || !errors.As(res[0].Err, &pe) {
		t.Fatalf("result %+v, want a pre-flight failure", res[0])
	}
	if msg := res[0].Err.Error(); !strings.Contains(msg, "not ordered: install directory "+ro+" is not writable") || strings.Contains(msg, "unreachable") {
		t.Errorf("error: %s", msg)
	}
	if !strings.Contains(logs.String(), `pre-flight check: hook \"reload\": /no/such/reload does not exist`) {
		t.Errorf("no warning about the missing hook program in the log")
	}
	fs := a.Preflight(cfg.Certificates[0])
	if len(fs) != 2 || fs[0].Check != "install" || fs[1].Check != "hook" {
		t.Errorf("findings %v", fs)
	}
}
