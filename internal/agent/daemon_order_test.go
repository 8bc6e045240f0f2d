package agent

import (
	"fmt"
	"strings"
	"testing"

	"github.com/renewer/renewer/internal/testca"
)

// Issue 14 #13: on shutdown the daemon logs "stopping: no new work"
// before "renewer daemon stopped", every time (they came in either order,
// or the first not at all). Its CA is dead: each pass fails at once.
func TestDaemonStopLogOrder(t *testing.T) {
	port, err := testca.FreePort()
	if err != nil {
		t.Fatal(err)
	}
	_, cfg := setupHCL(t, t.TempDir(), fmt.Sprintf(`
storage { path = "state" }
acme {
  directory    = "https://127.0.0.1:%d/dir"
  accept_terms = true
}
certificate "www" {
  domains = ["www.example.test"]
  ari     = false
  challenge "http" { listen = "127.0.0.1:1" }
}`, port))
	for i := range 10 {
		logs, stop := runDaemon(t, cfg)
		waitLog(t, logs, "next wake-up")
		if err := stop(); err != nil {
			t.Fatal(err)
		}
		out := logs.String()
		stopping, stopped := strings.Index(out, "stopping: no new work"), strings.Index(out, "renewer daemon stopped")
		if stopping < 0 || stopped < 0 || stopping > stopped {
			t.Fatalf("run %d: shutdown logged out of order (stopping at %d, stopped at %d):\n%s", i, stopping, stopped, out)
		}
	}
}
