package store

import (
	"errors"
	"fmt"
	"io"
	"io/fs"
	"math/rand/v2"
	"os"
	"path/filepath"
)

// FS is what the store writes through: creating, writing, syncing and
// renaming files, and making symbolic links. Reads, directory creation and
// removals go to the OS directly. The store's default is the real OS;
// tests pass one that fails like a full or failing disk
// (internal/store/disktest) to OpenFS.
type FS interface {
	OpenFile(name string, flag int, perm os.FileMode) (File, error)
	CreateTemp(dir, pattern string) (File, error)
	Rename(oldpath, newpath string) error
	Symlink(oldname, newname string) error
}

// File is an open file of an FS; *os.File is one.
type File interface {
	Name() string
	Write(p []byte) (int, error)
	Chmod(mode os.FileMode) error
	Chown(uid, gid int) error
	Sync() error
	Close() error
}

// osFS is the real filesystem.
type osFS struct{}

func (osFS) OpenFile(name string, flag int, perm os.FileMode) (File, error) {
	f, err := os.OpenFile(name, flag, perm)
	if err != nil {
		return nil, err
	}
	return f, nil
}

func (osFS) CreateTemp(dir, pattern string) (File, error) {
	f, err := os.CreateTemp(dir, pattern)
	if err != nil {
		return nil, err
	}
	return f, nil
}

func (osFS) Rename(oldpath, newpath string) error  { return os.Rename(oldpath, newpath) }
func (osFS) Symlink(oldname, newname string) error { return os.Symlink(oldname, newname) }

// writeAll writes data to f, turning a short write without an error into
// one.
func writeAll(f File, data []byte) error {
	n, err := f.Write(data)
	if err == nil && n < len(data) {
		err = io.ErrShortWrite
	}
	if errors.Is(err, io.ErrShortWrite) {
		return fmt.Errorf("write %s: %w", f.Name(), err)
	}
	return err // an *fs.PathError naming the file
}

// writeNew creates path (which must not exist) with exactly mode, writes data
// and fsyncs it.
func writeNew(fsys FS, path string, data []byte, mode os.FileMode) error {
	f, err := fsys.OpenFile(path, os.O_WRONLY|os.O_CREATE|os.O_EXCL, mode)
	if err != nil {
		return err
	}
	err = f.Chmod(mode) // exact mode, whatever the umask
	if err == nil {
		err = writeAll(f, data)
	}
	if err == nil {
		err = f.Sync()
	}
	if cerr := f.Close(); err == nil {
		err = cerr
	}
	return err
}

// pending is a file written in full to a temp file next to its destination,
// not yet renamed over it.
type pending struct {
	fsys FS
	tmp  string
	dest string
}

// stage writes data to a temp file in dest's directory with exactly mode
// (and own's ownership), fsyncs and closes it. On error nothing is left.
func stage(fsys FS, dest string, data []byte, mode os.FileMode, own func(File) error) (_ *pending, err error) {
	f, err := fsys.CreateTemp(filepath.Dir(dest), "."+filepath.Base(dest)+tmpPrefix+"*")
	if err != nil {
		return nil, err
	}
	tmp := f.Name()
	closed := false
	defer func() {
		if err != nil {
			if !closed {
				_ = f.Close()
			}
			_ = os.Remove(tmp)
		}
	}()
	if err := f.Chmod(mode); err != nil {
		return nil, err
	}
	if own != nil {
		if err := own(f); err != nil {
			return nil, err
		}
		// chown may clear set-id bits; set the exact mode again when it
		// has any. Only then: chmod of a file now owned by another user
		// needs CAP_FOWNER, which the shipped units do not grant.
		if mode&(os.ModeSetuid|os.ModeSetgid|os.ModeSticky) != 0 {
			if err := f.Chmod(mode); err != nil {
				return nil, err
			}
		}
	}
	if err := writeAll(f, data); err != nil {
		return nil, err
	}
	if err := f.Sync(); err != nil {
		return nil, err
	}
	closed = true
	if err := f.Close(); err != nil {
		return nil, err
	}
	return &pending{fsys: fsys, tmp: tmp, dest: dest}, nil
}

// commit renames the temp file over the destination.
func (p *pending) commit() error {
	if err := p.fsys.Rename(p.tmp, p.dest); err != nil {
		return err // *os.LinkError names both paths
	}
	return nil
}

// discard removes the temp file of a pending write not committed.
func (p *pending) discard() { _ = os.Remove(p.tmp) }

// writeAtomic replaces path with data (temp file in the same directory,
// exact mode, fsync, rename), then fsyncs the directory. Until the rename,
// path is untouched and on error no temp file is left.
func writeAtomic(fsys FS, path string, data []byte, mode os.FileMode) error {
	p, err := stage(fsys, path, data, mode, nil)
	if err != nil {
		return err
	}
	if err := p.commit(); err != nil {
		p.discard()
		return err
	}
	return syncDir(fsys, filepath.Dir(path))
}

// swapSymlink points link at target atomically: a new link under a temp
// name in the same directory, renamed over link. On error link is untouched
// and no temp link is left.
func swapSymlink(fsys FS, target, link string) error {
	var tmp string
	for i := 0; ; i++ {
		tmp = filepath.Join(filepath.Dir(link), fmt.Sprintf(".%s%s%08x", filepath.Base(link), tmpPrefix, rand.Uint32()))
		err := fsys.Symlink(target, tmp)
		if err == nil {
			break
		}
		if !errors.Is(err, fs.ErrExist) || i == 10 {
			return err
		}
	}
	if err := fsys.Rename(tmp, link); err != nil {
		_ = os.Remove(tmp)
		return err
	}
	return nil
}

func syncDir(fsys FS, dir string) error {
	d, err := fsys.OpenFile(dir, os.O_RDONLY, 0)
	if err != nil {
		return fmt.Errorf("fsync %s: %w", dir, err)
	}
	err = d.Sync()
	if cerr := d.Close(); err == nil {
		err = cerr
	}
	if err != nil {
		return fmt.Errorf("fsync %s: %w", dir, err)
	}
	return nil
}

// WriteFile replaces path with data atomically (temp file, fsync, rename,
// directory fsync), through the store's file system: for files other
// packages keep under the storage root (the ACME account files), so that
// the disk-fault tests reach them too.
func (s *Store) WriteFile(path string, data []byte, perm os.FileMode) error {
	return writeAtomic(s.fs, path, data, perm)
}
