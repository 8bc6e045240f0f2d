package config

import (
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"
)

func FuzzParse(f *testing.F) {
	files, _ := filepath.Glob("testdata/*.hcl")
	for _, file := range files {
		src, err := os.ReadFile(file)
		if err != nil {
			f.Fatal(err)
		}
		f.Add(src)
	}
	f.Add([]byte(`acme {} certificate "x" { domains = ["x.example.com"] challenge "http" {} }`))
	f.Add([]byte(`acme { email = "${env("HOME")}@example.com" }`))

	f.Fuzz(func(t *testing.T, src []byte) {
		cfg, err := Parse("testdata/fuzz.hcl", src)
		if err != nil {
			if cfg != nil {
				t.Fatal("config and error both returned")
			}
			if err.Error() == "" {
				t.Fatal("empty error text")
			}
			return
		}
		checkInvariants(t, cfg)
		checkObserveInvariants(t, cfg) // observe_test.go
	})
}

// checkInvariants is what every later stage may rely on in a valid Config.
func checkInvariants(t *testing.T, cfg *Config) {
	t.Helper()
	if !filepath.IsAbs(cfg.Storage.Path) || cfg.Storage.KeepVersions < 0 {
		t.Fatalf("bad storage %+v", cfg.Storage)
	}
	if cfg.ACME.Directory == "" || cfg.ACME.StagingDirectory == "" {
		t.Fatalf("bad acme %+v", cfg.ACME)
	}
	if cfg.ACME.CABundle != "" && !filepath.IsAbs(cfg.ACME.CABundle) {
		t.Fatalf("relative ca_bundle %q", cfg.ACME.CABundle)
	}
	names := map[string]bool{}
	for _, c := range cfg.Certificates {
		if !certNameRE.MatchString(c.Name) || names[c.Name] {
			t.Fatalf("bad or duplicate certificate name %q", c.Name)
		}
		names[c.Name] = true
		if len(c.Domains) == 0 {
			t.Fatalf("certificate %q has no domains", c.Name)
		}
		seen := map[string]bool{}
		for _, d := range c.Domains {
			if d == "" || d != strings.ToLower(d) || strings.HasSuffix(d, ".") || seen[d] || strings.HasPrefix(d, "*.") {
				t.Fatalf("certificate %q: bad domain %q in %q", c.Name, d, c.Domains)
			}
			seen[d] = true
		}
		if !slices.Contains(KeyTypes, c.KeyType) {
			t.Fatalf("certificate %q: key type %q", c.Name, c.KeyType)
		}
		rb := c.RenewBefore
		if rb.Duration < 0 || rb.Fraction < 0 || rb.Fraction >= 1 || rb.Duration > 0 && rb.Fraction > 0 {
			t.Fatalf("certificate %q: renew_before %+v", c.Name, rb)
		}
		ch := c.Challenge
		if ch.Type != "http" || (ch.Listen == "") == (ch.Webroot == "") || ch.Webroot != "" && !filepath.IsAbs(ch.Webroot) {
			t.Fatalf("certificate %q: challenge %+v", c.Name, ch)
		}
		if c.Install != nil && !filepath.IsAbs(c.Install.Dir) {
			t.Fatalf("certificate %q: install %+v", c.Name, c.Install)
		}
		hooks := map[string]bool{}
		for _, h := range c.Hooks {
			if hooks[h.Name] || len(h.Command) == 0 || h.Command[0] == "" || h.Timeout <= 0 {
				t.Fatalf("certificate %q: hook %+v", c.Name, h)
			}
			hooks[h.Name] = true
			for k := range h.Env {
				if !envNameRE.MatchString(k) {
					t.Fatalf("certificate %q: hook %q env name %q", c.Name, h.Name, k)
				}
			}
		}
	}
}
