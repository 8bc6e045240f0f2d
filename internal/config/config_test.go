package config

import (
	"github.com/robfig/cron/v3"

	"bytes"
	"errors"
	"flag"
	"io/fs"
	"os"
	"path/filepath"
	"reflect"
	"regexp"
	"strings"
	"testing"
	"time"

	"github.com/hashicorp/hcl/v2"
)

var update = flag.Bool("update", false, "rewrite testdata/*_error.golden")

// fakeEnv makes env() see only vars for the rest of the test.
func fakeEnv(t *testing.T, vars map[string]string) {
	t.Helper()
	old := lookupEnv
	lookupEnv = func(k string) (string, bool) { v, ok := vars[k]; return v, ok }
	t.Cleanup(func() { lookupEnv = old })
}

func abs(t *testing.T, p string) string {
	t.Helper()
	a, err := filepath.Abs(p)
	if err != nil {
		t.Fatal(err)
	}
	return a
}

func TestLoadFull(t *testing.T) {
	fakeEnv(t, map[string]string{"RENEWER_TEST_HOME": "/home/test"})
	cfg, err := Load("testdata/full.hcl")
	if err != nil {
		t.Fatal(err)
	}
	wantLines := map[string]int{"www": 19, "api.v2": 52, "mail": 59}
	for i := range cfg.Certificates {
		c := &cfg.Certificates[i]
		if r := c.DeclRange; r.Filename != "testdata/full.hcl" || r.Start.Line != wantLines[c.Name] {
			t.Errorf("certificate %q: DeclRange = %s, want line %d", c.Name, r, wantLines[c.Name])
		}
		c.DeclRange = hcl.Range{}
		for j := range c.Verify {
			c.Verify[j].DeclRange = hcl.Range{}
		}
	}
	want := &Config{
		File:    "testdata/full.hcl",
		Storage: Storage{Path: abs(t, "testdata/state"), KeepVersions: 0},
		ACME: ACME{
			Directory:        LetsEncrypt,
			StagingDirectory: LetsEncryptStaging,
			Email:            "ops@example.com",
			AcceptTerms:      true,
			CABundle:         abs(t, "testdata/roots.pem"),
		},
		Daemon: Daemon{Check: "0 */6 * * *", Schedule: mustCron(t, "0 */6 * * *"), Jitter: 0, Concurrency: 8,
			RetryMin: 30 * time.Second, RetryMax: 2 * time.Hour, ShutdownGrace: time.Minute},
		Certificates: []Certificate{
			{
				Name:        "www",
				Domains:     []string{"example.com", "www.example.com", "192.0.2.1", "2001:db8::1"},
				KeyType:     "rsa2048",
				RenewBefore: RenewBefore{Duration: 30 * 24 * time.Hour},
				ARI:         true,
				Challenge:   Challenge{Type: "http", Webroot: abs(t, "testdata/webroot")},
				Install: &Install{
					Dir: "/etc/ssl/renewer/www", HAProxyBundle: "/etc/haproxy/certs/www.pem",
					Owner: "root", Group: "0", UID: 0, GID: 0, CertMode: 0o640, KeyMode: 0o640,
				},
				Hooks: []Hook{
					{
						Name:    "reload",
						Command: []string{"/bin/sh", "-c", "nginx -s reload"},
						Timeout: 30 * time.Second,
						Env:     map[string]string{"TOKEN": "hunter2", "HOME_DIR": "/home/test"},
					},
					{Name: "notify", Command: []string{"/usr/local/bin/notify"}, Timeout: 60 * time.Second},
				},
				Verify: []Verify{
					{Endpoint: "127.0.0.1:443", ServerName: "example.com", Timeout: 30 * time.Second},
					{Endpoint: "[::1]:8443", ServerName: "www.example.com", Timeout: time.Minute},
				},
			},
			{
				Name:        "api.v2",
				Domains:     []string{"api.example.com"},
				KeyType:     "ec384",
				RenewBefore: RenewBefore{Fraction: 1.0 / 3},
				ARI:         true,
				Challenge:   Challenge{Type: "http", Listen: "127.0.0.1:8080"},
			},
			{
				Name:        "mail",
				Domains:     []string{"mail.example.com"},
				KeyType:     "ec384",
				RenewBefore: RenewBefore{Fraction: 0.25},
				Challenge:   Challenge{Type: "http", Listen: ":80"},
			},
		},
	}
	if !reflect.DeepEqual(cfg, want) {
		t.Errorf("Load(full.hcl) =\n%+v\nwant\n%+v", cfg, want)
	}
}

func TestDefaults(t *testing.T) {
	tests := []struct {
		file string
		want Config
	}{
		{"testdata/minimal.hcl", Config{
			File:    "testdata/minimal.hcl",
			Storage: Storage{Path: "/var/lib/renewer", KeepVersions: 3},
			ACME:    ACME{Directory: LetsEncrypt, StagingDirectory: LetsEncryptStaging},
			Daemon:  defaultDaemon(),
		}},
		{"testdata/staging.hcl", Config{
			File:    "testdata/staging.hcl",
			Storage: Storage{Path: "/var/lib/renewer", KeepVersions: 3},
			ACME:    ACME{Directory: LetsEncryptStaging, StagingDirectory: LetsEncryptStaging},
			Daemon:  defaultDaemon(),
		}},
		{"testdata/custom_ca.hcl", Config{
			File:    "testdata/custom_ca.hcl",
			Storage: Storage{Path: "/var/lib/renewer", KeepVersions: 3},
			ACME:    ACME{Directory: "https://acme.internal:14000/dir", StagingDirectory: "https://acme.internal:14000/dir"},
			Daemon:  defaultDaemon(),
		}},
	}
	for _, tt := range tests {
		t.Run(tt.file, func(t *testing.T) {
			cfg, err := Load(tt.file)
			if err != nil {
				t.Fatal(err)
			}
			if !reflect.DeepEqual(*cfg, tt.want) {
				t.Errorf("got\n%+v\nwant\n%+v", *cfg, tt.want)
			}
		})
	}
}

func TestCertificateDefaults(t *testing.T) {
	src := `
acme {}
certificate "x" {
  domains = ["x.example.com"]
  challenge "http" {}
  hook "h" { command = ["true"] }
}`
	cfg, err := Parse("/etc/renewer/renewer.hcl", []byte(src))
	if err != nil {
		t.Fatal(err)
	}
	c := cfg.Certificates[0]
	if c.KeyType != "ec256" || !c.RenewBefore.IsDefault() || !c.ARI || c.Challenge != (Challenge{Type: "http", Listen: ":80"}) ||
		c.Install != nil || c.Hooks[0].Timeout != 60*time.Second || c.Hooks[0].Env != nil {
		t.Errorf("defaults not applied: %+v", c)
	}
}

var lineRE = regexp.MustCompile(`^testdata/[a-z_]+_error\.hcl:[0-9]+:[0-9]+: [^;]+; .+$`)

// TestGolden checks that each testdata/*_error.hcl fails with exactly the
// text in the matching .golden file (Error() plus a final newline).
func TestGolden(t *testing.T) {
	fakeEnv(t, map[string]string{"RENEWER_TEST_HOME": "/home/test"})
	files, err := filepath.Glob("testdata/*_error.hcl")
	if err != nil || len(files) == 0 {
		t.Fatalf("no error files: %v", err)
	}
	for _, file := range files {
		t.Run(filepath.Base(file), func(t *testing.T) {
			_, err := Load(file)
			var errs *Errors
			if !errors.As(err, &errs) {
				t.Fatalf("Load = %v, want *Errors", err)
			}
			got := err.Error() + "\n"
			for _, line := range strings.Split(err.Error(), "\n") {
				if !strings.HasPrefix(line, file+":") || !lineRE.MatchString(line) {
					t.Errorf("line not in file:line:col: summary; detail form: %q", line)
				}
			}
			golden := strings.TrimSuffix(file, ".hcl") + ".golden"
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

func TestThreeErrors(t *testing.T) {
	_, err := Load("testdata/three_error.hcl")
	if err == nil {
		t.Fatal("no error")
	}
	lines := strings.Split(err.Error(), "\n")
	want := []string{"testdata/three_error.hcl:7:", "testdata/three_error.hcl:8:", "testdata/three_error.hcl:10:"}
	if len(lines) != len(want) {
		t.Fatalf("got %d lines, want 3:\n%s", len(lines), err)
	}
	for i := range want {
		if !strings.HasPrefix(lines[i], want[i]) {
			t.Errorf("line %d = %q, want prefix %q", i, lines[i], want[i])
		}
	}
}

func TestWriteText(t *testing.T) {
	_, err := Load("testdata/three_error.hcl")
	var errs *Errors
	if !errors.As(err, &errs) {
		t.Fatalf("Load = %v, want *Errors", err)
	}
	var buf bytes.Buffer
	errs.WriteText(&buf)
	out := buf.String()
	for _, want := range []string{
		"Error: Duplicate domain",
		"on testdata/three_error.hcl line 7, in certificate \"www\":",
		`domains  = ["example.com", "www.example.com", "example.com"]`,
		"Error: Unsupported key type",
		"Error: Invalid webroot",
	} {
		if !strings.Contains(out, want) {
			t.Errorf("WriteText output lacks %q:\n%s", want, out)
		}
	}
	if strings.Contains(out, "\x1b[") {
		t.Errorf("WriteText output has colour codes:\n%s", out)
	}
}

func TestLoadMissingFile(t *testing.T) {
	_, err := Load("testdata/does-not-exist.hcl")
	if !errors.Is(err, fs.ErrNotExist) {
		t.Fatalf("Load = %v, want fs.ErrNotExist", err)
	}
	var errs *Errors
	if errors.As(err, &errs) {
		t.Errorf("unreadable file gave *Errors")
	}
}

func TestFunctions(t *testing.T) {
	dir := t.TempDir()
	write := func(name, data string) {
		if err := os.WriteFile(filepath.Join(dir, name), []byte(data), 0o600); err != nil {
			t.Fatal(err)
		}
	}
	write("lf.txt", "secret\n")
	write("crlf.txt", "secret\r\n")
	write("none.txt", "secret")
	write("two.txt", "secret\n\n")
	write("bin.txt", "\xff\xfe")
	if err := os.Mkdir(filepath.Join(dir, "sub"), 0o700); err != nil {
		t.Fatal(err)
	}
	fakeEnv(t, map[string]string{"SET": "from-env", "EMPTY": ""})

	tests := []struct {
		expr    string
		want    string // e-mail decoded from expr
		wantErr string // substring of the error
	}{
		{expr: `"${env("SET")}@example.com"`, want: "from-env@example.com"},
		{expr: `"a${env("EMPTY")}@example.com"`, want: "a@example.com"},
		{expr: `"${file("lf.txt")}@example.com"`, want: "secret@example.com"},
		{expr: `"${file("crlf.txt")}@example.com"`, want: "secret@example.com"},
		{expr: `"${file("none.txt")}@example.com"`, want: "secret@example.com"},
		{expr: `"${file("` + filepath.Join(dir, "lf.txt") + `")}@example.com"`, want: "secret@example.com"},
		{expr: `file("two.txt")`, wantErr: `"secret\n" does not look like an e-mail address`},
		{expr: `env("UNSET")`, wantErr: `:3:11: Error in function call; Call to function "env" failed: environment variable "UNSET" is not set.`},
		{expr: `env()`, wantErr: `Not enough function arguments`},
		{expr: `env(null)`, wantErr: `Invalid function argument`},
		{expr: `file("nope.txt")`, wantErr: `Call to function "file" failed: open ` + filepath.Join(dir, "nope.txt") + `: no such file or directory.`},
		{expr: `file("sub")`, wantErr: `Call to function "file" failed: read ` + filepath.Join(dir, "sub") + `: is a directory.`},
		{expr: `file("bin.txt")`, wantErr: `bin.txt is not valid UTF-8 text.`},
		{expr: `file("/dev/zero")`, wantErr: `Call to function "file" failed: read /dev/zero: file is larger than 1 MiB.`},
	}
	for _, tt := range tests {
		t.Run(tt.expr, func(t *testing.T) {
			src := "\nacme {\n  email = " + tt.expr + "\n}\n"
			cfg, err := Parse(filepath.Join(dir, "renewer.hcl"), []byte(src))
			if tt.wantErr != "" {
				if err == nil || !strings.Contains(err.Error(), tt.wantErr) {
					t.Fatalf("err = %v, want it to contain %q", err, tt.wantErr)
				}
				return
			}
			if err != nil {
				t.Fatal(err)
			}
			if cfg.ACME.Email != tt.want {
				t.Errorf("email = %q, want %q", cfg.ACME.Email, tt.want)
			}
		})
	}
}

func TestErrorsFormat(t *testing.T) {
	e := &Errors{Diags: hcl.Diagnostics{
		{Severity: hcl.DiagWarning, Summary: "Just a warning"},
		{Severity: hcl.DiagError, Summary: "No subject", Detail: "Two\nlines."},
		{Severity: hcl.DiagError, Summary: "No detail", Subject: &hcl.Range{Filename: "f.hcl", Start: hcl.Pos{Line: 2, Column: 3}}},
	}}
	want := "No subject; Two lines.\nf.hcl:2:3: No detail"
	if got := e.Error(); got != want {
		t.Errorf("Error() = %q, want %q", got, want)
	}
}

func mustCron(t *testing.T, spec string) cron.Schedule {
	t.Helper()
	s, err := cronParser.Parse(spec)
	if err != nil {
		t.Fatal(err)
	}
	return s
}

func TestFleet(t *testing.T) {
	cfg, err := Load("testdata/fleet.hcl")
	if err != nil {
		t.Fatal(err)
	}
	want := &Fleet{
		Node: "edge-1", KeyFile: abs(t, "testdata/fleet.key"), LockTTL: DefaultLockTTL, NodeGoneAfter: 15 * time.Minute,
		Etcd: Etcd{
			Endpoints: []string{"https://10.0.0.1:2379", "https://10.0.0.2:2379"}, Prefix: "/renewer/prod",
			CAFile: abs(t, "testdata/etcd-ca.pem"), CertFile: abs(t, "testdata/etcd-client.pem"), KeyFile: abs(t, "testdata/etcd-client.key"),
			Username: "renewer", PasswordFile: abs(t, "testdata/etcd.pass"), DialTimeout: DefaultDialTimeout,
		},
	}
	got := cfg.Fleet
	if got == nil {
		t.Fatal("no fleet decoded")
	}
	got.Range = hcl.Range{}
	if !reflect.DeepEqual(got, want) {
		t.Errorf("fleet =\n%+v\nwant\n%+v", got, want)
	}
	if cfg, err := Load("testdata/minimal.hcl"); err != nil || cfg.Fleet != nil {
		t.Errorf("minimal config: fleet %+v, %v", cfg.Fleet, err)
	}
}
