package agent

import (
	"fmt"
	"log/slog"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"testing"

	"github.com/renewer/renewer/internal/config"
	"github.com/renewer/renewer/internal/status"
	"github.com/renewer/renewer/internal/testca"
)

type lockedLog struct {
	mu sync.Mutex
	b  strings.Builder
}

func (l *lockedLog) Write(p []byte) (int, error) {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.b.Write(p)
}

func (l *lockedLog) String() string {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.b.String()
}

// With the primary CA down, a fallback CA that the names' CAA records
// forbid (Knot serves `example.test CAA 0 issue "ca.example.test"`; the
// first fallback's directory lists only "forbidden.example.org") is
// skipped, and the log says why; it never sees an order. The next
// fallback, which CAA permits, issues.
func TestFallbackSkipsCAAForbiddenCA(t *testing.T) {
	t.Parallel()
	knot := testca.StartKnot(t, testca.KnotZone{Name: "example.test", Key: "renewer", Records: []string{`@ CAA 0 issue "ca.example.test"`}})
	var forbiddenLog lockedLog
	forbidden := testca.StartStepCAT(t, testca.Options{DNSServer: knot.Addr, CAAIdentities: []string{"forbidden.example.org"}, Log: &forbiddenLog})
	permitted := testca.StartStepCAT(t, testca.Options{DNSServer: knot.Addr, CAAIdentities: []string{"ca.example.test"}})
	port, err := testca.FreePort()
	if err != nil {
		t.Fatal(err)
	}
	dir := t.TempDir()
	logs := &syncLog{t: t}
	src := fmt.Sprintf(`
storage { path = "state" }
acme {
  directory    = "https://127.0.0.1:%d/dir"
  email        = "ops@example.test"
  accept_terms = true
  fallback {
    directory = %q
    ca_bundle = %q
  }
  fallback {
    directory = %q
    ca_bundle = %q
  }
}
certificate "www" {
  domains = ["caa.example.test"]
%s}`, port, forbidden.Directory, forbidden.CABundle, permitted.Directory, permitted.CABundle, rfc2136Challenge(knot))
	file := filepath.Join(dir, "renewer.hcl")
	if err := os.WriteFile(file, []byte(src), 0o600); err != nil {
		t.Fatal(err)
	}
	cfg, err := config.Load(file)
	if err != nil {
		t.Fatal(err)
	}
	a, err := New(cfg, Options{Log: slog.New(slog.NewTextHandler(logs, nil)), DNSProviders: testProviders})
	if err != nil {
		t.Fatal(err)
	}
	defer a.Close()
	res := pass(t, a, PassOptions{})
	if res[0].Action != status.Obtained {
		t.Fatalf("result %+v", res[0])
	}
	if in := a.Inspect(cfg.Certificates[0]); in.CA != permitted.Directory {
		t.Errorf("issued by %q, want the permitted fallback %q", in.CA, permitted.Directory)
	}
	out := logs.String()
	if !strings.Contains(out, "skipping a fallback CA that the names' CAA records forbid") || !strings.Contains(out, forbidden.Directory) ||
		!strings.Contains(out, `CAA of caa.example.test at example.test: it permits only 0 issue \"ca.example.test\", not [forbidden.example.org]`) {
		t.Errorf("no log line says why the forbidden fallback was skipped:\n%s", out)
	}
	if strings.Contains(forbiddenLog.String(), "path=/acme/acme/new-order") || strings.Contains(forbiddenLog.String(), "path=/acme/acme/new-account") {
		t.Error("the CAA-forbidden fallback CA was sent an order")
	}
}
