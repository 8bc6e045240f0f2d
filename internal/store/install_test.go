package store

import (
	"bytes"
	"os"
	"path/filepath"
	"slices"
	"syscall"
	"testing"
)

func TestWriteTargetDir(t *testing.T) {
	clock := t0
	s := testStore(t, 3, &clock)
	b := issue(t, "a.example")
	v, err := s.Install("a", []string{"a.example"}, b, t0)
	if err != nil {
		t.Fatal(err)
	}
	dir := filepath.Join(t.TempDir(), "etc", "ssl", "a")

	// A pre-existing key with loose permissions gets 0600.
	if err := os.MkdirAll(dir, 0o755); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(filepath.Join(dir, KeyFile), []byte("old"), 0o644); err != nil {
		t.Fatal(err)
	}

	if err := WriteTarget(v, Target{Dir: dir}); err != nil {
		t.Fatal(err)
	}
	for _, f := range []struct {
		name string
		want []byte
		mode os.FileMode
	}{
		{CertFile, b.Cert, 0o644},
		{ChainFile, b.Chain, 0o644},
		{FullchainFile, append(slices.Clone(b.Cert), b.Chain...), 0o644},
		{KeyFile, b.Key, 0o600},
	} {
		p := filepath.Join(dir, f.name)
		if got := readFile(t, p); !bytes.Equal(got, f.want) {
			t.Errorf("%s: content differs", f.name)
		}
		if m := mode(t, p); m != f.mode {
			t.Errorf("%s: mode %o, want %o", f.name, m, f.mode)
		}
	}
	if entries, _ := os.ReadDir(dir); len(entries) != 4 {
		t.Errorf("dir holds %d entries, want 4 (temp files left?)", len(entries))
	}

	// Missing directory is created.
	dir2 := filepath.Join(t.TempDir(), "new", "dir")
	if err := WriteTarget(v, Target{Dir: dir2}); err != nil {
		t.Fatal(err)
	}
	if fi, err := os.Stat(dir2); err != nil || !fi.IsDir() {
		t.Errorf("dir not created: %v", err)
	}
}

// The HAProxy bundle holds the certificate, its chain and the key, with the
// key's mode; cert_mode, key_mode and ownership apply.
func TestWriteTargetBundleModesOwner(t *testing.T) {
	clock := t0
	s := testStore(t, 3, &clock)
	b := issue(t, "b.example")
	v, err := s.Install("b", []string{"b.example"}, b, t0)
	if err != nil {
		t.Fatal(err)
	}
	root := t.TempDir()
	tg := Target{
		Dir:           filepath.Join(root, "ssl"),
		HAProxyBundle: filepath.Join(root, "haproxy", "certs", "b.pem"),
		Chown:         true, UID: -1, GID: os.Getgid(),
		CertMode: 0o640, KeyMode: 0o640,
	}
	if os.Geteuid() == 0 {
		tg.UID, tg.GID = 65534, 65534 // nobody, nogroup: only root may give files away
	}
	if err := WriteTarget(v, tg); err != nil {
		t.Fatal(err)
	}
	bundle := readFile(t, tg.HAProxyBundle)
	want := slices.Concat(b.Cert, b.Chain, b.Key)
	if !bytes.Equal(bundle, want) {
		t.Errorf("bundle:\n%s\nwant\n%s", bundle, want)
	}
	for _, p := range []string{tg.HAProxyBundle, filepath.Join(tg.Dir, KeyFile), filepath.Join(tg.Dir, CertFile), filepath.Join(tg.Dir, FullchainFile)} {
		if m := mode(t, p); m != 0o640 {
			t.Errorf("%s: mode %o, want 640", p, m)
		}
		fi, err := os.Stat(p)
		if err != nil {
			t.Fatal(err)
		}
		st := fi.Sys().(*syscall.Stat_t)
		if int(st.Gid) != tg.GID {
			t.Errorf("%s: gid %d, want %d", p, st.Gid, tg.GID)
		}
		if tg.UID >= 0 && int(st.Uid) != tg.UID {
			t.Errorf("%s: uid %d, want %d", p, st.Uid, tg.UID)
		}
	}
}

// A destination that is a symlink (certbot's live/ layout) keeps its link;
// the file it points to gets the new content.
func TestWriteTargetThroughSymlinks(t *testing.T) {
	clock := t0
	s := testStore(t, 3, &clock)
	b := issue(t, "c.example")
	v, err := s.Install("c", []string{"c.example"}, b, t0)
	if err != nil {
		t.Fatal(err)
	}
	root := t.TempDir()
	archive, live := filepath.Join(root, "archive", "c"), filepath.Join(root, "live", "c")
	for _, d := range []string{archive, live} {
		if err := os.MkdirAll(d, 0o755); err != nil {
			t.Fatal(err)
		}
	}
	for _, n := range []string{"cert", "chain", "fullchain", "privkey"} {
		if err := os.WriteFile(filepath.Join(archive, n+"1.pem"), []byte("old "+n), 0o644); err != nil {
			t.Fatal(err)
		}
		if err := os.Symlink(filepath.Join("..", "..", "archive", "c", n+"1.pem"), filepath.Join(live, n+".pem")); err != nil {
			t.Fatal(err)
		}
	}
	if err := WriteTarget(v, Target{Dir: live}); err != nil {
		t.Fatal(err)
	}
	for n, want := range map[string][]byte{"cert": b.Cert, "chain": b.Chain, "privkey": b.Key} {
		p := filepath.Join(live, n+".pem")
		if fi, err := os.Lstat(p); err != nil || fi.Mode()&os.ModeSymlink == 0 {
			t.Errorf("%s is no longer a symlink", p)
		}
		if got := readFile(t, filepath.Join(archive, n+"1.pem")); !bytes.Equal(got, want) {
			t.Errorf("archive %s1.pem not updated", n)
		}
	}
	if m := mode(t, filepath.Join(archive, "privkey1.pem")); m != 0o600 {
		t.Errorf("archived key mode %o, want 600", m)
	}
	if entries, _ := os.ReadDir(archive); len(entries) != 4 {
		t.Errorf("archive holds %d entries, want 4", len(entries))
	}

	// A dangling link is an error, not a silently replaced link.
	if err := os.Remove(filepath.Join(archive, "cert1.pem")); err != nil {
		t.Fatal(err)
	}
	keyBefore := []byte("sentinel")
	if err := os.WriteFile(filepath.Join(archive, "privkey1.pem"), keyBefore, 0o600); err != nil {
		t.Fatal(err)
	}
	if err := WriteTarget(v, Target{Dir: live}); err == nil {
		t.Error("WriteTarget through a dangling link succeeded")
	}
	if fi, err := os.Lstat(filepath.Join(live, "cert.pem")); err != nil || fi.Mode()&os.ModeSymlink == 0 {
		t.Error("dangling link was replaced")
	}
	if !bytes.Equal(readFile(t, filepath.Join(archive, "privkey1.pem")), keyBefore) {
		t.Error("key written although the install failed up front")
	}
}
