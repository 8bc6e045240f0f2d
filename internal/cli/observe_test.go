package cli

import (
	"encoding/json"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"regexp"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/renewer/renewer/internal/certinfo/certtest"
	"github.com/renewer/renewer/internal/notify"
	"github.com/renewer/renewer/internal/watch/watchtest"
)

const day = 24 * time.Hour

// A certificate nobody renews, served over real TLS on loopback and close
// to expiry: `status` exits 2 and names it (table and JSON), and `renew`
// (what the timer runs) sends a notification for it, once.
func TestWatchedEndpointNearExpiry(t *testing.T) {
	now := time.Now()
	srv := watchtest.Serve(t, certtest.Options{Names: []string{"cdn.example.net"},
		NotBefore: now.Add(-360 * day), NotAfter: now.Add(5 * day)})
	var mu sync.Mutex
	var got []notify.Event
	hook := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		body, _ := io.ReadAll(r.Body)
		var e notify.Event
		if err := json.Unmarshal(body, &e); err != nil {
			t.Errorf("webhook body: %v", err)
		}
		mu.Lock()
		got = append(got, e)
		mu.Unlock()
	}))
	defer hook.Close()
	secretURL := hook.URL + "/services/T0K3N-S3CR3T"

	dir := t.TempDir()
	src := fmt.Sprintf(`
storage { path = "state" }
acme { accept_terms = true }
certificate "a" {
  domains = ["a.example.com"]
  challenge "http" { listen = "127.0.0.1:80" }
}
watch "megaphone" {
  endpoint    = %q
  server_name = "cdn.example.net"
  ca_bundle   = %q
}
notify "ops" { webhook = %q }
`, srv.Endpoint, srv.CAFile, secretURL)
	if err := os.WriteFile(filepath.Join(dir, "renewer.hcl"), []byte(src), 0o600); err != nil {
		t.Fatal(err)
	}
	install(t, dir, "a", []string{"a.example.com"}, now.Add(-time.Hour), now.Add(90*day))

	code, out, errOut := runCLI(t, dir, "status")
	if code != ExitCritical {
		t.Errorf("status exit %d, want %d\n%s%s", code, ExitCritical, out, errOut)
	}
	if !strings.Contains(out, "\nWATCH ") || !regexpMatch(`(?m)^megaphone +`+srv.Endpoint+` +cdn\.example\.net +20[0-9-]+ [0-9:]+ UTC +(4\.9|5\.0) +critical +expires in (4\.9|5\.0) days$`, out) {
		t.Errorf("status table does not name the watch:\n%s", out)
	}
	if !regexpMatch(`(?m)^a +a\.example\.com .* ok$`, out) {
		t.Errorf("status table lost the certificate:\n%s", out)
	}

	code, out, _ = runCLI(t, dir, "status", "--json")
	var rep StatusReport
	if err := json.Unmarshal([]byte(out), &rep); err != nil {
		t.Fatalf("status --json: %v\n%s", err, out)
	}
	if code != ExitCritical || rep.Health != "critical" || len(rep.Watches) != 1 || len(rep.Certificates) != 1 {
		t.Fatalf("status --json (exit %d): %+v", code, rep)
	}
	w := rep.Watches[0]
	if w.Name != "megaphone" || w.Endpoint != srv.Endpoint || w.Health != "critical" || !w.Verified || w.DaysLeft == nil ||
		*w.DaysLeft < 4.9 || *w.DaysLeft > 5 || w.Names[0] != "cdn.example.net" || w.Issuer != "watchtest CA" || w.WarnDays != 21 || w.CritDays != 7 {
		t.Errorf("watch in JSON: %+v", w)
	}

	// Names select watches as well as certificates.
	if code, out, _ := runCLI(t, dir, "status", "megaphone"); code != ExitCritical || strings.Contains(out, "a.example.com") || !strings.Contains(out, "megaphone") {
		t.Errorf("status megaphone (exit %d):\n%s", code, out)
	}
	if code, out, _ := runCLI(t, dir, "status", "a"); code != ExitOK || strings.Contains(out, "megaphone") {
		t.Errorf("status a (exit %d):\n%s", code, out)
	}

	// renew: nothing is due, the watch is checked, the notification sent.
	code, out, errOut = runCLI(t, dir, "renew")
	if code != ExitOK {
		t.Fatalf("renew exit %d\n%s%s", code, out, errOut)
	}
	mu.Lock()
	events := append([]notify.Event(nil), got...)
	mu.Unlock()
	if len(events) != 1 {
		t.Fatalf("want one notification, got %+v\n%s", events, errOut)
	}
	e := events[0]
	if e.Kind != notify.Expiring || e.Severity != notify.Critical || e.Subject != notify.Watch || e.Name != "megaphone" ||
		e.Endpoint != srv.Endpoint || !strings.Contains(e.Message, "renewer does not renew it") {
		t.Errorf("notification: %+v", e)
	}
	if !strings.Contains(errOut, "notification sent") || strings.Contains(errOut, "T0K3N-S3CR3T") {
		t.Errorf("renew's log:\n%s", errOut)
	}
	// A second run does not repeat it: the memory is on disk.
	if code, _, errOut := runCLI(t, dir, "renew"); code != ExitOK || strings.Contains(errOut, "notification sent") {
		t.Errorf("second renew (exit %d) notified again:\n%s", code, errOut)
	}
	mu.Lock()
	defer mu.Unlock()
	if len(got) != 1 {
		t.Errorf("%d notifications after two runs, want 1", len(got))
	}
}

// Watches count in the exit code like certificates: ok, warning (within
// warn_before, or unreachable), critical.
func TestStatusExitCodesWithWatches(t *testing.T) {
	now := time.Now()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	closed := ln.Addr().String()
	ln.Close()
	for _, tc := range []struct {
		name string
		left time.Duration // 0: unreachable
		code int
		want string
	}{
		{"fresh", 60 * day, ExitOK, "ok"},
		{"within warn_before", 15 * day, ExitFailure, "warning"},
		{"within critical_before", 3 * day, ExitCritical, "critical"},
		{"expired", -day, ExitCritical, "critical"},
		{"unreachable", 0, ExitFailure, "warning"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			endpoint, bundle := closed, ""
			if tc.left != 0 {
				srv := watchtest.Serve(t, certtest.Options{Names: []string{"x.example.net"}, NotBefore: now.Add(tc.left - 90*day), NotAfter: now.Add(tc.left)})
				endpoint, bundle = srv.Endpoint, fmt.Sprintf("ca_bundle = %q", srv.CAFile)
			}
			dir := t.TempDir()
			src := fmt.Sprintf("storage { path = \"state\" }\nacme {}\nwatch \"x\" {\n  endpoint = %q\n  server_name = \"x.example.net\"\n  %s\n}\n", endpoint, bundle)
			if err := os.WriteFile(filepath.Join(dir, "renewer.hcl"), []byte(src), 0o600); err != nil {
				t.Fatal(err)
			}
			code, out, errOut := runCLI(t, dir, "status", "--json")
			var rep StatusReport
			if err := json.Unmarshal([]byte(out), &rep); err != nil {
				t.Fatalf("%v\n%s%s", err, out, errOut)
			}
			if code != tc.code || rep.Health != tc.want || len(rep.Watches) != 1 || rep.Watches[0].Health != tc.want {
				t.Errorf("exit %d health %s, want %d %s\n%s", code, rep.Health, tc.code, tc.want, out)
			}
			if tc.left == 0 && (rep.Watches[0].Error == "" || rep.Watches[0].DaysLeft != nil) {
				t.Errorf("unreachable watch: %+v", rep.Watches[0])
			}
		})
	}
}

func regexpMatch(re, s string) bool { return regexp.MustCompile(re).MatchString(s) }
