package config

import (
	"os"
	"path/filepath"
	"strings"
	"testing"
)

// The nginx and HAProxy example configs parse. Their webroot is a system
// path, so the test points it at a directory that exists.
func TestDeployExamplesParse(t *testing.T) {
	for _, ex := range []string{"nginx", "haproxy"} {
		t.Run(ex, func(t *testing.T) {
			src, err := os.ReadFile(filepath.Join("..", "..", "examples", ex, "renewer.hcl"))
			if err != nil {
				t.Fatal(err)
			}
			text := strings.ReplaceAll(string(src), `"/var/www/acme"`, `"`+t.TempDir()+`"`)
			file := filepath.Join(t.TempDir(), "renewer.hcl")
			if err := os.WriteFile(file, []byte(text), 0o600); err != nil {
				t.Fatal(err)
			}
			cfg, err := Load(file)
			if err != nil {
				t.Fatal(err)
			}
			c := cfg.Certificates[0]
			if c.Install == nil || len(c.Reloads) != 1 || c.Reloads[0] != ex || len(c.Verify) != 1 || c.Verify[0].ServerName != "www.example.com" {
				t.Errorf("unexpected decode: %+v", c)
			}
			if r, ok := cfg.Reload(ex); !ok || len(r.Command) != 1 || r.Command[0] != "/usr/share/renewer/hooks/"+ex+"-reload" {
				t.Errorf("reload %q: %+v", ex, r)
			}
		})
	}
}
