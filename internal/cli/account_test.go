package cli

import (
	"bytes"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/renewer/renewer/internal/notify"
	"github.com/renewer/renewer/internal/testca"
)

// `renewer account rollover` against Pebble, through a proxy that can fail
// every request: the account gets a new key and the event is notified;
// the next renewal orders with it. With the CA failing, it exits 1, the
// key file stays byte for byte, a warning is notified, and renewals still
// succeed. An unknown --ca is a usage error.
func TestAccountRolloverCommand(t *testing.T) {
	t.Parallel()
	ca := testca.StartT(t, testca.Options{})
	proxy, err := testca.StartFaultProxy(ca, 0, 1) // passes everything until SetDown
	if err != nil {
		t.Fatal(err)
	}
	defer proxy.Close()
	events := make(chan notify.Event, 10)
	hook := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		var e notify.Event
		body, _ := io.ReadAll(r.Body)
		if err := json.Unmarshal(body, &e); err == nil {
			events <- e
		}
	}))
	defer hook.Close()
	dir := t.TempDir()
	src := fmt.Sprintf(`
storage { path = %q }
acme {
  directory    = %q
  ca_bundle    = %q
  email        = "ops@example.test"
  accept_terms = true
}
certificate "www" {
  domains = ["www.roll.example.test"]
  ari     = false
  challenge "http" { listen = "127.0.0.1:%d" }
}
notify "ops" {
  webhook = %q
  on      = ["account_rollover"]
}
`, filepath.Join(dir, "state"), proxy.Directory, ca.CABundle, ca.HTTPPort, hook.URL)
	if err := os.WriteFile(filepath.Join(dir, "renewer.hcl"), []byte(src), 0o600); err != nil {
		t.Fatal(err)
	}
	expect := func(args []string, want int) string {
		t.Helper()
		code, out, errOut := runCLI(t, dir, args...)
		if code != want {
			t.Fatalf("renewer %s: exit %d, want %d\n%s\n%s", strings.Join(args, " "), code, want, out, errOut)
		}
		return out + errOut
	}
	event := func() notify.Event {
		t.Helper()
		select {
		case e := <-events:
			return e
		case <-time.After(30 * time.Second):
			t.Fatal("no notification in 30s")
		}
		return notify.Event{}
	}
	keyFile := func() []byte {
		t.Helper()
		m, _ := filepath.Glob(filepath.Join(dir, "state", "accounts", "*", "key.pem"))
		if len(m) != 1 {
			t.Fatalf("account key files: %v", m)
		}
		b, err := os.ReadFile(m[0])
		if err != nil {
			t.Fatal(err)
		}
		return b
	}

	expect([]string{"renew"}, ExitOK)
	before := keyFile()
	out := expect([]string{"account", "rollover"}, ExitOK)
	if !strings.Contains(out, "rolled over") || !strings.Contains(out, "/my-account/") {
		t.Errorf("rollover output:\n%s", out)
	}
	if bytes.Equal(keyFile(), before) {
		t.Fatal("the key file did not change")
	}
	if e := event(); e.Kind != notify.AccountRollover || e.Severity != notify.Info || e.Subject != notify.Account || !strings.Contains(e.Message, "new key") {
		t.Errorf("notification: %+v", e)
	}
	expect([]string{"renew", "--force"}, ExitOK)

	// The CA is unreachable.
	rolled := keyFile()
	proxy.SetDown(true)
	out = expect([]string{"account", "rollover", "--log-level", "error"}, ExitFailure)
	proxy.SetDown(false)
	if !bytes.Equal(keyFile(), rolled) {
		t.Fatal("a failed rollover changed the key file")
	}
	if m, _ := filepath.Glob(filepath.Join(dir, "state", "accounts", "*", "key.next.pem")); len(m) != 0 {
		t.Errorf("a rollover that sent nothing left a pending key: %v", m)
	}
	if e := event(); e.Kind != notify.AccountRollover || e.Severity != notify.Warning || e.Error == "" {
		t.Errorf("notification of the failure: %+v", e)
	}
	t.Logf("failed as expected:\n%s", out)
	expect([]string{"renew", "--force"}, ExitOK)

	if out := expect([]string{"account", "rollover", "--ca", "nowhere.example"}, ExitUsage); !strings.Contains(out, "no configured CA") {
		t.Errorf("unknown CA:\n%s", out)
	}
	expect([]string{"account", "frobnicate"}, ExitUsage)
	select {
	case e := <-events:
		t.Errorf("a usage error was notified: %+v", e)
	case <-time.After(200 * time.Millisecond):
	}
}
