package config

import (
	"bytes"
	"errors"
	"io/fs"
	"os"
	"path/filepath"
	"reflect"
	"regexp"
	"strings"
	"syscall"
	"testing"
	"time"
)

// confdLineRE: every line of a conf.d error names the file it is about.
var confdLineRE = regexp.MustCompile(`^testdata/confd/[a-z_]+_error/(renewer\.hcl|conf\.d/[a-z0-9-]+\.hcl):[0-9]+:[0-9]+: [^;]+; .+$`)

// TestGoldenConfD checks that each testdata/confd/*_error directory (a
// renewer.hcl and its conf.d) fails with exactly the text in the matching
// .golden file, every problem in the file it is in.
func TestGoldenConfD(t *testing.T) {
	fakeEnv(t, nil)
	dirs, err := filepath.Glob("testdata/confd/*_error")
	if err != nil || len(dirs) == 0 {
		t.Fatalf("no error directories: %v", err)
	}
	for _, dir := range dirs {
		t.Run(filepath.Base(dir), func(t *testing.T) {
			_, err := Load(filepath.Join(dir, "renewer.hcl"))
			var errs *Errors
			if !errors.As(err, &errs) {
				t.Fatalf("Load = %v, want *Errors", err)
			}
			got := err.Error() + "\n"
			for _, line := range strings.Split(err.Error(), "\n") {
				if !strings.HasPrefix(line, dir+"/") || !confdLineRE.MatchString(line) {
					t.Errorf("line not in file:line:col: summary; detail form: %q", line)
				}
			}
			golden := dir + ".golden"
			if *update {
				if err := os.WriteFile(golden, []byte(got), 0o644); err != nil {
					t.Fatal(err)
				}
			}
			want, err := os.ReadFile(golden)
			if err != nil {
				t.Fatal(err)
			}
			if got != string(want) {
				t.Errorf("Error() =\n%s\nwant\n%s", got, want)
			}
		})
	}
}

// The snippets of WriteText (what an editor plugin or a long error report
// shows) come from the file each problem is in.
func TestWriteTextConfD(t *testing.T) {
	fakeEnv(t, nil)
	_, err := Load("testdata/confd/files_error/renewer.hcl")
	var errs *Errors
	if !errors.As(err, &errs) {
		t.Fatalf("Load = %v, want *Errors", err)
	}
	var buf bytes.Buffer
	errs.WriteText(&buf)
	out := buf.String()
	for _, want := range []string{
		"on testdata/confd/files_error/renewer.hcl line 6, in defaults:\n   6:   key_type = \"rsa1024\"",
		"on testdata/confd/files_error/conf.d/a.hcl line 3, in certificate \"a\":\n   2:   domains = [\"a.example.com\"\n   3:   challenge",
		"on testdata/confd/files_error/conf.d/b.hcl line 2, in certificate \"b\":\n   2:   domains = [\"b..example.com\"]",
	} {
		if !strings.Contains(out, want) {
			t.Errorf("WriteText output lacks %q:\n%s", want, out)
		}
	}
}

func write(t *testing.T, path, data string) {
	t.Helper()
	if err := os.MkdirAll(filepath.Dir(path), 0o755); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(path, []byte(data), 0o644); err != nil {
		t.Fatal(err)
	}
}

// A main file and its conf.d: conf.d files are read after the main file in
// name order, with the main file's defaults, relative paths relative to the
// main file's directory; files not named *.hcl, and hidden ones, are skipped.
func TestLoadConfD(t *testing.T) {
	fakeEnv(t, nil)
	dir := t.TempDir()
	main := filepath.Join(dir, "renewer.hcl")
	confd := filepath.Join(dir, "conf.d")
	if err := os.Mkdir(filepath.Join(dir, "webroot"), 0o755); err != nil {
		t.Fatal(err)
	}
	write(t, main, `acme {}
defaults {
  key_type    = "rsa2048"
  warn_before = "10d"
}
certificate "main" {
  domains   = ["main.example.com"]
  challenge "http" {}
}
`)
	write(t, filepath.Join(confd, "20-b.hcl"), `
certificate "b" {
  domains   = ["b.example.com"]
  key_type  = "ec384"
  challenge "http" { webroot = "webroot" }
}
`)
	write(t, filepath.Join(confd, "10-a.hcl"), `certificate "a" {
  domains   = ["a.example.com"]
  challenge "http" { listen = ":8080" }
}
watch "a-cdn" { endpoint = "cdn.example.net" }
`)
	// Not read: each would be an error (a duplicate, a global block, bad syntax).
	for _, name := range []string{"20-b.hcl~", "20-b.hcl.dpkg-dist", "20-b.hcl.bak", ".20-b.hcl", "README", ".#10-a.hcl"} {
		write(t, filepath.Join(confd, name), "storage {}\ncertificate \"b\" {\n")
	}
	if err := os.Mkdir(filepath.Join(confd, "old"), 0o755); err != nil {
		t.Fatal(err)
	}

	cfg, err := Load(main)
	if err != nil {
		t.Fatal(err)
	}
	wantFiles := []string{filepath.Join(confd, "10-a.hcl"), filepath.Join(confd, "20-b.hcl")}
	if !reflect.DeepEqual(cfg.ConfD, wantFiles) {
		t.Errorf("ConfD = %q, want %q", cfg.ConfD, wantFiles)
	}
	type summary struct {
		name, keyType string
		warn          time.Duration
		challenge     Challenge
		file          string
		line          int
	}
	var got []summary
	for _, c := range cfg.Certificates {
		got = append(got, summary{c.Name, c.KeyType, c.WarnBefore.Duration, c.Challenge, c.DeclRange.Filename, c.DeclRange.Start.Line})
	}
	day := 24 * time.Hour
	want := []summary{
		{"main", "rsa2048", 10 * day, Challenge{Type: "http", Listen: ":80"}, main, 6},
		{"a", "rsa2048", 10 * day, Challenge{Type: "http", Listen: ":8080"}, wantFiles[0], 1},
		{"b", "ec384", 10 * day, Challenge{Type: "http", Webroot: filepath.Join(dir, "webroot")}, wantFiles[1], 2},
	}
	if !reflect.DeepEqual(got, want) {
		t.Errorf("certificates =\n%+v\nwant\n%+v", got, want)
	}
	if len(cfg.Watches) != 1 || cfg.Watches[0].Name != "a-cdn" || cfg.Watches[0].DeclRange.Filename != wantFiles[0] {
		t.Errorf("watches = %+v, want a-cdn from %s", cfg.Watches, wantFiles[0])
	}

	// Parse reads the main file only.
	cfg, err = Parse(main, []byte(mustRead(t, main)))
	if err != nil || len(cfg.Certificates) != 1 || cfg.ConfD != nil {
		t.Errorf("Parse: %v, %d certificates, conf.d %q; want the main file's only", err, len(cfg.Certificates), cfg.ConfD)
	}

	// Without conf.d: the main file alone, no error.
	if err := os.RemoveAll(confd); err != nil {
		t.Fatal(err)
	}
	cfg, err = Load(main)
	if err != nil || len(cfg.Certificates) != 1 || cfg.ConfD != nil {
		t.Errorf("without conf.d: %v, %d certificates, conf.d %q", err, len(cfg.Certificates), cfg.ConfD)
	}
}

func mustRead(t *testing.T, path string) string {
	t.Helper()
	b, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	return string(b)
}

// A conf.d that is there but cannot be read, or a conf.d file that cannot
// be read (a dangling symlink, as a site removed from sites-available
// leaves), is an error naming it, not a config without those sites.
func TestLoadConfDUnreadable(t *testing.T) {
	fakeEnv(t, nil)
	for _, tc := range []struct {
		name  string
		setup func(t *testing.T, confd string)
		want  error
	}{
		{"conf.d is a file", func(t *testing.T, confd string) { write(t, confd, "") }, syscall.ENOTDIR},
		{"dangling symlink", func(t *testing.T, confd string) {
			if err := os.MkdirAll(confd, 0o755); err != nil {
				t.Fatal(err)
			}
			if err := os.Symlink("../sites-available/gone.hcl", filepath.Join(confd, "gone.hcl")); err != nil {
				t.Fatal(err)
			}
		}, fs.ErrNotExist},
		{"a directory named x.hcl", func(t *testing.T, confd string) {
			if err := os.MkdirAll(filepath.Join(confd, "x.hcl"), 0o755); err != nil {
				t.Fatal(err)
			}
		}, syscall.EISDIR},
		{"conf.d without read permission", func(t *testing.T, confd string) {
			if os.Geteuid() == 0 {
				t.Skip("root reads a directory of mode 0000")
			}
			if err := os.Mkdir(confd, 0o000); err != nil {
				t.Fatal(err)
			}
			t.Cleanup(func() { os.Chmod(confd, 0o755) })
		}, fs.ErrPermission},
	} {
		t.Run(tc.name, func(t *testing.T) {
			dir := t.TempDir()
			main := filepath.Join(dir, "renewer.hcl")
			write(t, main, "acme {}\n")
			confd := filepath.Join(dir, "conf.d")
			tc.setup(t, confd)
			_, err := Load(main)
			if !errors.Is(err, tc.want) || !strings.Contains(err.Error(), confd) {
				t.Fatalf("Load = %v, want %v naming %s", err, tc.want, confd)
			}
			var errs *Errors
			if errors.As(err, &errs) {
				t.Errorf("an unreadable conf.d gave *Errors")
			}
		})
	}
}

// A secret written in a conf.d file that others can read is warned about,
// naming that file; a private conf.d file and a private main file are not.
func TestPermissionWarningConfD(t *testing.T) {
	dir := t.TempDir()
	main := filepath.Join(dir, "renewer.hcl")
	site := filepath.Join(dir, "conf.d", "dns.hcl")
	write(t, main, "acme {}\n")
	write(t, site, `certificate "w" {
  domains = ["*.example.com"]
  challenge "dns" {
    provider = "rfc2136"
    env = {
      DNSUPDATE_NAMESERVER  = "127.0.0.1:53"
      DNSUPDATE_TSIG_SECRET = "dHNpZy1zZWNyZXQ="
    }
  }
}
`)
	cfg, err := Load(main)
	if err != nil {
		t.Fatal(err)
	}
	w := PermissionWarning(cfg)
	for _, want := range []string{site + " is readable by other users (mode 0644)", `challenge "dns" env "DNSUPDATE_TSIG_SECRET" (line 7)`} {
		if !strings.Contains(w, want) {
			t.Errorf("warning lacks %q: %s", want, w)
		}
	}
	if strings.Contains(w, main+" ") || strings.Contains(w, "dHNpZy1zZWNyZXQ") {
		t.Errorf("warning names the main file or shows the secret: %s", w)
	}
	if err := os.Chmod(site, 0o640); err != nil {
		t.Fatal(err)
	}
	if w := PermissionWarning(cfg); w != "" {
		t.Errorf("warning for a private conf.d file: %s", w)
	}
}
