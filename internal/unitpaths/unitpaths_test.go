package unitpaths

import (
	"os"
	"path/filepath"
	"strings"
	"syscall"
	"testing"

	"github.com/renewer/renewer/internal/config"
)

func load(t *testing.T, src string) *config.Config {
	t.Helper()
	dir := t.TempDir()
	src = strings.ReplaceAll(src, "DIR", dir)
	if err := os.MkdirAll(filepath.Join(dir, "www"), 0o755); err != nil {
		t.Fatal(err)
	}
	f := filepath.Join(dir, "renewer.hcl")
	if err := os.WriteFile(f, []byte(src), 0o600); err != nil {
		t.Fatal(err)
	}
	cfg, err := config.Load(f)
	if err != nil {
		t.Fatal(err)
	}
	return cfg
}

const cfgSrc = `storage { path = "DIR/state" }
acme {
  directory = "https://127.0.0.1:14000/dir"
  email = "a@example.test"
  accept_terms = true
}
certificate "a" {
  domains = ["a.test"]
  challenge "http" { webroot = "DIR/www" }
  install {
    dir = "DIR/ssl/a"
    haproxy_bundle = "DIR/haproxy certs/a.pem"
  }
}
certificate "b" {
  domains = ["b.test"]
  challenge "http" { webroot = "DIR/www" }
  install { haproxy_bundle = "DIR/haproxy certs/b.pem" }
}
`

func TestWritable(t *testing.T) {
	cfg := load(t, cfgSrc)
	dir := filepath.Dir(cfg.File)
	var got []string
	for _, p := range Writable(cfg) {
		got = append(got, strings.TrimPrefix(p.Dir, dir))
	}
	want := []string{"/haproxy certs", "/ssl/a", "/state", "/www/.well-known/acme-challenge"}
	if strings.Join(got, "|") != strings.Join(want, "|") {
		t.Errorf("Writable = %q, want %q", got, want)
	}
}

func TestDropInQuotes(t *testing.T) {
	got := DropIn([]Path{{Dir: "/etc/haproxy certs"}, {Dir: "/srv/100%"}, {Dir: "/var/lib/renewer"}})
	for _, line := range []string{`ReadWritePaths="-/etc/haproxy certs"`, `ReadWritePaths=-/srv/100%%`, `ReadWritePaths=-/var/lib/renewer`} {
		if !strings.Contains(got, line+"\n") {
			t.Errorf("drop-in lacks %s:\n%s", line, got)
		}
	}
}

func TestPrepareAndGenerate(t *testing.T) {
	old := syscall.Umask(0o077) // the units' UMask
	defer syscall.Umask(old)
	cfg := load(t, cfgSrc)
	ps := Writable(cfg)
	made, err := Prepare(ps)
	if err != nil {
		t.Fatal(err)
	}
	if len(made) != 4 {
		t.Errorf("Prepare made %q, want all 4", made)
	}
	fi, err := os.Stat(cfg.Storage.Path)
	if err != nil || fi.Mode().Perm() != 0o700 {
		t.Errorf("storage: %v %v, want 0700", fi.Mode(), err)
	}
	// Parents are 0755 whatever the umask: nginx must reach the webroot's
	// challenge files.
	wk := filepath.Join(filepath.Dir(cfg.File), "www", ".well-known")
	if fi, err := os.Stat(wk); err != nil || fi.Mode().Perm() != 0o755 {
		t.Errorf("%s: %v %v, want 0755", wk, fi.Mode(), err)
	}
	if made, err := Prepare(ps); err != nil || len(made) != 0 {
		t.Errorf("second Prepare: %q %v, want nothing", made, err)
	}
	out := t.TempDir()
	if err := Generate(out, ps); err != nil {
		t.Fatal(err)
	}
	for _, u := range Units {
		b, err := os.ReadFile(filepath.Join(out, u+".d", DropInName))
		if err != nil || !strings.Contains(string(b), "ReadWritePaths=-"+cfg.Storage.Path+"\n") {
			t.Errorf("%s drop-in: %v\n%s", u, err, b)
		}
	}
}

func TestMissingFrom(t *testing.T) {
	ps := []Path{{Dir: "/var/lib/renewer"}, {Dir: "/etc/ssl/renewer/www"}, {Dir: "/var/www/acme/.well-known/acme-challenge"}}
	got := MissingFrom("-/var/lib/renewer -/etc/ssl/renewer/www\n", ps)
	if len(got) != 1 || got[0].Dir != "/var/www/acme/.well-known/acme-challenge" {
		t.Errorf("MissingFrom = %+v", got)
	}
	if got := MissingFrom("", ps); len(got) != 3 {
		t.Errorf("MissingFrom(nothing granted) = %+v", got)
	}
}

// NotWritableIn on this process: a writable directory is not reported.
// (The read-only case, a sandboxed daemon's namespace, is checked by
// internal/hosttest under systemd.)
func TestNotWritableInOwnProcess(t *testing.T) {
	dir := t.TempDir()
	got, err := NotWritableIn(os.Getpid(), []Path{{Dir: dir}})
	if err != nil {
		t.Fatal(err)
	}
	if len(got) != 0 {
		t.Errorf("a writable temp dir reported read-only: %+v", got)
	}
	if _, err := NotWritableIn(1<<30, nil); err == nil {
		t.Errorf("no error for a process that does not exist")
	}
}
