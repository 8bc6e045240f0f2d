package config

import (
	"os"
	"path/filepath"
	"strings"
	"testing"
)

// The reference config at the top of the repository must parse. Its webroot
// is a system path, so the test points it at a directory that exists.
func TestReferenceExampleParses(t *testing.T) {
	src, err := os.ReadFile("../../renewer.hcl.example")
	if err != nil {
		t.Fatal(err)
	}
	webroot := t.TempDir()
	text := strings.ReplaceAll(string(src), `"/var/www/acme"`, `"`+webroot+`"`)
	file := filepath.Join(t.TempDir(), "renewer.hcl.example")
	if err := os.WriteFile(file, []byte(text), 0o600); err != nil {
		t.Fatal(err)
	}
	fakeEnv(t, map[string]string{ // the secrets it reads with env()
		"RENEWER_WEBHOOK_URL": "https://hooks.example.com/x", "RENEWER_WEBHOOK_AUTH": "Bearer x",
		"SLACK_WEBHOOK_URL": "https://hooks.slack.com/services/x", "SMTP_PASSWORD": "x",
		"CF_DNS_API_TOKEN": "token", "ZEROSSL_EAB_HMAC": "aG1hYy1rZXk",
	})
	cfg, err := Load(file)
	if err != nil {
		t.Fatalf("renewer.hcl.example: %v", err)
	}
	if len(cfg.Certificates) != 5 || cfg.ACME.Directory != LetsEncrypt || cfg.Certificates[0].Challenge.Webroot != webroot {
		t.Errorf("unexpected decode: %+v", cfg)
	}
	if len(cfg.Watches) != 1 || len(cfg.Notifiers) != 3 || cfg.Metrics == nil || cfg.Notifiers[2].Email == nil ||
		cfg.Certificates[0].WarnBefore != (RenewBefore{Fraction: 0.2}) {
		t.Errorf("observability blocks: %+v", cfg)
	}
	if dns := cfg.Certificates[2].Challenge.DNS; dns == nil || dns.Provider != "cloudflare" || dns.Env["CF_DNS_API_TOKEN"] != "token" {
		t.Errorf("dns challenge: %+v", dns)
	}
	if p := cfg.Certificates[3].Challenge.Persist; p == nil || !p.Wildcard || p.PersistUntil.Year() != 2027 {
		t.Errorf("dns-persist challenge: %+v", p)
	}
	if len(cfg.ACME.Fallback) != 1 || cfg.ACME.Fallback[0].EAB == nil || cfg.Certificates[4].Challenge.Type != ChallengeTLSALPN {
		t.Errorf("fallback or tls-alpn: %+v", cfg)
	}
	www, api := cfg.Certificates[0], cfg.Certificates[1]
	if www.Install == nil || www.Install.UID != 0 || www.Install.KeyMode != 0o600 || len(www.Verify) != 1 ||
		api.Install == nil || api.Install.HAProxyBundle == "" || len(api.Verify) != 1 || api.Verify[0].ServerName != "api.example.com" {
		t.Errorf("install/verify decode: %+v %+v", www, api)
	}
}

// The demo's config parses with the variables make demo sets.
func TestDemoConfigParses(t *testing.T) {
	roots, _ := filepath.Abs("testdata/roots.pem")
	for k, v := range map[string]string{
		"DEMO_STORAGE": t.TempDir(), "DEMO_ACME_DIRECTORY": "https://127.0.0.1:14000/dir",
		"DEMO_CA_BUNDLE": roots, "DEMO_HTTP_LISTEN": "127.0.0.1:5002",
	} {
		t.Setenv(k, v)
	}
	if _, err := Load("../../examples/demo/renewer.hcl"); err != nil {
		t.Fatal(err)
	}
}
