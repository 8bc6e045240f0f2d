package certbot

import (
	"context"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/renewer/renewer/internal/certinfo/certtest"
	"github.com/renewer/renewer/internal/config"
	"github.com/renewer/renewer/internal/store"
)

// lineage lays out a certbot lineage under dir (archive/, live/ links and
// renewal/NAME.conf with the given extra lines) for a fresh certificate.
func lineage(t *testing.T, dir, name string, names []string, keyType, top, params string, sections ...string) {
	t.Helper()
	full, key := certtest.Issue(t, certtest.Options{Names: names, KeyType: keyType})
	cert, chain := splitLeaf(full)
	archive, live := filepath.Join(dir, "archive", name), filepath.Join(dir, "live", name)
	for _, d := range []string{archive, live, filepath.Join(dir, "renewal")} {
		if err := os.MkdirAll(d, 0o755); err != nil {
			t.Fatal(err)
		}
	}
	for n, data := range map[string][]byte{"cert": cert, "chain": chain, "fullchain": full, "privkey": key} {
		if err := os.WriteFile(filepath.Join(archive, n+"1.pem"), data, 0o600); err != nil {
			t.Fatal(err)
		}
		if err := os.Symlink(filepath.Join("..", "..", "archive", name, n+"1.pem"), filepath.Join(live, n+".pem")); err != nil {
			t.Fatal(err)
		}
	}
	conf := fmt.Sprintf(`# renew_before_expiry = 30 days
version = 2.1.0
archive_dir = %[1]s
cert = %[2]s/cert.pem
privkey = %[2]s/privkey.pem
chain = %[2]s/chain.pem
fullchain = %[2]s/fullchain.pem
%[3]s
# Options used in the renewal process
[renewalparams]
account = 0123456789abcdef
server = https://acme-v02.api.letsencrypt.org/directory
%[4]s
%[5]s
`, archive, live, top, params, strings.Join(sections, "\n"))
	if err := os.WriteFile(filepath.Join(dir, "renewal", name+".conf"), []byte(conf), 0o644); err != nil {
		t.Fatal(err)
	}
}

func TestParseConf(t *testing.T) {
	c, err := ParseConf(`# comment
cert = /etc/letsencrypt/live/a/cert.pem
[renewalparams]
authenticator = webroot
webroot_path = /var/www/a, /var/www/b,
renew_hook = "echo 'hi, there' # not a comment"
post_hook = systemctl reload nginx # a comment
[[webroot_map]]
a.example.com = /var/www/a
`)
	if err != nil {
		t.Fatal(err)
	}
	if c.Top["cert"] != "/etc/letsencrypt/live/a/cert.pem" || c.Param("authenticator") != "webroot" ||
		c.Param("renew_hook") != "echo 'hi, there' # not a comment" || c.Param("post_hook") != "systemctl reload nginx" ||
		c.Sections["webroot_map"]["a.example.com"] != "/var/www/a" {
		t.Errorf("parsed: %+v", c)
	}
	if got := List(c.Param("webroot_path")); len(got) != 2 || got[0] != "/var/www/a" || got[1] != "/var/www/b" {
		t.Errorf("List = %q", got)
	}
	if _, err := ParseConf("[renewalparams]\nnot a pair\n"); err == nil || !strings.Contains(err.Error(), "line 2") {
		t.Errorf("bad line: %v", err)
	}
}

func TestInterval(t *testing.T) {
	for in, want := range map[string]time.Duration{
		"30 days": 30 * 24 * time.Hour, "10": 10 * 24 * time.Hour, "2 weeks": 14 * 24 * time.Hour,
		"3 days 12 hours": 84 * time.Hour, "1 day": 24 * time.Hour,
	} {
		if got, err := Interval(in); err != nil || got != want {
			t.Errorf("Interval(%q) = %s, %v; want %s", in, got, err, want)
		}
	}
	for _, in := range []string{"6 months", "", "soon", "3 days 12"} {
		if _, err := Interval(in); err == nil {
			t.Errorf("Interval(%q) succeeded", in)
		}
	}
}

// Every authenticator, installer and hook kind maps to renewer syntax or to
// a WARNING; secrets in credential files are never copied.
func TestGenerate(t *testing.T) {
	dir := t.TempDir()
	webA, webB := t.TempDir(), t.TempDir()
	creds := filepath.Join(dir, "cloudflare.ini")
	if err := os.WriteFile(creds, []byte("dns_cloudflare_api_token = s3cr3t-token\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	lineage(t, dir, "a.example.com", []string{"a.example.com", "b.example.com"}, "ec256", "renew_before_expiry = 2 weeks",
		fmt.Sprintf("authenticator = webroot\nwebroot_path = %s,\npre_hook = systemctl stop nginx\npost_hook = systemctl start nginx\nrenew_hook = echo \"done ${RENEWED_LINEAGE}\"\nmust_staple = True\neab_hmac_key = hush", webA),
		fmt.Sprintf("[[webroot_map]]\na.example.com = %s\nb.example.com = %s", webA, webB))
	lineage(t, dir, "wild", []string{"*.example.net", "example.net"}, "ec384", "",
		fmt.Sprintf("authenticator = dns-cloudflare\ndns_cloudflare_credentials = %s\ndns_cloudflare_propagation_seconds = 30\nkey_type = ecdsa\nelliptic_curve = secp384r1", creds))
	lineage(t, dir, "shop", []string{"shop.example.org"}, "rsa2048", "",
		"authenticator = nginx\ninstaller = nginx\nkey_type = ecdsa")
	// A lineage whose files are broken is a problem, the others still come.
	if err := os.MkdirAll(filepath.Join(dir, "live", "orphan"), 0o755); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(filepath.Join(dir, "renewal", "broken.conf"), []byte("cert = /nonexistent/cert.pem\nchain = x\nfullchain = /nonexistent/fullchain.pem\nprivkey = y\n"), 0o644); err != nil {
		t.Fatal(err)
	}
	hookDir := filepath.Join(dir, "renewal-hooks", "deploy")
	if err := os.MkdirAll(hookDir, 0o755); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(filepath.Join(hookDir, "10-reload"), []byte("#!/bin/sh\n"), 0o755); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(filepath.Join(hookDir, "README"), []byte("not executable"), 0o644); err != nil {
		t.Fatal(err)
	}

	ls, problems, err := Read(dir)
	if err != nil {
		t.Fatal(err)
	}
	if len(ls) != 3 || len(problems) != 2 || problems[0].Name != "broken" || problems[0].Warn || problems[1].Name != "orphan" || !problems[1].Warn {
		t.Fatalf("lineages %d, problems %v", len(ls), problems)
	}
	hooks, err := ReadHooks(dir)
	if err != nil || len(hooks.Deploy) != 1 {
		t.Fatalf("hooks %+v %v", hooks, err)
	}
	g := Generate(ls, hooks, Options{Dir: dir, Storage: "/var/lib/renewer"})
	t.Logf("generated:\n%s", g.HCL)
	for _, want := range []string{
		`directory    = "letsencrypt"`,
		`domains  = ["a.example.com", "b.example.com"]`,
		`renew_before = "336h"`,
		fmt.Sprintf(`challenge "http" { webroot = %q }`, webA),
		`install { dir = "` + filepath.Join(dir, "live", "a.example.com") + `" }`,
		`command = ["/bin/sh", "-c", "echo \"done $${RENEWED_LINEAGE}\""]`,
		`hook "certbot-post" { command = ["/bin/sh", "-c", "systemctl start nginx"] }`,
		`hook "renewal-hooks-deploy-1"`,
		`challenge "dns" {`, `provider = "cloudflare"`, `env      = { CF_DNS_API_TOKEN = env("CF_DNS_API_TOKEN") }`,
		`key_type = "ec384"`, `key_type = "rsa2048"`,
		`hook "nginx" { command = ["/bin/sh", "-c", "nginx -t && nginx -s reload"] }`,
	} {
		if !strings.Contains(g.HCL, want) {
			t.Errorf("generated HCL lacks %s", want)
		}
	}
	warnings := strings.Join(g.Warnings, "\n")
	for _, want := range []string{
		"several webroots", `pre hook "systemctl stop nginx" is not imported`, "must_staple = True is not supported",
		"certbot setting eab_hmac_key is not imported", "lego's \"cloudflare\" provider", "CF_DNS_API_TOKEN (dns_cloudflare_api_token)",
		"waited 30s", "nginx authenticator", "certbot would renew with a ec256 key",
	} {
		if !strings.Contains(warnings, want) {
			t.Errorf("warnings lack %q:\n%s", want, warnings)
		}
	}
	if strings.Contains(g.HCL+warnings, "s3cr3t") || strings.Contains(g.HCL+warnings, "hush") {
		t.Error("a secret was copied")
	}
	if strings.Count(g.HCL, "# WARNING:") < 7 {
		t.Errorf("warnings are not in the HCL as comments")
	}

	// Without the DNS lineage (whose syntax comes with the dns challenge) the
	// file is a valid renewer config.
	g = Generate([]Lineage{ls[0], ls[1]}, hooks, Options{Dir: dir, Storage: t.TempDir()})
	if _, err := config.Parse(filepath.Join(dir, "renewer.hcl"), []byte(g.HCL)); err != nil {
		t.Errorf("generated config does not parse: %v\n%s", err, g.HCL)
	}
}

// Adopt puts the lineage's certificate into the store as applied, and never
// replaces what renewer already has.
func TestAdopt(t *testing.T) {
	dir := t.TempDir()
	lineage(t, dir, "a", []string{"a.example.com"}, "ec256", "", "authenticator = standalone")
	ls, _, err := Read(dir)
	if err != nil || len(ls) != 1 {
		t.Fatal(ls, err)
	}
	st, err := store.Open(t.TempDir(), 3)
	if err != nil {
		t.Fatal(err)
	}
	v, err := Adopt(context.Background(), st, ls[0], time.Now())
	if err != nil {
		t.Fatal(err)
	}
	live, err := st.Live("a")
	if err != nil || live.ID != v.ID {
		t.Fatalf("live %v %v", live, err)
	}
	s, _ := st.LoadState("a")
	if s.AppliedSerial != ls[0].Facts.Serial || s.InstalledSerial != ls[0].Facts.Serial || s.AdoptedSerial != ls[0].Facts.Serial {
		t.Errorf("state %+v", s)
	}
	if _, err := Adopt(context.Background(), st, ls[0], time.Now()); !errors.Is(err, ErrManaged) {
		t.Errorf("second adopt: %v", err)
	}
	// An expired certificate is not adopted.
	dir2 := t.TempDir()
	lineage(t, dir2, "b", []string{"b.example.com"}, "ec256", "", "authenticator = standalone")
	ls2, _, _ := Read(dir2)
	if _, err := Adopt(context.Background(), st, ls2[0], time.Now().Add(200*24*time.Hour)); err == nil {
		t.Error("adopted an expired certificate")
	}
	if _, err := st.Live("b"); err == nil {
		t.Error("a failed adoption left a live version")
	}
}
