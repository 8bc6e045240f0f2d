package config

import (
	"os"
	"path/filepath"
	"strings"
	"testing"
)

// A config file that other users can read and that holds a secret written
// in it gets a warning naming the file and the field; a private file, a
// file without secrets, or secrets read with env() or file() get none.
func TestPermissionWarning(t *testing.T) {
	lookupEnvOrig := lookupEnv
	lookupEnv = func(k string) (string, bool) { return "c2VjcmV0LWZyb20tZW52", true }
	t.Cleanup(func() { lookupEnv = lookupEnvOrig })

	const head = "storage { path = \"state\" }\n"
	eab := `acme {
  accept_terms = true
  eab {
    kid  = "kid-1"
    hmac = "c2VjcmV0LWhtYWMta2V5"
  }
}
`
	plain := "acme { accept_terms = true }\n"
	dns := func(env string) string {
		return `certificate "w" {
  domains = ["*.example.com"]
  challenge "dns" {
    provider = "rfc2136"
    env = {` + env + `}
  }
}
`
	}
	for _, tc := range []struct {
		name, src string
		mode      os.FileMode
		want      []string // fields named; none: no warning
	}{
		{"eab 0644", head + eab, 0o644, []string{"acme.eab.hmac (line 6)", "mode 0644"}},
		{"eab 0604", head + eab, 0o604, []string{"acme.eab.hmac"}},
		{"eab 0600", head + eab, 0o600, nil},
		{"eab 0640", head + eab, 0o640, nil},
		{"no secrets 0644", head + plain, 0o644, nil},
		{"eab from env() 0644", head + strings.Replace(eab, `"c2VjcmV0LWhtYWMta2V5"`, `env("EAB_HMAC")`, 1), 0o644, nil},
		{"eab from file() 0644", head + strings.Replace(eab, `"c2VjcmV0LWhtYWMta2V5"`, `file("hmac.txt")`, 1), 0o644, nil},
		{"tsig secret 0644", head + plain + dns(`
      DNSUPDATE_NAMESERVER  = "127.0.0.1:53"
      DNSUPDATE_TSIG_SECRET = "dHNpZy1zZWNyZXQ="
      CLOUDFLARE_DNS_API_TOKEN = env("CF")
    `), 0o644, []string{`challenge "dns" env "DNSUPDATE_TSIG_SECRET"`}},
		{"dns settings only 0644", head + plain + dns(`DNSUPDATE_NAMESERVER = "127.0.0.1:53"`), 0o644, nil},
		{"webhook 0644", head + plain + `notify "ops" {
  webhook = "https://hooks.example.com/T0K3N"
  headers = { Authorization = "Bearer XYZ" }
}
notify "mail" {
  email {
    smtp = "smtp.example.com:587"
    username = "u"
    password = "hunter2"
    from = "r@example.com"
    to = ["ops@example.com"]
  }
}
notify "chat" { slack = "https://hooks.slack.com/services/T/B/X" }
`, 0o644, []string{`notify "ops" webhook`, `notify "ops" headers "Authorization"`, "email password", `notify "chat" slack`}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			dir := t.TempDir()
			file := filepath.Join(dir, "renewer.hcl")
			if err := os.WriteFile(filepath.Join(dir, "hmac.txt"), []byte("c2VjcmV0LWZyb20tZmlsZQ\n"), 0o600); err != nil {
				t.Fatal(err)
			}
			if err := os.WriteFile(file, []byte(tc.src), 0o600); err != nil {
				t.Fatal(err)
			}
			if err := os.Chmod(file, tc.mode); err != nil {
				t.Fatal(err)
			}
			cfg, err := Load(file)
			if err != nil {
				t.Fatal(err)
			}
			w := PermissionWarning(cfg)
			if len(tc.want) == 0 {
				if w != "" {
					t.Errorf("warning: %s", w)
				}
				return
			}
			for _, s := range append(tc.want, file) {
				if !strings.Contains(w, s) {
					t.Errorf("warning does not name %q: %s", s, w)
				}
			}
			for _, secret := range []string{"c2VjcmV0", "dHNpZy1zZWNyZXQ", "T0K3N", "XYZ", "hunter2"} {
				if strings.Contains(w, secret) {
					t.Errorf("the warning shows the secret %s: %s", secret, w)
				}
			}
			if strings.Contains(w, "NAMESERVER") {
				t.Errorf("a setting counted as a secret: %s", w)
			}
		})
	}
}
