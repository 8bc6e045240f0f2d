package store_test

import (
	"os"
	"path/filepath"
	"strings"
	"syscall"
	"testing"

	"github.com/renewer/renewer/internal/store"
	"github.com/renewer/renewer/internal/store/disktest"
)

// Issue 14 #7: CheckWritable fails on a disk that refuses to create, write
// or sync a file where the next version goes, saying so, and leaves nothing.
func TestCheckWritable(t *testing.T) {
	disk := disktest.New()
	s, err := store.OpenFS(filepath.Join(t.TempDir(), "root"), 3, disk)
	if err != nil {
		t.Fatal(err)
	}
	if err := s.CheckWritable("www"); err != nil {
		t.Fatalf("healthy disk: %v", err)
	}
	for _, f := range []disktest.Fault{
		{Op: disktest.Create, Path: "/certs/www/", Err: syscall.EROFS},
		{Op: disktest.Write, Path: "/certs/www/", Err: syscall.ENOSPC},
		{Op: disktest.Sync, Path: "/certs/www/", Err: syscall.EIO},
	} {
		disk.Fail(f)
		err := s.CheckWritable("www")
		if err == nil || !strings.Contains(err.Error(), "is not writable") || !strings.Contains(err.Error(), f.Err.Error()) {
			t.Errorf("%s fails with %v: CheckWritable = %v", f.Op, f.Err, err)
		}
		if entries, _ := os.ReadDir(filepath.Join(s.Root(), "certs", "www")); len(entries) != 0 {
			t.Errorf("%s: probe left behind: %v", f.Op, entries)
		}
	}
	disk.Heal()
	if err := s.CheckWritable("www"); err != nil {
		t.Errorf("healed disk: %v", err)
	}
}
