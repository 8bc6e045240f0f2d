package store

import (
	"errors"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"
	"slices"
	"strings"
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

// WriteTarget copies v's files to t (see Store.WriteTarget), writing
// through the OS.
func WriteTarget(v *Version, t Target) error { return writeTarget(osFS{}, v, t) }

// WriteTarget copies v's files to t, all or nothing as far as the disk
// allows. Every file is first written in full to a temp file in its
// destination's directory (chown, chmod, fsync); only when all of them are
// written are they renamed over their destinations, the key first, then
// the directories are fsynced. A write that fails (a full disk, an I/O
// error) leaves every destination as it was and no temp file behind; a
// rename that fails puts the files already replaced back as they were, so a
// reader never sees a new key beside an old certificate, nor a partial file.
//
// A destination that is a symbolic link is not replaced: the file it points
// to is (atomically, the same way). This keeps layouts such as certbot's
// live/NAME/*.pem -> ../../archive/NAME/*N.pem intact, so tools that expect
// the links still work.
func (s *Store) WriteTarget(v *Version, t Target) error { return writeTarget(s.fs, v, t) }

func writeTarget(fsys FS, v *Version, t Target) error {
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
	type file struct {
		dest string
		data []byte
		mode os.FileMode
	}
	var files []file
	var where []string
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
		for _, f := range []file{
			{KeyFile, key, keyMode},
			{CertFile, cert, certMode},
			{ChainFile, chain, certMode},
			{FullchainFile, full, certMode},
		} {
			// Resolve every destination first: a broken link fails the
			// install before anything was written.
			dest, err := resolveLink(filepath.Join(t.Dir, f.dest))
			if err != nil {
				return fmt.Errorf("store: install %s to %s: %w", v.ID, t.Dir, err)
			}
			f.dest = dest
			files = append(files, f)
		}
		where = append(where, t.Dir)
	}
	if t.HAProxyBundle != "" {
		if err := os.MkdirAll(filepath.Dir(t.HAProxyBundle), 0o755); err != nil {
			return fmt.Errorf("store: install %s to %s: %w", v.ID, t.HAProxyBundle, err)
		}
		dest, err := resolveLink(t.HAProxyBundle)
		if err != nil {
			return fmt.Errorf("store: install %s to %s: %w", v.ID, t.HAProxyBundle, err)
		}
		files = append(files, file{dest, joinPEM(full, key), keyMode})
		where = append(where, t.HAProxyBundle)
	}
	if len(files) == 0 {
		return nil
	}
	fail := func(err error) error {
		return fmt.Errorf("store: install %s to %s: %w", v.ID, strings.Join(where, " and "), err)
	}

	var own func(File) error
	if t.Chown && (t.UID >= 0 || t.GID >= 0) {
		own = func(f File) error {
			if err := f.Chown(t.UID, t.GID); err != nil {
				return fmt.Errorf("chown %s: %w", f.Name(), err)
			}
			return nil
		}
	}
	// 1. Write everything aside; nothing a reader sees changes yet.
	staged := make([]*pending, 0, len(files))
	discard := func(ps []*pending) {
		for _, p := range ps {
			p.discard()
		}
	}
	for _, f := range files {
		p, err := stage(fsys, f.dest, f.data, f.mode, own)
		if err != nil {
			discard(staged)
			return fail(err)
		}
		staged = append(staged, p)
	}
	// 2. Keep the old files (a hard link each) so that a failed rename can
	// be undone, then rename the new ones in.
	backups := make([]backup, len(files))
	defer func() {
		for _, b := range backups {
			if b.path != "" {
				_ = os.Remove(b.path)
			}
		}
	}()
	for i, p := range staged {
		b := p.tmp + ".old"
		switch err := os.Link(p.dest, b); {
		case err == nil:
			backups[i] = backup{path: b, existed: true}
		case errors.Is(err, fs.ErrNotExist):
		default: // a filesystem without hard links: no undo for this one
			backups[i] = backup{existed: true}
		}
	}
	for i, p := range staged {
		if err := p.commit(); err != nil {
			discard(staged[i:])
			return fail(errors.Join(err, rollback(fsys, staged[:i], backups)))
		}
	}
	// 3. Make the renames durable.
	var dirs []string
	for _, f := range files {
		if d := filepath.Dir(f.dest); !slices.Contains(dirs, d) {
			dirs = append(dirs, d)
		}
	}
	for _, d := range dirs {
		if err := syncDir(fsys, d); err != nil {
			return fail(err)
		}
	}
	return nil
}

// backup is a hard link to a destination's old file, made before the
// rename over it.
type backup struct {
	path    string // "" when there is none
	existed bool   // the destination existed before
}

// rollback puts back the files that committed renames replaced, from their
// backups; a destination that did not exist before is removed.
func rollback(fsys FS, done []*pending, backups []backup) error {
	var errs []error
	for i := len(done) - 1; i >= 0; i-- {
		p, b := done[i], &backups[i]
		var err error
		switch {
		case b.path != "":
			if err = fsys.Rename(b.path, p.dest); err == nil {
				b.path = ""
			}
		case !b.existed:
			err = os.Remove(p.dest)
		default:
			err = errors.New("no copy of it was kept (hard links unsupported)")
		}
		if err != nil {
			errs = append(errs, fmt.Errorf("could not put the old %s back: %w", p.dest, err))
		}
	}
	return errors.Join(errs...)
}

// keyMode0 is the default mode of installed keys (same as in the store).
const keyMode0 = keyMode

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
