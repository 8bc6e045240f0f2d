package cli

import (
	"os"
	"path/filepath"
	"strings"
	"testing"
)

// Every command that reads the config warns when other users can read a
// config file holding secrets; the warning names the file and the field.
func TestWorldReadableSecretsWarning(t *testing.T) {
	dir := t.TempDir()
	file := filepath.Join(dir, "renewer.hcl")
	src := `storage { path = "state" }
acme {
  accept_terms = true
  eab {
    kid  = "kid-1"
    hmac = "c2VjcmV0LWhtYWMta2V5"
  }
}
certificate "a" {
  domains = ["a.example.com"]
  challenge "http" { listen = "127.0.0.1:80" }
}
`
	if err := os.WriteFile(file, []byte(src), 0o600); err != nil {
		t.Fatal(err)
	}
	for _, mode := range []os.FileMode{0o644, 0o600} {
		if err := os.Chmod(file, mode); err != nil {
			t.Fatal(err)
		}
		for _, cmd := range [][]string{{"validate"}, {"plan"}, {"status"}} {
			_, _, errOut := runCLI(t, dir, cmd...)
			warned := strings.Contains(errOut, "warning: "+file+" is readable by other users (mode 0644)") &&
				strings.Contains(errOut, "acme.eab.hmac (line 6)")
			if mode == 0o644 && !warned {
				t.Errorf("%s with mode %o: no warning naming the file and field:\n%s", cmd[0], mode, errOut)
			}
			if mode == 0o600 && strings.Contains(errOut, "warning") {
				t.Errorf("%s with mode %o: %s", cmd[0], mode, errOut)
			}
			if strings.Contains(errOut, "c2VjcmV0") {
				t.Errorf("%s shows the secret:\n%s", cmd[0], errOut)
			}
		}
	}
}
