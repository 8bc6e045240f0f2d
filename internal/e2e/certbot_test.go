package e2e

import (
	"bytes"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/renewer/renewer/internal/cli"
	"github.com/renewer/renewer/internal/testca"
)

// A migration from certbot, with lineages the real certbot made against the
// test CA: "api" with --standalone and an RSA key, "www" with --webroot
// served by a real nginx, a --deploy-hook that reloads nginx, and a
// renewal-hooks/deploy script. `renewer import certbot` writes a config
// that validates and adopts both certificates (nothing is re-issued); a
// forced renewal of www goes through nginx's webroot, lands in certbot's
// own live/www paths (nginx's config is untouched), the imported deploy
// hook reloads nginx, nginx serves the new certificate, and certbot still
// reads its lineages and reports the new serial.
func TestCertbotMigration(t *testing.T) {
	t.Parallel()
	need(t, "certbot", "certbot")
	need(t, "nginx", "nginx")
	root := t.TempDir()
	// No bad nonces here: Debian's certbot 2.1 on Python 3.11 crashes with
	// "AttributeError: can't set attribute" on any ACME error response
	// (certbot issue #9539, fixed upstream later), and certbot is not what
	// this test is about. renewer's badNonce retries are exercised elsewhere.
	ca := testca.StartT(t, testca.Options{Env: []string{"PEBBLE_WFE_NONCEREJECT=0"}})
	d := newCertbotDirs(t, root)

	// api: standalone (certbot listens on the HTTP-01 port itself), RSA.
	certbotIssue(t, ca, d, "api", "--standalone", "-d", "api.example.test", "--key-type", "rsa", "--rsa-key-size", "2048")

	// nginx answers HTTP-01 from a webroot on the port Pebble validates, and
	// serves https with a bootstrap certificate until certbot's exists.
	webroot := filepath.Join(root, "webroot")
	if err := os.MkdirAll(webroot, 0o755); err != nil {
		t.Fatal(err)
	}
	bootCert, bootKey := bootstrapCert(t, filepath.Join(root, "boot"), "www.example.test")
	n := startNginx(t, filepath.Join(root, "nginx"), bootCert, bootKey, ca.HTTPPort, webroot)

	// www: webroot, with a deploy hook that records certbot's variables and
	// reloads nginx, and a renewal-hooks/deploy script.
	deployLog, dirHookLog := filepath.Join(root, "deploy.log"), filepath.Join(root, "dirhook.log")
	deployHook := fmt.Sprintf(`echo "$RENEWED_LINEAGE|$RENEWED_DOMAINS" >> %s && %s %s`,
		deployLog, repoFile(t, "examples/nginx/reload.sh"), strings.Join(n.ctl, " "))
	dirHook := filepath.Join(d.config, "renewal-hooks", "deploy", "record.sh")
	write(t, dirHook, fmt.Sprintf("#!/bin/sh\necho \"$RENEWED_LINEAGE\" >> %s\n", dirHookLog))
	if err := os.Chmod(dirHook, 0o755); err != nil {
		t.Fatal(err)
	}
	certbotIssue(t, ca, d, "www", "--webroot", "-w", webroot, "-d", "www.example.test", "-d", "example.test", "--deploy-hook", deployHook)

	// The admin points nginx at certbot's live files.
	liveWWW := filepath.Join(d.config, "live", "www")
	conf, err := os.ReadFile(n.conf)
	if err != nil {
		t.Fatal(err)
	}
	conf = bytes.ReplaceAll(conf, []byte(bootCert), []byte(filepath.Join(liveWWW, "fullchain.pem")))
	conf = bytes.ReplaceAll(conf, []byte(bootKey), []byte(filepath.Join(liveWWW, "privkey.pem")))
	write(t, n.conf, string(conf))
	n.reload(t)
	certbotSerial := serialOf(t, filepath.Join(liveWWW, "cert.pem"))
	apiSerial := serialOf(t, filepath.Join(d.config, "live", "api", "cert.pem"))
	if got := waitServed(t, n.addr, "www.example.test", certbotSerial); got != certbotSerial {
		t.Fatalf("nginx serves %s, want certbot's %s", got, certbotSerial)
	}
	renewalConf := func() []byte {
		a, _ := os.ReadFile(filepath.Join(d.config, "renewal", "www.conf"))
		b, _ := os.ReadFile(filepath.Join(d.config, "renewal", "api.conf"))
		return append(a, b...)
	}
	confBefore := renewalConf()

	// Import: a config, and both certificates adopted.
	config := filepath.Join(root, "renewer.hcl")
	code, out, errOut := renewer(t, "import", "certbot", "--out", config, "--storage", filepath.Join(root, "state"),
		"--email", "ops@example.test", "--ca-bundle", ca.CABundle, d.config)
	if code != cli.ExitOK || !strings.Contains(out, "www: adopted serial "+certbotSerial) ||
		!strings.Contains(out, "api: adopted serial "+apiSerial) || !strings.Contains(out, "imported 2 certbot lineages") {
		t.Fatalf("import: exit %d\n%s\n%s", code, out, errOut)
	}
	hcl, err := os.ReadFile(config)
	if err != nil {
		t.Fatal(err)
	}
	t.Logf("generated config:\n%s", hcl)
	for _, want := range []string{
		`directory    = "` + ca.Directory + `"`,
		`challenge "http" { webroot = "` + webroot + `" }`,
		fmt.Sprintf(`challenge "http" { listen = "127.0.0.1:%d" }`, ca.HTTPPort),
		`key_type = "rsa2048"`, `key_type = "ec256"`,
		`domains  = ["www.example.test", "example.test"]`,
		`install { dir = "` + liveWWW + `" }`,
		`hook "certbot-deploy"`, `RENEWED_LINEAGE = "` + liveWWW + `"`,
		`hook "renewal-hooks-deploy-1"`,
	} {
		if !bytes.Contains(hcl, []byte(want)) {
			t.Errorf("generated config lacks %s", want)
		}
	}
	if code, out, _ := renewer(t, "--config", config, "validate"); code != cli.ExitOK || !strings.Contains(out, "valid, 2 certificates") {
		t.Fatalf("validate the generated config: exit %d", code)
	}

	// Adopted, not re-issued: nothing is due.
	code, out, _ = renewer(t, "--config", config, "renew")
	if code != cli.ExitOK || !strings.Contains(out, "www  not due") || !strings.Contains(out, "api  not due") {
		t.Fatalf("renew after import: exit %d\n%s", code, out)
	}
	if code, st := status(t, config, "www"); code != cli.ExitOK || st.Serial != certbotSerial || !st.Applied {
		t.Fatalf("status after import: exit %d %+v", code, st)
	}
	if got := serialOf(t, filepath.Join(liveWWW, "cert.pem")); got != certbotSerial {
		t.Fatalf("live/www changed to %s without a renewal", got)
	}

	// renewer renews www through nginx's webroot into certbot's paths.
	code, out, _ = renewer(t, "--config", config, "renew", "--force", "www")
	newSerial := serialOf(t, filepath.Join(liveWWW, "cert.pem"))
	if code != cli.ExitOK || newSerial == certbotSerial || !strings.Contains(out, "www  renewed  serial "+newSerial) {
		t.Fatalf("forced renew: exit %d, live/www serial %s\n%s", code, newSerial, out)
	}
	if got := waitServed(t, n.addr, "www.example.test", newSerial); got != newSerial {
		t.Fatalf("nginx serves %s after renewer's renewal, want %s", got, newSerial)
	}
	if log, _ := os.ReadFile(deployLog); strings.Count(string(log), liveWWW+"|www.example.test example.test\n") != 2 {
		t.Errorf("certbot's deploy hook ran with other variables, or not twice (certbot, renewer):\n%s", log)
	}
	// certbot runs renewal-hooks/deploy on `renew` only; renewer runs it on its renewal.
	if log, _ := os.ReadFile(dirHookLog); string(log) != liveWWW+"\n" {
		t.Errorf("renewal-hooks/deploy script: want one run by renewer for www, log:\n%s", log)
	}

	// certbot's files are intact: links, renewal configs, and certbot reads them.
	for _, f := range []string{"cert.pem", "chain.pem", "fullchain.pem", "privkey.pem"} {
		if fi, err := os.Lstat(filepath.Join(liveWWW, f)); err != nil || fi.Mode()&os.ModeSymlink == 0 {
			t.Errorf("live/www/%s is no longer certbot's symlink", f)
		}
	}
	if !bytes.Equal(renewalConf(), confBefore) {
		t.Error("certbot's renewal configs changed")
	}
	report := certbot(t, ca, d, "certificates")
	// certbot prints serials in lowercase without leading zeros; renewer as
	// openssl does (uppercase, an even number of digits).
	inCertbotsForm := func(s string) string { return strings.TrimLeft(strings.ToLower(s), "0") }
	if !strings.Contains(report, "Certificate Name: www") || !strings.Contains(report, "Serial Number: "+inCertbotsForm(newSerial)) ||
		!strings.Contains(report, "Certificate Name: api") || !strings.Contains(report, "Serial Number: "+inCertbotsForm(apiSerial)) ||
		strings.Contains(report, "INVALID") || strings.Contains(strings.ToLower(report), "parse") {
		t.Fatalf("certbot certificates after the migration:\n%s", report)
	}
	if code, st := status(t, config, "www"); code != cli.ExitOK || st.Serial != newSerial || !st.Applied {
		t.Fatalf("status after renewal: exit %d %+v", code, st)
	}
}
