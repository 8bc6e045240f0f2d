package acme

import (
	"os"
	"path/filepath"
	"testing"
	"time"
)

// An account exported from one directory and imported into another loads
// there as the same account (what a fleet's nodes do).
func TestExportImportAccount(t *testing.T) {
	src, dst := t.TempDir(), t.TempDir()
	acc, err := loadAccount(src, "https://ca.test/dir", "ops@example.test", time.Now(), nil)
	if err != nil {
		t.Fatal(err)
	}
	if err := acc.save(src, nil); err != nil {
		t.Fatal(err)
	}
	if err := HasAccount(dst); err == nil {
		t.Fatal("HasAccount on an empty directory: no error")
	}
	data, err := ExportAccount(src)
	if err != nil {
		t.Fatal(err)
	}
	if err := ImportAccount(dst, data, nil); err != nil {
		t.Fatal(err)
	}
	if err := HasAccount(dst); err != nil {
		t.Fatalf("HasAccount after import: %v", err)
	}
	for _, f := range []string{accountKeyFile, accountFile} {
		a, _ := os.ReadFile(filepath.Join(src, f))
		b, err := os.ReadFile(filepath.Join(dst, f))
		if err != nil || string(a) != string(b) {
			t.Errorf("%s differs after import (%v)", f, err)
		}
		if fi, _ := os.Stat(filepath.Join(dst, f)); fi.Mode().Perm() != 0o600 {
			t.Errorf("%s mode %o", f, fi.Mode().Perm())
		}
	}
	if err := ImportAccount(dst, []byte(`{"account_json":"{}"}`), nil); err == nil {
		t.Error("an import without a key was accepted")
	}
}
