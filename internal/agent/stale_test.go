package agent

import (
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/renewer/renewer/internal/certinfo/certtest"
	"github.com/renewer/renewer/internal/status"
	"github.com/renewer/renewer/internal/store"
)

// Issue 14 #6: what a renewer killed with -9 in the middle of a renewal
// left (a temp version directory holding a private key, an HTTP-01 answer
// in the webroot) is removed by the next run that works on the
// certificate, under its lock, before it orders. (The CA here is dead: the
// renewal itself fails; the cleaning does not depend on it.)
func TestNextRunCleansWhatAKillLeft(t *testing.T) {
	dir := t.TempDir()
	root, webroot := filepath.Join(dir, "state"), filepath.Join(dir, "www")
	st, err := store.Open(root, 3)
	if err != nil {
		t.Fatal(err)
	}
	ca := certtest.NewCA(t, "stale CA")
	chain, key := certtest.Issue(t, certtest.Options{Names: []string{"www.example.test"}, CA: ca})
	leaf, _, _ := strings.Cut(string(chain), "-----END CERTIFICATE-----\n")
	if _, err := st.Install("www", []string{"www.example.test"}, store.Bundle{Cert: []byte(leaf + "-----END CERTIFICATE-----\n"), Chain: ca.CertPEM, Key: key}, time.Now()); err != nil {
		t.Fatal(err)
	}
	tmp, err := os.MkdirTemp(filepath.Join(root, "certs", "www"), ".tmp-")
	if err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(filepath.Join(tmp, "privkey.pem"), key, 0o600); err != nil {
		t.Fatal(err)
	}
	challenges := filepath.Join(webroot, ".well-known", "acme-challenge")
	if err := os.MkdirAll(challenges, 0o755); err != nil {
		t.Fatal(err)
	}
	token := filepath.Join(challenges, "LoqXcYV8q5ONbJQxbmR7SCTNo3tiAXDfowyjxAjEuX0")
	if err := os.WriteFile(token, []byte("LoqXcYV8q5ONbJQxbmR7SCTNo3tiAXDfowyjxAjEuX0.9jg46WB3rR_AHD-EBXdN7cBkH1WOu0tA3M9fm21mqTI"), 0o644); err != nil {
		t.Fatal(err)
	}
	old := time.Now().Add(-2 * time.Hour)
	if err := os.Chtimes(token, old, old); err != nil {
		t.Fatal(err)
	}
	installDir := filepath.Join(dir, "ssl")
	if err := os.MkdirAll(installDir, 0o755); err != nil {
		t.Fatal(err)
	}
	keyAside := filepath.Join(installDir, ".privkey.pem.tmp-1234")
	if err := os.WriteFile(keyAside, key, 0o600); err != nil {
		t.Fatal(err)
	}
	site := filepath.Join(webroot, "index.html")
	if err := os.WriteFile(site, []byte("<html>"), 0o644); err != nil {
		t.Fatal(err)
	}
	a, _ := setupHCL(t, dir, fmt.Sprintf(`
storage { path = %q }
acme {
  directory    = "https://127.0.0.1:1/dead"
  accept_terms = true
}
certificate "www" {
  domains = ["www.example.test"]
  ari     = false
  challenge "http" { webroot = %q }
  install { dir = %q }
}`, root, webroot, installDir))

	res := pass(t, a, PassOptions{Force: true})
	if res[0].Action != status.Failed {
		t.Fatalf("pass against a dead CA: %+v", res[0])
	}
	for _, p := range []string{tmp, token, keyAside} {
		if _, err := os.Stat(p); !os.IsNotExist(err) {
			t.Errorf("left behind after the next run: %s (%v)", p, err)
		}
	}
	if _, err := os.Stat(site); err != nil {
		t.Errorf("the site's own file removed: %v", err)
	}
	if _, err := a.Store().Live("www"); err != nil {
		t.Errorf("live version: %v", err)
	}
}
