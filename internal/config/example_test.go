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
	cfg, err := Load(file)
	if err != nil {
		t.Fatalf("renewer.hcl.example: %v", err)
	}
	if len(cfg.Certificates) != 2 || cfg.ACME.Directory != LetsEncrypt || cfg.Certificates[0].Challenge.Webroot != webroot {
		t.Errorf("unexpected decode: %+v", cfg)
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
