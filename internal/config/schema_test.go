package config

import (
	"slices"
	"testing"
)

// SchemaOf records what the decoder accepts in each block it meets, typed
// blocks (challenge) by their type, even when the file has errors.
func TestSchemaOf(t *testing.T) {
	src := `
acme { directory = "https://ca.example/dir" }
certificate "a" {
  domains = ["a.example"]
  challenge "dns" { provider = "nosuchprovider" }
  hook "h" { command = ["true"] }
}
certificate "b" {
  domains = ["b.example"]
  challenge "http" { listen = ":80" }
}
`
	s, err := SchemaOf("x.hcl", []byte(src))
	if err != nil {
		t.Fatal(err)
	}
	for path, want := range map[string][]string{
		"":                             nil,
		"acme":                         {"accept_terms", "directory", "email"},
		"certificate":                  {"domains", "key_type", "renew_before"},
		`certificate.challenge "dns"`:  {"env", "provider", "resolvers"},
		`certificate.challenge "http"`: {"listen", "webroot"},
		"certificate.hook":             {"command", "env", "timeout"},
	} {
		b, ok := s[path]
		if !ok {
			t.Errorf("no schema for %q: %v", path, s)
			continue
		}
		for _, a := range want {
			if !slices.Contains(b.Attributes, a) {
				t.Errorf("%q: attributes %v lack %s", path, b.Attributes, a)
			}
		}
	}
	if top := s[""].Blocks; !slices.Contains(top, "certificate") || !slices.Contains(top, "fleet") || !slices.Contains(top, "notify") {
		t.Errorf("top-level blocks %v", top)
	}
	if _, ok := s["fleet"]; ok {
		t.Error("fleet recorded though the file has no fleet block")
	}
	if _, err := SchemaOf("bad.hcl", []byte("acme {")); err == nil {
		t.Error("a syntax error gave no error")
	}
}
