package cli

import (
	"encoding/json"
	"os"
	"path/filepath"
	"regexp"
	"strings"
	"testing"
	"time"
	"unicode/utf8"

	"github.com/renewer/renewer/internal/store"
)

// Issue 14 #13: a long last error does not stretch the status table (it is
// cut with an ellipsis); status --json keeps it whole.
func TestStatusLastResultTruncated(t *testing.T) {
	dir := t.TempDir()
	writeConfig(t, dir, "a")
	now := time.Now()
	install(t, dir, "a", []string{"a.example.com"}, now.Add(-time.Hour), now.Add(90*24*time.Hour))
	st, err := store.Open(filepath.Join(dir, "state"), 3)
	if err != nil {
		t.Fatal(err)
	}
	long := "obtain: acme: error: 400 :: POST :: https://acme.example/new-order :: urn:ietf:params:acme:error:rejectedIdentifier :: " +
		strings.Repeat("the CA refuses to issue for this name because of its policy; ", 5) + "END"
	if err := st.SaveState("a", store.State{LastResult: "failed", LastError: long, Failures: 1}); err != nil {
		t.Fatal(err)
	}
	_, out, _ := runCLI(t, dir, "status")
	for _, l := range strings.Split(strings.TrimSpace(out), "\n") {
		if n := utf8.RuneCountInString(l); n > 250 {
			t.Errorf("status line of %d characters:\n%s", n, l)
		}
	}
	if !strings.Contains(out, "failed: obtain: acme: error: 400") || !strings.Contains(out, "…") || strings.Contains(out, "END") {
		t.Errorf("last result not cut with an ellipsis:\n%s", out)
	}
	_, out, _ = runCLI(t, dir, "status", "--json")
	var rep StatusReport
	if err := json.Unmarshal([]byte(out), &rep); err != nil {
		t.Fatal(err)
	}
	if rep.Certificates[0].LastError != long {
		t.Errorf("status --json last_error %q, want the whole text", rep.Certificates[0].LastError)
	}
}

// Issue 14 #13: plan says "not due" once, not "not due  not due".
func TestPlanVerdictOnce(t *testing.T) {
	dir := t.TempDir()
	writeConfig(t, dir, "a")
	now := time.Now()
	install(t, dir, "a", []string{"a.example.com"}, now.Add(-time.Hour), now.Add(90*24*time.Hour))
	_, out, _ := runCLI(t, dir, "plan")
	if strings.Count(out, "not due") != 1 || !regexp.MustCompile(`(?m)^a +not due +renewal at `).MatchString(out) {
		t.Errorf("plan:\n%s", out)
	}
}

// Issue 14 #13: garbage in the live fullchain is not "no certificate
// installed": status and plan say the installed certificate is unreadable,
// and why.
func TestGarbageFullchainUnreadable(t *testing.T) {
	dir := t.TempDir()
	writeConfig(t, dir, "a")
	now := time.Now()
	install(t, dir, "a", []string{"a.example.com"}, now.Add(-time.Hour), now.Add(90*24*time.Hour))
	if err := os.WriteFile(filepath.Join(dir, "state", "live", "a", "fullchain.pem"), []byte("garbage\n"), 0o644); err != nil {
		t.Fatal(err)
	}
	_, out, _ := runCLI(t, dir, "status", "--json")
	var rep StatusReport
	if err := json.Unmarshal([]byte(out), &rep); err != nil {
		t.Fatal(err)
	}
	c := rep.Certificates[0]
	if c.Reason != "installed certificate is unreadable" || !c.Due || !strings.Contains(c.Problem, "fullchain.pem") {
		t.Errorf("status --json: reason %q, due %v, problem %q", c.Reason, c.Due, c.Problem)
	}
	_, out, _ = runCLI(t, dir, "status")
	if strings.Contains(out, "no certificate installed") || !strings.Contains(out, "installed certificate is unreadable: ") || !strings.Contains(out, "fullchain.pem") {
		t.Errorf("status table:\n%s", out)
	}
	_, out, _ = runCLI(t, dir, "plan")
	if !regexp.MustCompile(`a +DUE NOW +installed certificate is unreadable`).MatchString(out) || !strings.Contains(out, "fullchain.pem") {
		t.Errorf("plan:\n%s", out)
	}
}
