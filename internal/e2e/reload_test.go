package e2e

import (
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/renewer/renewer/internal/certinfo/certtest"
	"github.com/renewer/renewer/internal/cli"
	"github.com/renewer/renewer/internal/testca"
)

// Twenty certificates share one nginx reload block: a pass that obtains
// all of them reloads nginx exactly once, after every one is installed,
// and all twenty are applied and served. Then the files nginx reads are
// tampered with, as a user or another client would: status names each
// file and is not ok, and the next renew repairs them (a key replaced in
// an install copy is written again; a live chain.pem with garbage in it
// makes the certificate unusable, so a new one is obtained), again with a
// single reload.
func TestNginxSharedReload(t *testing.T) {
	t.Parallel()
	const n = 20
	dir := t.TempDir()
	names := make([]string, n)
	var servers strings.Builder
	for i := range names {
		names[i] = fmt.Sprintf("site%02d.example.test", i)
		sslDir := filepath.Join(dir, "ssl", names[i])
		cert, key := bootstrapCert(t, sslDir, names[i])
		fmt.Fprintf(&servers, "server { listen LISTEN ssl; server_name %s; ssl_certificate %s; ssl_certificate_key %s; location / { return 200; } }\n",
			names[i], cert, key)
	}
	boot := filepath.Join(dir, "boot")
	cert, key := bootstrapCert(t, boot, "www.example.test")
	ng := startNginxWith(t, filepath.Join(dir, "nginx"), cert, key, servers.String())

	ca := testca.StartT(t, testca.Options{})
	count := filepath.Join(dir, "reloads")
	config := filepath.Join(dir, "renewer.hcl")
	var certs strings.Builder
	for _, name := range names {
		fmt.Fprintf(&certs, `
certificate %q {
  domains = [%q]
  challenge "http" { listen = "127.0.0.1:%d" }
  install { dir = %q }
  reload  = ["nginx"]
}
`, strings.SplitN(name, ".", 2)[0], name, ca.HTTPPort, filepath.Join(dir, "ssl", name))
	}
	reloadArgv := append([]string{"/bin/sh", "-c", `echo reload >> "$0"; exec "$@"`, count, repoFile(t, "examples/nginx/reload.sh")}, ng.ctl...)
	write(t, config, caConfig(ca, filepath.Join(dir, "state"))+fmt.Sprintf(`
daemon { concurrency = 8 }
reload "nginx" {
  command = %s
  timeout = "30s"
}
`, hclList(reloadArgv))+certs.String())

	reloads := func() int {
		b, _ := os.ReadFile(count)
		return strings.Count(string(b), "reload")
	}
	code, out, _ := renewer(t, "--config", config, "renew")
	if code != cli.ExitOK || strings.Count(out, "obtained  serial ") != n {
		t.Fatalf("renew: exit %d\n%s", code, out)
	}
	if got := reloads(); got != 1 {
		t.Fatalf("nginx reloaded %d times for %d certificates, want once", got, n)
	}
	for _, name := range names {
		want := serialOf(t, filepath.Join(dir, "ssl", name, "fullchain.pem"))
		if got := waitServed(t, ng.addr, name, want); got != want {
			t.Errorf("%s: nginx serves %s, want %s", name, got, want)
		}
		if code, st := status(t, config, strings.SplitN(name, ".", 2)[0]); code != cli.ExitOK || !st.Applied || st.Health != "ok" {
			t.Errorf("%s: status exit %d %+v", name, code, st)
		}
	}

	// Someone replaces site00's installed key, and garbles site01's live chain.pem.
	_, otherKey := certtest.Issue(t, certtest.Options{Names: []string{names[0]}})
	keyFile := filepath.Join(dir, "ssl", names[0], "privkey.pem")
	write(t, keyFile, string(otherKey))
	liveChain := filepath.Join(dir, "state", "live", "site01", "chain.pem")
	write(t, liveChain, "garbage\n")
	code, st := status(t, config, "site00")
	if code == cli.ExitOK || st.Health == "ok" || st.Applied || !st.DeployPending || len(st.Targets) != 1 ||
		st.Targets[0].Path != keyFile || !strings.Contains(st.Targets[0].Problem, "another private key") {
		t.Errorf("status after the key was replaced: exit %d %+v", code, st)
	}
	if code, st := status(t, config, "site01"); code != cli.ExitCritical || st.Health != "critical" || !st.Due || !strings.Contains(st.Problem, "chain.pem") {
		t.Errorf("status after the live chain.pem was garbled: exit %d %+v", code, st)
	}
	_, table, _ := renewer(t, "--config", config, "status")
	if !strings.Contains(table, "site00") {
		t.Errorf("status table:\n%s", table)
	}

	code, out, _ = renewer(t, "--config", config, "renew")
	if code != cli.ExitOK || !strings.Contains(out, "site00  deploy retried") || !strings.Contains(out, "site01  renewed") || !strings.Contains(out, "(installed certificate is unreadable)") ||
		strings.Count(out, "  not due  ") != n-2 {
		t.Fatalf("renew after tampering: exit %d\n%s", code, out)
	}
	if got := reloads(); got != 2 {
		t.Errorf("nginx reloaded %d times in all, want 2 (one per pass)", got)
	}
	for _, name := range names[:2] {
		want := serialOf(t, filepath.Join(dir, "ssl", name, "fullchain.pem"))
		if got := waitServed(t, ng.addr, name, want); got != want {
			t.Errorf("%s: nginx serves %s, want %s", name, got, want)
		}
		if code, st := status(t, config, strings.SplitN(name, ".", 2)[0]); code != cli.ExitOK || !st.Applied || len(st.Targets) != 0 {
			t.Errorf("%s after the repair: status exit %d %+v", name, code, st)
		}
	}
}
