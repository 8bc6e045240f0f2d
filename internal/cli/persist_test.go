package cli

import (
	"encoding/json"
	"fmt"
	"os"
	"path/filepath"
	"regexp"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/renewer/renewer/internal/certinfo"
	"github.com/renewer/renewer/internal/testca"
)

type pebbleLog struct {
	mu sync.Mutex
	b  strings.Builder
}

func (l *pebbleLog) Write(p []byte) (int, error) {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.b.Write(p)
}

// orders is how many orders Pebble has accepted.
func (l *pebbleLog) orders() int {
	l.mu.Lock()
	defer l.mu.Unlock()
	return strings.Count(l.b.String(), "Added order")
}

// The whole dns-persist-01 flow, as a user runs it, against Pebble, which
// looks the records up in a real Knot DNS; no DNS provider is configured.
// Before the records are published, `renew` says for each name what is
// wrong (no record, another account's record, an expired persistUntil)
// and places no order. `dns-persist record` prints the records; once they
// are published in Knot, it says so, and `renew` issues a certificate for
// a name and one for a name with its wildcard.
func TestDNSPersistRecordThenRenew(t *testing.T) {
	t.Parallel()
	knot := testca.StartKnot(t, testca.KnotZone{Name: "example.test", Key: "owner"})
	logs := &pebbleLog{}
	ca := testca.StartT(t, testca.Options{DNSServer: knot.Addr, Log: logs})
	dir := t.TempDir()
	until := time.Now().AddDate(1, 0, 0).UTC().Format(time.DateOnly)
	src := fmt.Sprintf(`storage { path = "state" }
acme {
  directory    = %q
  ca_bundle    = %q
  email        = "ops@example.test"
  accept_terms = true
}
certificate "wild" {
  domains = ["*.persist.example.test", "persist.example.test"]
  challenge "dns-persist" {
    policy        = "wildcard"
    persist_until = %q
    resolvers     = [%q]
  }
}
certificate "www" {
  domains = ["www.example.test"]
  challenge "dns-persist" { resolvers = [%q] }
}
`, ca.Directory, ca.CABundle, until, knot.Addr, knot.Addr)
	if err := os.WriteFile(filepath.Join(dir, "renewer.hcl"), []byte(src), 0o600); err != nil {
		t.Fatal(err)
	}

	code, out, errOut := runCLI(t, dir, "renew")
	if code != ExitFailure || !strings.Contains(out, "_validation-persist.persist.example.test.: no record") ||
		!strings.Contains(out, "_validation-persist.www.example.test.: no record") || !strings.Contains(out, "no order was placed") {
		t.Fatalf("renew without records: exit %d\n%s%s", code, out, errOut)
	}

	code, out, errOut = runCLI(t, dir, "dns-persist", "record")
	if code != ExitFailure || strings.Count(out, "_validation-persist.persist.example.test.: no record") != 1 {
		t.Fatalf("dns-persist record before publishing: exit %d, want 1\n%s%s", code, out, errOut)
	}
	t.Logf("renewer dns-persist record:\n%s", out)
	account := regexp.MustCompile(`(?m)^  account:  (\S+)$`).FindStringSubmatch(out)
	if account == nil {
		t.Fatalf("no account in:\n%s", out)
	}
	ts, _ := time.Parse(time.DateOnly, until)
	wildValue := fmt.Sprintf("pebble.letsencrypt.org; accounturi=%s; policy=wildcard; persistUntil=%d", account[1], ts.Unix())
	wwwValue := "pebble.letsencrypt.org; accounturi=" + account[1]
	for _, want := range []string{
		`certificate "wild" at ` + ca.Directory,
		"issuer:   pebble.letsencrypt.org (from the CA's directory)",
		"form:     draft-ietf-acme-dns-persist-01",
		"record for *.persist.example.test, persist.example.test:",
		fmt.Sprintf("_validation-persist.persist.example.test. 3600 IN TXT %q", wildValue),
		"name:  _validation-persist.persist.example.test\n    value: " + wildValue + "\n",
		fmt.Sprintf("_validation-persist.www.example.test. 3600 IN TXT %q", wwwValue),
		"name:  _validation-persist.www.example.test\n    value: " + wwwValue + "\n",
		"published: NO: dns-persist-01 record not usable: _validation-persist.www.example.test.: no record",
	} {
		if !strings.Contains(out, want) {
			t.Errorf("dns-persist record lacks %q", want)
		}
	}

	// Another account's record, and this account's with a persistUntil
	// that has passed.
	other := strings.TrimRight(account[1], "0123456789") + "424242"
	if err := knot.SetTXT("example.test", "owner", "_validation-persist.www.example.test", "pebble.letsencrypt.org; accounturi="+other); err != nil {
		t.Fatal(err)
	}
	expired := strings.Replace(wildValue, fmt.Sprint(ts.Unix()), "1700000000", 1)
	if err := knot.SetTXT("example.test", "owner", "_validation-persist.persist.example.test", expired); err != nil {
		t.Fatal(err)
	}
	// Named, so that the backoff after the first failure does not hold
	// them back.
	code, out, errOut = runCLI(t, dir, "renew", "wild", "www")
	if code != ExitFailure || !strings.Contains(out, "another account: the record for issuer pebble.letsencrypt.org names the account "+other+", not this account "+account[1]) ||
		!strings.Contains(out, "expired persistUntil: the record for this account has persistUntil=1700000000 (2023-11-14T22:13:20Z), which has passed") {
		t.Fatalf("renew with wrong records: exit %d\n%s%s", code, out, errOut)
	}
	if n := logs.orders(); n != 0 {
		t.Fatalf("%d orders placed while the records could not validate", n)
	}

	// The printed records, published as printed.
	if err := knot.SetTXT("example.test", "owner", "_validation-persist.www.example.test", wwwValue); err != nil {
		t.Fatal(err)
	}
	if err := knot.SetTXT("example.test", "owner", "_validation-persist.persist.example.test", wildValue); err != nil {
		t.Fatal(err)
	}
	code, out, errOut = runCLI(t, dir, "dns-persist", "record", "www")
	if code != ExitOK || !strings.Contains(out, "published: yes") || strings.Contains(out, `"wild"`) {
		t.Fatalf("dns-persist record www after publishing: exit %d\n%s%s", code, out, errOut)
	}
	// A directory URL of its own is its own staging twin.
	code, out, errOut = runCLI(t, dir, "dns-persist", "record", "--staging", "www")
	if code != ExitOK || !strings.Contains(out, `certificate "www" at `+ca.Directory) {
		t.Fatalf("dns-persist record --staging www: exit %d\n%s%s", code, out, errOut)
	}
	code, out, errOut = runCLI(t, dir, "renew", "wild", "www")
	if code != ExitOK {
		t.Fatalf("renew with the records published: exit %d\n%s%s", code, out, errOut)
	}
	for name, want := range map[string]string{"wild": "[*.persist.example.test persist.example.test]", "www": "[www.example.test]"} {
		f, err := certinfo.Load(filepath.Join(dir, "state", "live", name, "cert.pem"), filepath.Join(dir, "state", "live", name, "privkey.pem"))
		if err != nil {
			t.Fatalf("%s: %v", name, err)
		}
		if got := fmt.Sprint(f.Names); got != want {
			t.Errorf("%s: names %s, want %s", name, got, want)
		}
	}
	if n := logs.orders(); n != 2 {
		t.Errorf("%d orders placed, want 2", n)
	}
}

// status warns (exit 1) while a dns-persist record's persist_until is
// within 30 days, and names it, in the table and in --json; 31 days ahead
// all is well.
func TestStatusWarnsBeforePersistUntil(t *testing.T) {
	now := time.Now()
	for _, tc := range []struct {
		until time.Duration
		code  int
	}{{31 * 24 * time.Hour, ExitOK}, {20 * 24 * time.Hour, ExitFailure}, {-time.Hour, ExitFailure}} {
		dir := t.TempDir()
		until := now.Add(tc.until).UTC().Format(time.RFC3339)
		src := fmt.Sprintf(`storage { path = "state" }
acme { accept_terms = true }
certificate "www" {
  domains = ["www.example.com"]
  challenge "dns-persist" { persist_until = %q }
}
`, until)
		if err := os.WriteFile(filepath.Join(dir, "renewer.hcl"), []byte(src), 0o600); err != nil {
			t.Fatal(err)
		}
		install(t, dir, "www", []string{"www.example.com"}, now.Add(-time.Hour), now.Add(90*24*time.Hour))
		code, out, errOut := runCLI(t, dir, "status")
		if code != tc.code {
			t.Errorf("persist_until in %s: status exit %d, want %d\n%s%s", tc.until, code, tc.code, out, errOut)
		}
		warned := strings.Contains(out, "www: dns-persist: The dns-persist record of www ")
		if warned != (tc.code != ExitOK) {
			t.Errorf("persist_until in %s: warning shown %v\n%s", tc.until, warned, out)
		}
		_, out, _ = runCLI(t, dir, "status", "--json")
		var rep StatusReport
		if err := json.Unmarshal([]byte(out), &rep); err != nil {
			t.Fatal(err)
		}
		c := rep.Certificates[0]
		if c.PersistUntil.UTC().Format(time.RFC3339) != until || (c.PersistWarning != "") != (tc.code != ExitOK) {
			t.Errorf("persist_until in %s: --json persist_until %s, persist_warning %q", tc.until, c.PersistUntil, c.PersistWarning)
		}
	}
}
