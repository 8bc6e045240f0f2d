package store

import (
	"bytes"
	"context"
	"encoding/json"
	"encoding/pem"
	"errors"
	"os"
	"path/filepath"
	"regexp"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/gofrs/flock"

	"github.com/renewer/renewer/internal/certinfo"
	"github.com/renewer/renewer/internal/certinfo/certtest"
)

var t0 = time.Date(2026, 11, 23, 8, 20, 0, 0, time.UTC)

// testStore opens a store whose clock is *clock.
func testStore(t *testing.T, keep int, clock *time.Time) *Store {
	t.Helper()
	s, err := Open(filepath.Join(t.TempDir(), "root"), keep)
	if err != nil {
		t.Fatal(err)
	}
	s.now = func() time.Time { return *clock }
	return s
}

// issue returns a bundle valid for names from t0-1h to t0+90d.
func issue(t *testing.T, names ...string) Bundle {
	t.Helper()
	full, key := certtest.Issue(t, certtest.Options{
		Names:     names,
		NotBefore: t0.Add(-time.Hour),
		NotAfter:  t0.Add(90 * 24 * time.Hour),
	})
	return split(t, full, key)
}

// split cuts a fullchain into leaf and chain.
func split(t *testing.T, full, key []byte) Bundle {
	t.Helper()
	block, rest := pem.Decode(full)
	if block == nil {
		t.Fatal("no PEM in fullchain")
	}
	return Bundle{Cert: full[:len(full)-len(rest)], Chain: bytes.TrimLeft(rest, "\n"), Key: key}
}

func mode(t *testing.T, path string) os.FileMode {
	t.Helper()
	fi, err := os.Lstat(path)
	if err != nil {
		t.Fatal(err)
	}
	return fi.Mode().Perm()
}

func readFile(t *testing.T, path string) []byte {
	t.Helper()
	data, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	return data
}

// snapshot reads every file of v.
func snapshot(t *testing.T, v *Version) map[string][]byte {
	t.Helper()
	m := map[string][]byte{}
	for _, p := range []string{v.Cert, v.Chain, v.Fullchain, v.Key, filepath.Join(v.Dir, MetaFile)} {
		m[p] = readFile(t, p)
	}
	return m
}

func TestInstallAndLive(t *testing.T) {
	clock := t0
	s := testStore(t, 3, &clock)
	if _, err := s.Live("www"); !errors.Is(err, ErrNotFound) {
		t.Fatalf("Live before install: err = %v, want ErrNotFound", err)
	}
	b := issue(t, "example.com", "www.example.com")
	v, err := s.Install("www", []string{"example.com", "www.example.com"}, b, t0)
	if err != nil {
		t.Fatal(err)
	}

	if !regexp.MustCompile(`^20261123T082000Z-[0-9a-f]{1,8}$`).MatchString(v.ID) {
		t.Errorf("version ID %q has the wrong form", v.ID)
	}
	if v.Name != "www" || v.Dir != filepath.Join(s.Root(), "certs", "www", v.ID) {
		t.Errorf("version = %+v", v)
	}
	files := []struct {
		path string
		want []byte
		mode os.FileMode
	}{
		{v.Cert, b.Cert, 0o644},
		{v.Chain, b.Chain, 0o644},
		{v.Fullchain, append(slices.Clone(b.Cert), b.Chain...), 0o644},
		{v.Key, b.Key, 0o600},
	}
	for _, f := range files {
		if got := readFile(t, f.path); !bytes.Equal(got, f.want) {
			t.Errorf("%s: content differs:\n%s\nwant\n%s", f.path, got, f.want)
		}
		if m := mode(t, f.path); m != f.mode {
			t.Errorf("%s: mode %o, want %o", f.path, m, f.mode)
		}
	}
	for _, d := range []string{s.Root(), v.Dir, filepath.Dir(v.Dir), filepath.Join(s.Root(), "accounts"),
		filepath.Join(s.Root(), "live"), filepath.Join(s.Root(), "state"), filepath.Join(s.Root(), "locks")} {
		if m := mode(t, d); m != 0o700 {
			t.Errorf("%s: mode %o, want 700", d, m)
		}
	}

	var m meta
	if err := json.Unmarshal(readFile(t, filepath.Join(v.Dir, MetaFile)), &m); err != nil {
		t.Fatal(err)
	}
	if m.Name != "www" || m.Serial == "" || !m.NotAfter.Equal(t0.Add(90*24*time.Hour)) ||
		!slices.Equal(m.Domains, []string{"example.com", "www.example.com"}) || !m.InstalledAt.Equal(t0) {
		t.Errorf("meta = %+v", m)
	}
	if !strings.HasPrefix(strings.ToLower(strings.ReplaceAll(m.Serial, ":", "")), strings.TrimPrefix(v.ID, "20261123T082000Z-")) {
		t.Errorf("ID %q does not carry serial %q", v.ID, m.Serial)
	}

	link := filepath.Join(s.Root(), "live", "www")
	target, err := os.Readlink(link)
	if err != nil {
		t.Fatal(err)
	}
	if want := filepath.Join("..", "certs", "www", v.ID); target != want {
		t.Errorf("live link -> %q, want %q", target, want)
	}
	// The link resolves, so readers can use live/<name>/privkey.pem.
	if got := readFile(t, filepath.Join(link, KeyFile)); !bytes.Equal(got, b.Key) {
		t.Error("key through the live link differs")
	}

	live, err := s.Live("www")
	if err != nil {
		t.Fatal(err)
	}
	if *live != *v {
		t.Errorf("Live = %+v, want %+v", live, v)
	}
	ids, err := s.Versions("www")
	if err != nil || !slices.Equal(ids, []string{v.ID}) {
		t.Errorf("Versions = %v, %v", ids, err)
	}
	if ids, err := s.Versions("none"); err != nil || len(ids) != 0 {
		t.Errorf("Versions(none) = %v, %v", ids, err)
	}
}

func TestInstallSwapsAndPrunes(t *testing.T) {
	for _, keep := range []int{0, 1, 3} {
		t.Run(string(rune('0'+keep)), func(t *testing.T) {
			clock := t0
			s := testStore(t, keep, &clock)
			var ids []string
			for i := range 4 {
				clock = t0.Add(time.Duration(i) * time.Minute)
				v, err := s.Install("a", []string{"a.example"}, issue(t, "a.example"), t0)
				if err != nil {
					t.Fatal(err)
				}
				if i > 0 && keep > 0 {
					if _, err := os.Stat(filepath.Join(filepath.Dir(v.Dir), ids[i-1])); err != nil {
						t.Errorf("previous version gone: %v", err)
					}
				}
				ids = append(ids, v.ID)
				live, err := s.Live("a")
				if err != nil || live.ID != v.ID {
					t.Fatalf("Live = %v, %v; want %s", live, err, v.ID)
				}
			}
			got, err := s.Versions("a")
			if err != nil {
				t.Fatal(err)
			}
			if want := ids[len(ids)-min(keep+1, len(ids)):]; !slices.Equal(got, want) {
				t.Errorf("Versions = %v, want %v", got, want)
			}
		})
	}
}

// Several installs within one second: IDs stay distinct and Versions keeps
// installation order.
func TestInstallSameSecond(t *testing.T) {
	clock := t0
	s := testStore(t, 10, &clock)
	b := issue(t, "a.example")
	var ids []string
	for i := range 5 {
		clock = t0.Add(time.Duration(i) * time.Millisecond)
		v, err := s.Install("a", []string{"a.example"}, b, t0) // same serial every time
		if err != nil {
			t.Fatal(err)
		}
		ids = append(ids, v.ID)
	}
	for i, id := range ids[1:] {
		if want := ids[0] + "-" + string(rune('2'+i)); id != want {
			t.Errorf("ID %q, want %q", id, want)
		}
	}
	if got, err := s.Versions("a"); err != nil || !slices.Equal(got, ids) {
		t.Errorf("Versions = %v, %v; want %v", got, err, ids)
	}
}

func TestInstallInvalidKeepsLive(t *testing.T) {
	good := issue(t, "a.example", "b.example")
	other := issue(t, "a.example", "b.example")
	fullExpired, keyExpired := certtest.Issue(t, certtest.Options{
		Names:     []string{"a.example", "b.example"},
		NotBefore: t0.Add(-90 * 24 * time.Hour),
		NotAfter:  t0.Add(-time.Hour),
	})
	tests := []struct {
		name    string
		domains []string
		b       Bundle
		now     time.Time
		wantErr error // nil: any error
	}{
		{"key mismatch", []string{"a.example"}, Bundle{Cert: good.Cert, Chain: good.Chain, Key: other.Key}, t0, certinfo.ErrKeyMismatch},
		{"names not covered", []string{"a.example", "c.example"}, good, t0, certinfo.ErrNames},
		{"expired", []string{"a.example"}, split(t, fullExpired, keyExpired), t0, certinfo.ErrExpired},
		{"expired at now", []string{"a.example"}, good, t0.Add(91 * 24 * time.Hour), certinfo.ErrExpired},
		{"wrong chain", []string{"a.example"}, Bundle{Cert: good.Cert, Chain: other.Chain, Key: good.Key}, t0, certinfo.ErrChain},
		{"missing chain", []string{"a.example"}, Bundle{Cert: good.Cert, Key: good.Key}, t0, certinfo.ErrChain},
		{"no key", []string{"a.example"}, Bundle{Cert: good.Cert, Chain: good.Chain}, t0, nil},
		{"garbage", []string{"a.example"}, Bundle{Cert: []byte("junk"), Key: []byte("junk")}, t0, nil},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			clock := t0
			s := testStore(t, 3, &clock)

			// Nothing live yet: a bad install leaves nothing behind.
			if _, err := s.Install("a", tt.domains, tt.b, tt.now); err == nil {
				t.Fatal("first Install succeeded")
			}
			if _, err := s.Live("a"); !errors.Is(err, ErrNotFound) {
				t.Errorf("Live after failed first install: %v", err)
			}
			if entries, _ := os.ReadDir(filepath.Join(s.Root(), "certs", "a")); len(entries) != 0 {
				t.Errorf("leftovers: %v", entries)
			}

			prev, err := s.Install("a", []string{"a.example"}, good, t0)
			if err != nil {
				t.Fatal(err)
			}
			before := snapshot(t, prev)
			clock = t0.Add(time.Minute)
			if _, err := s.Install("a", tt.domains, tt.b, tt.now); err == nil {
				t.Fatal("Install succeeded")
			} else if tt.wantErr != nil && !errors.Is(err, tt.wantErr) {
				t.Errorf("err = %v, want %v", err, tt.wantErr)
			}
			live, err := s.Live("a")
			if err != nil || *live != *prev {
				t.Fatalf("Live = %+v, %v; want %+v", live, err, prev)
			}
			for p, want := range before {
				if got := readFile(t, p); !bytes.Equal(got, want) {
					t.Errorf("%s changed", p)
				}
			}
			entries, err := os.ReadDir(filepath.Join(s.Root(), "certs", "a"))
			if err != nil {
				t.Fatal(err)
			}
			if len(entries) != 1 || entries[0].Name() != prev.ID {
				t.Errorf("certs/a holds %v, want only %s", entries, prev.ID)
			}
			if entries, _ := os.ReadDir(filepath.Join(s.Root(), "live")); len(entries) != 1 {
				t.Errorf("live holds %v", entries)
			}
		})
	}
}

func TestStalePruning(t *testing.T) {
	clock := t0
	s := testStore(t, 3, &clock)
	stale := filepath.Join(s.Root(), "certs", "a", tmpPrefix+"old")
	fresh := filepath.Join(s.Root(), "certs", "a", tmpPrefix+"new")
	for _, d := range []string{stale, fresh} {
		if err := os.MkdirAll(d, 0o700); err != nil {
			t.Fatal(err)
		}
	}
	if err := os.Chtimes(stale, t0.Add(-2*time.Hour), t0.Add(-2*time.Hour)); err != nil {
		t.Fatal(err)
	}
	if err := os.Chtimes(fresh, t0.Add(-time.Minute), t0.Add(-time.Minute)); err != nil {
		t.Fatal(err)
	}
	if ids, err := s.Versions("a"); err != nil || len(ids) != 0 {
		t.Errorf("Versions lists temp dirs: %v, %v", ids, err)
	}
	if _, err := s.Install("a", []string{"a.example"}, issue(t, "a.example"), t0); err != nil {
		t.Fatal(err)
	}
	if _, err := os.Stat(stale); !errors.Is(err, os.ErrNotExist) {
		t.Errorf("stale temp dir still there: %v", err)
	}
	if _, err := os.Stat(fresh); err != nil {
		t.Errorf("fresh temp dir removed: %v", err)
	}
}

func TestLiveDangling(t *testing.T) {
	clock := t0
	s := testStore(t, 3, &clock)
	v, err := s.Install("a", []string{"a.example"}, issue(t, "a.example"), t0)
	if err != nil {
		t.Fatal(err)
	}
	if err := os.RemoveAll(v.Dir); err != nil {
		t.Fatal(err)
	}
	if _, err := s.Live("a"); !errors.Is(err, ErrNotFound) {
		t.Errorf("Live with dangling link: %v, want ErrNotFound", err)
	}
	if err := os.Remove(filepath.Join(s.Root(), "live", "a")); err != nil {
		t.Fatal(err)
	}
	if err := os.Symlink("/etc", filepath.Join(s.Root(), "live", "a")); err != nil {
		t.Fatal(err)
	}
	if _, err := s.Live("a"); err == nil {
		t.Error("Live accepted a link outside certs/a")
	}
}

func TestState(t *testing.T) {
	clock := t0
	s := testStore(t, 3, &clock)

	st, err := s.LoadState("a")
	if err != nil || st != (State{}) {
		t.Fatalf("missing state: %+v, %v", st, err)
	}

	want := State{
		LastAttempt:     t0,
		LastResult:      "failed",
		LastError:       "boom",
		LastSuccess:     t0.Add(-time.Hour),
		Failures:        2,
		NextAttempt:     t0.Add(2 * time.Minute),
		InstalledSerial: "0A1B",
		AppliedSerial:   "0A1B",
	}
	for _, st := range []State{{}, want} {
		if err := s.SaveState("a", st); err != nil {
			t.Fatal(err)
		}
		got, err := s.LoadState("a")
		if err != nil {
			t.Fatal(err)
		}
		if got != st {
			t.Errorf("round trip: got %+v, want %+v", got, st)
		}
	}
	path := filepath.Join(s.Root(), "state", "a.json")
	if m := mode(t, path); m != 0o600 {
		t.Errorf("state mode %o, want 600", m)
	}
	if err := s.SaveState("b", State{}); err != nil {
		t.Fatal(err)
	}
	if got := strings.TrimSpace(string(readFile(t, filepath.Join(s.Root(), "state", "b.json")))); got != "{}" {
		t.Errorf("zero state written as %s", got)
	}

	if err := os.WriteFile(path, []byte("{not json"), 0o600); err != nil {
		t.Fatal(err)
	}
	if _, err := s.LoadState("a"); err == nil || !strings.Contains(err.Error(), path) {
		t.Errorf("corrupt state: err = %v, want one naming %s", err, path)
	}
}

func TestTryLock(t *testing.T) {
	root := t.TempDir()
	s1, err := Open(root, 1)
	if err != nil {
		t.Fatal(err)
	}
	s2, err := Open(root, 1)
	if err != nil {
		t.Fatal(err)
	}

	unlock, ok, err := s1.TryLock("a")
	if err != nil || !ok {
		t.Fatalf("first TryLock: %v, %v", ok, err)
	}
	if _, ok, err := s2.TryLock("a"); err != nil || ok {
		t.Errorf("second TryLock while held: ok=%v err=%v", ok, err)
	}
	fl := flock.New(filepath.Join(root, "locks", "a.lock"))
	if ok, err := fl.TryLock(); err != nil || ok {
		t.Errorf("foreign flock while held: ok=%v err=%v", ok, err)
	}
	if u, ok, err := s2.TryLock("b"); err != nil || !ok {
		t.Errorf("other name: ok=%v err=%v", ok, err)
	} else {
		u()
	}
	if m := mode(t, filepath.Join(root, "locks", "a.lock")); m != 0o600 {
		t.Errorf("lock file mode %o", m)
	}

	unlock()
	unlock() // idempotent
	u2, ok, err := s2.TryLock("a")
	if err != nil || !ok {
		t.Fatalf("TryLock after unlock: %v, %v", ok, err)
	}
	u2()
	if ok, err := fl.TryLock(); err != nil || !ok {
		t.Errorf("foreign flock after unlock: ok=%v err=%v", ok, err)
	}
	// Held by a foreign handle: the store must wait for it too.
	if _, ok, err := s1.TryLock("a"); err != nil || ok {
		t.Errorf("TryLock while foreign handle holds: ok=%v err=%v", ok, err)
	}
	fl.Unlock()
}

func TestLock(t *testing.T) {
	root := t.TempDir()
	s1, _ := Open(root, 1)
	s2, _ := Open(root, 1)

	unlock, err := s1.Lock(context.Background(), "a")
	if err != nil {
		t.Fatal(err)
	}

	ctx, cancel := context.WithTimeout(context.Background(), 250*time.Millisecond)
	defer cancel()
	start := time.Now()
	if _, err := s2.Lock(ctx, "a"); !errors.Is(err, context.DeadlineExceeded) {
		t.Errorf("Lock while held: err = %v, want deadline exceeded", err)
	}
	if d := time.Since(start); d < 200*time.Millisecond {
		t.Errorf("Lock gave up after %v, before ctx was done", d)
	}

	cctx, ccancel := context.WithCancel(context.Background())
	ccancel()
	if _, err := s2.Lock(cctx, "a"); !errors.Is(err, context.Canceled) {
		t.Errorf("Lock with cancelled ctx: err = %v", err)
	}

	// A waiter gets the lock once it is released.
	released := make(chan struct{})
	go func() {
		time.Sleep(150 * time.Millisecond)
		close(released)
		unlock()
	}()
	ctx2, cancel2 := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel2()
	u2, err := s2.Lock(ctx2, "a")
	if err != nil {
		t.Fatal(err)
	}
	select {
	case <-released:
	default:
		t.Error("Lock returned before the holder released it")
	}
	u2()
}

func TestNameValidation(t *testing.T) {
	clock := t0
	s := testStore(t, 3, &clock)
	ctx := context.Background()
	ops := map[string]func(name string) error{
		"Install": func(n string) error {
			_, err := s.Install(n, []string{"a.example"}, Bundle{}, t0)
			return err
		},
		"Live":      func(n string) error { _, err := s.Live(n); return err },
		"Versions":  func(n string) error { _, err := s.Versions(n); return err },
		"LoadState": func(n string) error { _, err := s.LoadState(n); return err },
		"SaveState": func(n string) error { return s.SaveState(n, State{}) },
		"Lock":      func(n string) error { _, err := s.Lock(ctx, n); return err },
		"TryLock":   func(n string) error { _, _, err := s.TryLock(n); return err },
	}
	for _, name := range []string{"../x", "", ".hidden", "a/b", "..", "a\\b", "a\x00b"} {
		for op, f := range ops {
			if err := f(name); err == nil || !strings.Contains(err.Error(), "name") {
				t.Errorf("%s(%q): err = %v, want a name error", op, name, err)
			}
		}
	}
	for _, name := range []string{"example.com", "a", "www-1_x"} {
		if err := validName(name); err != nil {
			t.Errorf("validName(%q) = %v", name, err)
		}
	}
	if entries, _ := os.ReadDir(filepath.Dir(s.Root())); len(entries) != 1 {
		t.Errorf("something was written outside the root: %v", entries)
	}
}

func TestAccountDir(t *testing.T) {
	clock := t0
	s := testStore(t, 3, &clock)
	tests := []struct{ key, want string }{
		{"me@example.com", "me@example.com"},
		{"acme-v02.api.letsencrypt.org/directory", "acme-v02.api.letsencrypt.org_directory"},
		{"../x", "_._x"},
		{"..", "_."},
		{".hidden", "_hidden"},
		{"a b:c", "a_b_c"},
	}
	for _, tt := range tests {
		dir, err := s.AccountDir(tt.key)
		if err != nil {
			t.Fatalf("AccountDir(%q): %v", tt.key, err)
		}
		if want := filepath.Join(s.Root(), "accounts", tt.want); dir != want {
			t.Errorf("AccountDir(%q) = %s, want %s", tt.key, dir, want)
		}
		if m := mode(t, dir); m != 0o700 {
			t.Errorf("%s: mode %o", dir, m)
		}
	}
	if _, err := s.AccountDir(""); err == nil {
		t.Error("AccountDir(\"\") succeeded")
	}
}

func TestOpen(t *testing.T) {
	if _, err := Open(t.TempDir(), -1); err == nil {
		t.Error("Open with keep -1 succeeded")
	}
	// Relative roots become absolute.
	t.Chdir(t.TempDir())
	s, err := Open("rel", 0)
	if err != nil {
		t.Fatal(err)
	}
	if !filepath.IsAbs(s.Root()) {
		t.Errorf("Root() = %q, not absolute", s.Root())
	}
}

// A storage directory that exists with looser permissions (made by hand or
// by a package) is made 0700 on open, and so are a certificate's and an
// account's directories.
func TestOpenTightensDirectories(t *testing.T) {
	root := filepath.Join(t.TempDir(), "root")
	for _, d := range []string{"", "certs", "certs/www", "live", "state", "accounts", "accounts/x"} {
		if err := os.MkdirAll(filepath.Join(root, d), 0o755); err != nil {
			t.Fatal(err)
		}
		if err := os.Chmod(filepath.Join(root, d), 0o755); err != nil {
			t.Fatal(err)
		}
	}
	s, err := Open(root, 3)
	if err != nil {
		t.Fatal(err)
	}
	for _, d := range []string{"", "accounts", "certs", "live", "state", "locks"} {
		if m := mode(t, filepath.Join(root, d)); m != 0o700 {
			t.Errorf("%s: mode %o after Open, want 700", d, m)
		}
	}
	if _, err := s.Install("www", []string{"www.example.com"}, issue(t, "www.example.com"), t0); err != nil {
		t.Fatal(err)
	}
	if _, err := s.AccountDir("x"); err != nil {
		t.Fatal(err)
	}
	for _, d := range []string{"certs/www", "accounts/x"} {
		if m := mode(t, filepath.Join(root, d)); m != 0o700 {
			t.Errorf("%s: mode %o, want 700", d, m)
		}
	}
}
