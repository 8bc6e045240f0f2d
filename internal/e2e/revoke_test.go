package e2e

import (
	"encoding/json"
	"fmt"
	"net/http"
	"net/http/httptest"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/renewer/renewer/internal/cli"
	"github.com/renewer/renewer/internal/testca"
)

// `renewer revoke` runs its replacement pass as `renew` does: reported
// ("renewed" notified, metrics counted). `revoke --no-renew` leaves a
// certificate renewer knows to be revoked: status is critical (exit 2) and
// plan and renew say it is due, also with a CA that offers no ARI.
func TestRevokeReportsAndRevokedIsDue(t *testing.T) {
	t.Parallel()
	var mu sync.Mutex
	var events []string
	hook := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		var e struct {
			Event string `json:"event"`
			Name  string `json:"name"`
		}
		if err := json.NewDecoder(r.Body).Decode(&e); err == nil {
			mu.Lock()
			events = append(events, e.Name+":"+e.Event)
			mu.Unlock()
		}
	}))
	t.Cleanup(hook.Close)
	seen := func(want string) bool {
		mu.Lock()
		defer mu.Unlock()
		n := 0
		for _, e := range events {
			if e == want {
				n++
			}
		}
		return n > 0
	}
	ca := testca.StartT(t, testca.Options{})
	dir := t.TempDir()
	config := filepath.Join(dir, "renewer.hcl")
	write(t, config, caConfig(ca, filepath.Join(dir, "state"))+fmt.Sprintf(`
certificate "www" {
  domains = ["revoke.example.test"]
  challenge "http" { listen = "127.0.0.1:%d" }
  ari = false
}
notify "ops" {
  webhook = %q
  on      = ["all"]
}
`, ca.HTTPPort, hook.URL))
	if code, out, _ := renewer(t, "--config", config, "renew"); code != cli.ExitOK {
		t.Fatalf("renew: exit %d\n%s", code, out)
	}
	mu.Lock()
	events = nil
	mu.Unlock()
	code, out, _ := renewer(t, "--config", config, "revoke", "--reason", "superseded", "www")
	if code != cli.ExitOK || !strings.Contains(out, "www\trenewed") {
		t.Fatalf("revoke: exit %d\n%s", code, out)
	}
	if !seen("www:renewed") {
		t.Errorf("no renewed notification after revoke's replacement pass: %v", events)
	}

	code, out, _ = renewer(t, "--config", config, "revoke", "--no-renew", "www")
	if code != cli.ExitOK {
		t.Fatalf("revoke --no-renew: exit %d\n%s", code, out)
	}
	if code, st := status(t, config, "www"); code != cli.ExitCritical || st.Health != "critical" || !st.Due || st.Reason != "revoked" {
		t.Errorf("status after revoke --no-renew: exit %d %+v", code, st)
	}
	if _, out, _ := renewer(t, "--config", config, "plan"); !strings.Contains(out, "DUE NOW") || !strings.Contains(out, "revoked") {
		t.Errorf("plan after revoke --no-renew:\n%s", out)
	}
	code, out, _ = renewer(t, "--config", config, "renew")
	if code != cli.ExitOK || !strings.Contains(out, "www  renewed") || !strings.Contains(out, "(revoked)") {
		t.Fatalf("renew after revoke --no-renew: exit %d\n%s", code, out)
	}
	if code, st := status(t, config, "www"); code != cli.ExitOK || st.Health != "ok" {
		t.Errorf("status after the replacement: exit %d %+v", code, st)
	}
	deadline := time.Now().Add(10 * time.Second)
	for !seen("www:recovered") && time.Now().Before(deadline) {
		time.Sleep(50 * time.Millisecond)
	}
	if !seen("www:renewal_requested") || !seen("www:recovered") {
		t.Errorf("notifications: %v", events)
	}
}
