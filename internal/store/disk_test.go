package store_test

import (
	"bytes"
	"encoding/pem"
	"errors"
	"os"
	"path/filepath"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/renewer/renewer/internal/certinfo"
	"github.com/renewer/renewer/internal/certinfo/certtest"
	"github.com/renewer/renewer/internal/store"
	"github.com/renewer/renewer/internal/store/disktest"
)

func bundle(t *testing.T, name string) store.Bundle {
	t.Helper()
	full, key := certtest.Issue(t, certtest.Options{Names: []string{name}})
	block, rest := pem.Decode(full)
	if block == nil {
		t.Fatal("no PEM in fullchain")
	}
	return store.Bundle{Cert: full[:len(full)-len(rest)], Chain: bytes.TrimLeft(rest, "\n"), Key: key}
}

// files reads every regular file and link under dir (relative names;
// a link's content is its target).
func files(t *testing.T, dir string) map[string]string {
	t.Helper()
	m := map[string]string{}
	err := filepath.WalkDir(dir, func(p string, d os.DirEntry, err error) error {
		if err != nil {
			return err
		}
		rel, _ := filepath.Rel(dir, p)
		switch {
		case d.Type()&os.ModeSymlink != 0:
			target, err := os.Readlink(p)
			m[rel] = "-> " + target
			return err
		case d.Type().IsRegular():
			b, err := os.ReadFile(p)
			m[rel] = string(b)
			return err
		case d.IsDir() && p != dir:
			m[rel+"/"] = ""
		}
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
	return m
}

// sameFiles reports the differences between two files() snapshots.
func sameFiles(t *testing.T, what string, before, after map[string]string) {
	t.Helper()
	for k, v := range before {
		if w, ok := after[k]; !ok {
			t.Errorf("%s: %s is gone", what, k)
		} else if w != v {
			t.Errorf("%s: %s changed", what, k)
		}
	}
	for k := range after {
		if _, ok := before[k]; !ok {
			t.Errorf("%s: %s was left behind", what, k)
		}
	}
}

// livePair checks that the pair in dir (fullchain.pem and privkey.pem)
// parses, matches and has the serial want.
func livePair(t *testing.T, what, fullchain, key, want string) {
	t.Helper()
	f, err := certinfo.Load(fullchain, key)
	if err != nil {
		t.Fatalf("%s: %v", what, err)
	}
	if !f.KeyMatches {
		t.Errorf("%s: key does not match the certificate", what)
	}
	if f.Serial != want {
		t.Errorf("%s: serial %s, want %s", what, f.Serial, want)
	}
}

var (
	enospc = syscall.ENOSPC
	eio    = syscall.EIO
)

// A full or failing disk at any write of a new version leaves the previous
// version live and byte-identical, leaves nothing new on disk, and is
// reported with the errno; once the disk is healthy the install succeeds.
func TestInstallDiskErrors(t *testing.T) {
	for _, tc := range []struct {
		name  string
		fault disktest.Fault
	}{
		{"key write, disk full after 100 bytes", disktest.Fault{Op: disktest.Write, Path: "/certs/a/.tmp-", After: 100, Err: enospc}},
		{"key file create", disktest.Fault{Op: disktest.Create, Path: store.KeyFile, Err: enospc}},
		{"key fsync", disktest.Fault{Op: disktest.Sync, Path: store.KeyFile, Err: eio}},
		{"cert write", disktest.Fault{Op: disktest.Write, Path: "/" + store.CertFile, Err: eio}},
		{"chain write, disk full after 10 bytes", disktest.Fault{Op: disktest.Write, Path: store.ChainFile, After: 10, Err: enospc}},
		{"fullchain fsync", disktest.Fault{Op: disktest.Sync, Path: store.FullchainFile, Err: eio}},
		{"meta.json write", disktest.Fault{Op: disktest.Write, Path: store.MetaFile, Err: enospc}},
		{"version directory fsync", disktest.Fault{Op: disktest.Sync, Path: "/certs/a/.tmp-", Nth: 6, Err: eio}},
		{"version directory rename", disktest.Fault{Op: disktest.Rename, Path: "/certs/a/", Err: eio}},
		{"live link create", disktest.Fault{Op: disktest.Symlink, Path: "/live/", Err: enospc}},
		{"live link switch", disktest.Fault{Op: disktest.Rename, Path: "/live/a", Err: eio}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			disk := disktest.New()
			s, err := store.OpenFS(filepath.Join(t.TempDir(), "root"), 0, disk)
			if err != nil {
				t.Fatal(err)
			}
			b1 := bundle(t, "a.example")
			v1, err := s.Install("a", []string{"a.example"}, b1, time.Now())
			if err != nil {
				t.Fatal(err)
			}
			f1, _ := certinfo.Load(v1.Fullchain, v1.Key)
			before := files(t, s.Root())

			disk.Fail(tc.fault)
			v, err := s.Install("a", []string{"a.example"}, bundle(t, "a.example"), time.Now())
			if v != nil || err == nil {
				t.Fatalf("install on a failing disk: %v, %v", v, err)
			}
			if !errors.Is(err, tc.fault.Err) || !strings.Contains(err.Error(), tc.fault.Err.Error()) {
				t.Errorf("error %q does not carry %q", err, tc.fault.Err)
			}
			if n := disk.Injected()[tc.fault.Op]; n != 1 {
				t.Errorf("%d faults injected, want 1", n)
			}
			sameFiles(t, "after the failure", before, files(t, s.Root()))
			live, err := s.Live("a")
			if err != nil || live.ID != v1.ID {
				t.Fatalf("live after the failure: %v, %v (want %s)", live, err, v1.ID)
			}
			livePair(t, "live after the failure", live.Fullchain, live.Key, f1.Serial)

			disk.Heal()
			b3 := bundle(t, "a.example")
			v3, err := s.Install("a", []string{"a.example"}, b3, time.Now())
			if err != nil {
				t.Fatalf("install on the healed disk: %v", err)
			}
			if got, _ := os.ReadFile(v3.Key); !bytes.Equal(got, b3.Key) {
				t.Error("healed install: key differs")
			}
			f3, _ := certinfo.Load(v3.Fullchain, v3.Key)
			livePair(t, "live after healing", filepath.Join(s.Root(), "live", "a", store.FullchainFile), filepath.Join(s.Root(), "live", "a", store.KeyFile), f3.Serial)
		})
	}
}

// When only the fsync of live/ fails, the new version is live (the swap
// happened) and the error says so; the old version is kept, not pruned,
// in case the swap does not survive a power loss.
func TestInstallLiveDirSyncFails(t *testing.T) {
	disk := disktest.New()
	s, err := store.OpenFS(filepath.Join(t.TempDir(), "root"), 0, disk)
	if err != nil {
		t.Fatal(err)
	}
	v1, err := s.Install("a", []string{"a.example"}, bundle(t, "a.example"), time.Now())
	if err != nil {
		t.Fatal(err)
	}
	disk.Fail(disktest.Fault{Op: disktest.Sync, Path: "/live", Err: eio})
	v2, err := s.Install("a", []string{"a.example"}, bundle(t, "a.example"), time.Now())
	if v2 == nil || !errors.Is(err, syscall.EIO) || !strings.Contains(err.Error(), "is live") {
		t.Fatalf("got %v, %v; want the new version and an EIO error", v2, err)
	}
	live, err := s.Live("a")
	if err != nil || live.ID != v2.ID {
		t.Fatalf("live: %v, %v; want %s", live, err, v2.ID)
	}
	if ids, _ := s.Versions("a"); len(ids) != 2 || ids[0] != v1.ID {
		t.Errorf("versions %v: the old one (%s) should be kept", ids, v1.ID)
	}
}

// A state file that cannot be written leaves the previous one in place,
// whole, and no temp file; the error carries the errno.
func TestSaveStateDiskErrors(t *testing.T) {
	for _, f := range []disktest.Fault{
		{Op: disktest.Create, Path: "/state/", Err: enospc},
		{Op: disktest.Write, Path: "/state/", After: 20, Err: enospc},
		{Op: disktest.Sync, Path: "/state/.a.json", Err: eio},
		{Op: disktest.Rename, Path: "/state/a.json", Err: eio},
	} {
		t.Run(string(f.Op), func(t *testing.T) {
			disk := disktest.New()
			s, err := store.OpenFS(filepath.Join(t.TempDir(), "root"), 0, disk)
			if err != nil {
				t.Fatal(err)
			}
			old := store.State{LastResult: "renewed", InstalledSerial: "01", AppliedSerial: "01"}
			if err := s.SaveState("a", old); err != nil {
				t.Fatal(err)
			}
			before := files(t, filepath.Join(s.Root(), "state"))
			disk.Fail(f)
			err = s.SaveState("a", store.State{LastResult: "failed", LastError: strings.Repeat("x", 200), Failures: 1})
			if !errors.Is(err, f.Err) {
				t.Fatalf("SaveState on a failing disk: %v", err)
			}
			sameFiles(t, "state", before, files(t, filepath.Join(s.Root(), "state")))
			if got, err := s.LoadState("a"); err != nil || got.InstalledSerial != "01" || got.LastResult != "renewed" {
				t.Errorf("state after the failure: %+v, %v", got, err)
			}
			disk.Heal()
			if err := s.SaveState("a", store.State{Failures: 1}); err != nil {
				t.Fatal(err)
			}
			if got, _ := s.LoadState("a"); got.Failures != 1 {
				t.Errorf("state after healing: %+v", got)
			}
		})
	}
}

// Copies to an install target are all or nothing: a failure while writing
// any of them, or renaming any of them into place, leaves every file where
// nginx and HAProxy read as it was (byte-identical, the old key beside the
// old certificate) and no temp file; the next write on a healthy disk puts
// the new set in place.
func TestWriteTargetDiskErrors(t *testing.T) {
	for _, tc := range []struct {
		name  string
		fault disktest.Fault
	}{
		{"key write, disk full after 50 bytes", disktest.Fault{Op: disktest.Write, Path: "/ssl/." + store.KeyFile, After: 50, Err: enospc}},
		{"cert temp file create", disktest.Fault{Op: disktest.Create, Path: "/ssl/." + store.CertFile, Err: enospc}},
		{"fullchain write", disktest.Fault{Op: disktest.Write, Path: "/ssl/." + store.FullchainFile, Err: eio}},
		{"chain fsync", disktest.Fault{Op: disktest.Sync, Path: "/ssl/." + store.ChainFile, Err: eio}},
		{"haproxy bundle write, disk full after 1000 bytes", disktest.Fault{Op: disktest.Write, Path: "/haproxy/", After: 1000, Err: enospc}},
		{"cert rename after the key's", disktest.Fault{Op: disktest.Rename, Path: "/ssl/" + store.CertFile, Err: eio}},
		{"haproxy bundle rename, last of all", disktest.Fault{Op: disktest.Rename, Path: "/haproxy/a.pem", Err: eio}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			disk := disktest.New()
			root := t.TempDir()
			s, err := store.OpenFS(filepath.Join(root, "root"), 3, disk)
			if err != nil {
				t.Fatal(err)
			}
			tg := store.Target{Dir: filepath.Join(root, "etc", "ssl"), HAProxyBundle: filepath.Join(root, "etc", "haproxy", "a.pem")}
			v1, err := s.Install("a", []string{"a.example"}, bundle(t, "a.example"), time.Now())
			if err != nil {
				t.Fatal(err)
			}
			if err := s.WriteTarget(v1, tg); err != nil {
				t.Fatal(err)
			}
			f1, _ := certinfo.Load(v1.Fullchain, v1.Key)
			before := files(t, filepath.Join(root, "etc"))
			v2, err := s.Install("a", []string{"a.example"}, bundle(t, "a.example"), time.Now())
			if err != nil {
				t.Fatal(err)
			}

			disk.Fail(tc.fault)
			err = s.WriteTarget(v2, tg)
			if !errors.Is(err, tc.fault.Err) || !strings.Contains(err.Error(), tc.fault.Err.Error()) {
				t.Fatalf("WriteTarget on a failing disk: %v", err)
			}
			sameFiles(t, "install target", before, files(t, filepath.Join(root, "etc")))
			livePair(t, "target after the failure", filepath.Join(tg.Dir, store.FullchainFile), filepath.Join(tg.Dir, store.KeyFile), f1.Serial)
			livePair(t, "bundle after the failure", tg.HAProxyBundle, tg.HAProxyBundle, f1.Serial)

			disk.Heal()
			if err := s.WriteTarget(v2, tg); err != nil {
				t.Fatal(err)
			}
			f2, _ := certinfo.Load(v2.Fullchain, v2.Key)
			livePair(t, "target after healing", filepath.Join(tg.Dir, store.FullchainFile), filepath.Join(tg.Dir, store.KeyFile), f2.Serial)
			livePair(t, "bundle after healing", tg.HAProxyBundle, tg.HAProxyBundle, f2.Serial)
			if n := len(files(t, filepath.Join(root, "etc"))); n != len(before) {
				t.Errorf("%d entries after healing, want %d (temp files left?)", n, len(before))
			}
		})
	}
}
