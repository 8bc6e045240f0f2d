package store

import (
	"errors"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"

	"github.com/google/renameio/v2"
)

// Target is where and how a version is copied outside the store.
type Target struct {
	Dir           string      // cert.pem chain.pem fullchain.pem privkey.pem go here ("" = none)
	HAProxyBundle string      // fullchain then key in one file ("" = none)
	Chown         bool        // set UID and GID on the written files (else they belong to renewer's user)
	UID, GID      int         // with Chown: owner and group; -1 leaves that one unchanged
	CertMode      os.FileMode // certificate files; 0 means 0644
	KeyMode       os.FileMode // the key and the bundle; 0 means 0600
}

// WriteTarget copies v's files to t. Every file is written atomically: a
// temp file in the destination's directory, chown, chmod, fsync, rename,
// then an fsync of the directory, so a reader sees the old file or the new
// one, never a partial one. The key is written before the certificates.
//
// A destination that is a symbolic link is not replaced: the file it points
// to is (atomically, the same way). This keeps layouts such as certbot's
// live/NAME/*.pem -> ../../archive/NAME/*N.pem intact, so tools that expect
// the links still work.
func WriteTarget(v *Version, t Target) error {
	certMode, keyMode := t.CertMode, t.KeyMode
	if certMode == 0 {
		certMode = fileMode
	}
	if keyMode == 0 {
		keyMode = keyMode0
	}
	read := func(p string) ([]byte, error) {
		b, err := os.ReadFile(p)
		if err != nil {
			return nil, fmt.Errorf("store: read %s: %w", p, err)
		}
		return b, nil
	}
	key, err := read(v.Key)
	if err != nil {
		return err
	}
	full, err := read(v.Fullchain)
	if err != nil {
		return err
	}
	if t.Dir != "" {
		if err := os.MkdirAll(t.Dir, 0o755); err != nil {
			return fmt.Errorf("store: install %s to %s: %w", v.ID, t.Dir, err)
		}
		cert, err := read(v.Cert)
		if err != nil {
			return err
		}
		chain, err := read(v.Chain)
		if err != nil {
			return err
		}
		files := []struct {
			name string
			data []byte
			mode os.FileMode
		}{
			{KeyFile, key, keyMode},
			{CertFile, cert, certMode},
			{ChainFile, chain, certMode},
			{FullchainFile, full, certMode},
		}
		// Resolve every destination first: a broken link fails the install
		// before anything was written.
		dests := make([]string, len(files))
		for i, f := range files {
			if dests[i], err = resolveLink(filepath.Join(t.Dir, f.name)); err != nil {
				return fmt.Errorf("store: install %s to %s: %w", v.ID, t.Dir, err)
			}
		}
		for i, f := range files {
			if err := writeOwned(dests[i], f.data, f.mode, t); err != nil {
				return fmt.Errorf("store: install %s to %s: %w", v.ID, t.Dir, err)
			}
		}
	}
	if t.HAProxyBundle != "" {
		if err := os.MkdirAll(filepath.Dir(t.HAProxyBundle), 0o755); err != nil {
			return fmt.Errorf("store: install %s to %s: %w", v.ID, t.HAProxyBundle, err)
		}
		dest, err := resolveLink(t.HAProxyBundle)
		if err == nil {
			err = writeOwned(dest, joinPEM(full, key), keyMode, t)
		}
		if err != nil {
			return fmt.Errorf("store: install %s to %s: %w", v.ID, t.HAProxyBundle, err)
		}
	}
	return nil
}

// keyMode0 is the default mode of installed keys (same as in the store).
const keyMode0 = keyMode

// writeOwned atomically replaces dest (a resolved path) with data, mode and
// t's ownership.
func writeOwned(dest string, data []byte, mode os.FileMode, t Target) error {
	dir := filepath.Dir(dest)
	f, err := renameio.NewPendingFile(dest, renameio.WithTempDir(dir), renameio.WithStaticPermissions(mode))
	if err != nil {
		return err
	}
	defer f.Cleanup()
	if _, err := f.Write(data); err != nil {
		return err
	}
	if t.Chown && (t.UID >= 0 || t.GID >= 0) {
		if err := f.Chown(t.UID, t.GID); err != nil {
			return fmt.Errorf("chown %s: %w", dest, err)
		}
		// chown may clear set-id bits; set the exact mode again.
		if err := f.Chmod(mode); err != nil {
			return err
		}
	}
	if err := f.CloseAtomicallyReplace(); err != nil {
		return err
	}
	return syncDir(dir)
}

// resolveLink returns path itself, or the file a symlink at path resolves to.
func resolveLink(path string) (string, error) {
	fi, err := os.Lstat(path)
	if errors.Is(err, fs.ErrNotExist) {
		return path, nil
	}
	if err != nil {
		return "", err
	}
	if fi.Mode()&fs.ModeSymlink == 0 {
		return path, nil
	}
	dest, err := filepath.EvalSymlinks(path)
	if err != nil {
		return "", fmt.Errorf("%s is a symbolic link that does not resolve: %w", path, err)
	}
	if fi, err := os.Stat(dest); err != nil || !fi.Mode().IsRegular() {
		return "", fmt.Errorf("%s is a symbolic link to %s, which is not a regular file", path, dest)
	}
	return dest, nil
}
