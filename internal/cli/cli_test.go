package cli

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/renewer/renewer/internal/certinfo/certtest"
	"github.com/renewer/renewer/internal/store"
)

// runCLI runs renewer in-process with the given config text.
func runCLI(t *testing.T, dir string, args ...string) (int, string, string) {
	t.Helper()
	var out, errOut bytes.Buffer
	e := &env{stdout: &out, stderr: &errOut, getenv: func(k string) string {
		if k == "RENEWER_CONFIG" {
			return filepath.Join(dir, "renewer.hcl")
		}
		return ""
	}}
	code := run(context.Background(), e, args)
	return code, out.String(), errOut.String()
}

// install puts a certificate for name into the storage under dir, valid
// from notBefore to notAfter.
func install(t *testing.T, dir, name string, domains []string, notBefore, notAfter time.Time) {
	t.Helper()
	st, err := store.Open(filepath.Join(dir, "state"), 3)
	if err != nil {
		t.Fatal(err)
	}
	full, key := certtest.Issue(t, certtest.Options{Names: domains, NotBefore: notBefore, NotAfter: notAfter})
	leafEnd := bytes.Index(full, []byte("-----END CERTIFICATE-----")) + len("-----END CERTIFICATE-----\n")
	if _, err := st.Install(name, domains, store.Bundle{Cert: full[:leafEnd], Chain: full[leafEnd:], Key: key}, notBefore.Add(time.Hour)); err != nil {
		t.Fatal(err)
	}
}

func writeConfig(t *testing.T, dir string, names ...string) {
	t.Helper()
	src := "storage { path = \"state\" }\nacme { accept_terms = true }\n"
	for _, n := range names {
		src += fmt.Sprintf("certificate %q {\n  domains = [%q]\n  challenge \"http\" { listen = \"127.0.0.1:80\" }\n}\n", n, n+".example.com")
	}
	if err := os.WriteFile(filepath.Join(dir, "renewer.hcl"), []byte(src), 0o600); err != nil {
		t.Fatal(err)
	}
}

// status exits 0 when all is well, 1 when something is due, 2 when a
// certificate is expired or in its last tenth of life; the worst one counts.
func TestStatusExitCodes(t *testing.T) {
	now := time.Now()
	fresh := func(dir, n string) {
		install(t, dir, n, []string{n + ".example.com"}, now.Add(-time.Hour), now.Add(90*24*time.Hour))
	}
	due := func(dir, n string) {
		install(t, dir, n, []string{n + ".example.com"}, now.Add(-70*24*time.Hour), now.Add(20*24*time.Hour))
	}
	lastTenth := func(dir, n string) {
		install(t, dir, n, []string{n + ".example.com"}, now.Add(-85*24*time.Hour), now.Add(5*24*time.Hour))
	}
	expired := func(dir, n string) {
		install(t, dir, n, []string{n + ".example.com"}, now.Add(-91*24*time.Hour), now.Add(-time.Hour))
	}

	for _, tc := range []struct {
		name   string
		setup  map[string]func(dir, n string)
		code   int
		health map[string]string
	}{
		{"all fresh", map[string]func(string, string){"a": fresh, "b": fresh}, ExitOK, map[string]string{"a": "ok", "b": "ok"}},
		{"one due", map[string]func(string, string){"a": fresh, "b": due}, ExitFailure, map[string]string{"a": "ok", "b": "warning"}},
		{"one missing", map[string]func(string, string){"a": fresh, "b": nil}, ExitFailure, map[string]string{"b": "warning"}},
		{"last tenth", map[string]func(string, string){"a": due, "b": lastTenth}, ExitCritical, map[string]string{"a": "warning", "b": "critical"}},
		{"expired", map[string]func(string, string){"a": fresh, "b": expired}, ExitCritical, map[string]string{"b": "critical"}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			dir := t.TempDir()
			writeConfig(t, dir, "a", "b")
			for n, f := range tc.setup {
				if f != nil {
					f(dir, n)
				}
			}
			code, out, errOut := runCLI(t, dir, "status")
			if code != tc.code {
				t.Errorf("status exit %d, want %d\n%s%s", code, tc.code, out, errOut)
			}
			code, out, _ = runCLI(t, dir, "status", "--json")
			if code != tc.code {
				t.Errorf("status --json exit %d, want %d", code, tc.code)
			}
			var rep StatusReport
			if err := json.Unmarshal([]byte(out), &rep); err != nil {
				t.Fatalf("status --json: %v\n%s", err, out)
			}
			for _, c := range rep.Certificates {
				if want, ok := tc.health[c.Name]; ok && c.Health != want {
					t.Errorf("%s health %s, want %s", c.Name, c.Health, want)
				}
			}
		})
	}
}

func TestStatusTableAndPlan(t *testing.T) {
	dir := t.TempDir()
	writeConfig(t, dir, "a", "b")
	now := time.Now()
	install(t, dir, "a", []string{"a.example.com"}, now.Add(-time.Hour), now.Add(90*24*time.Hour))
	_, out, _ := runCLI(t, dir, "status")
	lines := strings.Split(strings.TrimSpace(out), "\n")
	if len(lines) != 3 || !strings.HasPrefix(lines[0], "NAME") {
		t.Fatalf("status table:\n%s", out)
	}
	if !strings.Contains(lines[1], "a.example.com") || !strings.Contains(lines[1], " 90.0 ") && !strings.Contains(lines[1], " 89.9 ") {
		t.Errorf("row a: %q", lines[1])
	}
	if !strings.Contains(lines[2], "now (no certificate installed)") {
		t.Errorf("row b: %q", lines[2])
	}
	code, out, _ := runCLI(t, dir, "plan")
	if code != ExitOK || !strings.Contains(out, "a  not due") || !strings.Contains(out, "b  DUE NOW  no certificate installed") {
		t.Errorf("plan (exit %d):\n%s", code, out)
	}
	// The renewal time is 1/3 of the lifetime before expiry: 60 days from now.
	want := now.Add(-time.Hour).Add(60 * 24 * time.Hour).UTC().Format("2006-01-02")
	if !strings.Contains(out, want) {
		t.Errorf("plan does not show renewal on %s:\n%s", want, out)
	}
}

func TestValidateExitCodes(t *testing.T) {
	dir := t.TempDir()
	writeConfig(t, dir, "a")
	if code, out, _ := runCLI(t, dir, "validate"); code != ExitOK || !strings.Contains(out, "valid, 1 certificate") {
		t.Errorf("valid config: exit %d %q", code, out)
	}
	os.WriteFile(filepath.Join(dir, "renewer.hcl"), []byte("acme {}\nbogus {}\n"), 0o600)
	// Issue 14 #12: an invalid config is exit 3 for validate too, as for
	// every other command (and as the README says).
	code, _, errOut := runCLI(t, dir, "validate")
	if code != ExitUsage || !strings.Contains(errOut, "renewer.hcl:2:1: Unsupported block type") {
		t.Errorf("invalid config: exit %d, want %d\n%s", code, ExitUsage, errOut)
	}
	// Other commands refuse an invalid config with the usage code: nothing attempted.
	if code, _, _ := runCLI(t, dir, "renew"); code != ExitUsage {
		t.Errorf("renew on invalid config: exit %d, want %d", code, ExitUsage)
	}
}
