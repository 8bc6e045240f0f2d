// Package disktest is a store.FS for tests: the real filesystem, except
// that chosen operations fail the way a full or failing disk makes them
// fail (ENOSPC, EIO), after some bytes or on the Nth call.
package disktest

import (
	"os"
	"strings"
	"sync"

	"github.com/renewer/renewer/internal/store"
)

// Op is a kind of operation a Fault applies to.
type Op string

const (
	Create  Op = "create"  // opening a file for writing, or a temp file
	Write   Op = "write"   // writing to a file
	Sync    Op = "sync"    // fsync of a file or a directory
	Rename  Op = "rename"  // renaming a file, directory or link into place
	Symlink Op = "symlink" // making a symbolic link
)

// Fault makes matching operations fail with Err.
type Fault struct {
	Op Op
	// Path, when set, must be part of the operation's path: the file's
	// name for create, write and sync (temp files are named after their
	// destination: ".privkey.pem.tmp-123"), the new name for rename, the
	// link's name for symlink.
	Path string
	Err  error // such as syscall.ENOSPC or syscall.EIO
	// After (Write only): the first After bytes written to each matching
	// file succeed; the write that goes past them writes up to the limit
	// and fails, as a write to a disk that just filled up does.
	After int64
	// Nth, when set, fails only the Nth matching operation (1 is the first).
	Nth int
}

// FS is the OS with faults; safe for concurrent use.
type FS struct {
	mu       sync.Mutex
	faults   []Fault
	seen     []int // matching operations per fault
	injected map[Op]int
}

// New returns an FS with no fault.
func New() *FS { return &FS{injected: map[Op]int{}} }

// Fail replaces the faults.
func (d *FS) Fail(faults ...Fault) {
	d.mu.Lock()
	defer d.mu.Unlock()
	d.faults = faults
	d.seen = make([]int, len(faults))
}

// Heal removes every fault: the disk is healthy again.
func (d *FS) Heal() { d.Fail() }

// Injected returns how many operations of each kind failed.
func (d *FS) Injected() map[Op]int {
	d.mu.Lock()
	defer d.mu.Unlock()
	m := make(map[Op]int, len(d.injected))
	for k, v := range d.injected {
		m[k] = v
	}
	return m
}

// check returns the fault of an operation (nil: none); for a write, also
// the bytes of the file that may be written before it.
func (d *FS) check(op Op, path string) (*Fault, error) {
	d.mu.Lock()
	defer d.mu.Unlock()
	for i, f := range d.faults {
		if f.Op != op || !strings.Contains(path, f.Path) {
			continue
		}
		d.seen[i]++
		if f.Nth != 0 && d.seen[i] != f.Nth {
			continue
		}
		if op != Write { // a write fails only once past After; see file.Write
			d.injected[op]++
		}
		return &d.faults[i], f.Err
	}
	return nil, nil
}

func (d *FS) count(op Op) {
	d.mu.Lock()
	d.injected[op]++
	d.mu.Unlock()
}

func (d *FS) OpenFile(name string, flag int, perm os.FileMode) (store.File, error) {
	if flag&(os.O_WRONLY|os.O_RDWR|os.O_CREATE) != 0 {
		if _, err := d.check(Create, name); err != nil {
			return nil, &os.PathError{Op: "open", Path: name, Err: err}
		}
	}
	f, err := os.OpenFile(name, flag, perm)
	if err != nil {
		return nil, err
	}
	return &file{File: f, fs: d}, nil
}

func (d *FS) CreateTemp(dir, pattern string) (store.File, error) {
	if _, err := d.check(Create, dir+"/"+strings.ReplaceAll(pattern, "*", "")); err != nil {
		return nil, &os.PathError{Op: "createtemp", Path: dir + "/" + pattern, Err: err}
	}
	f, err := os.CreateTemp(dir, pattern)
	if err != nil {
		return nil, err
	}
	return &file{File: f, fs: d}, nil
}

func (d *FS) Rename(oldpath, newpath string) error {
	if _, err := d.check(Rename, newpath); err != nil {
		return &os.LinkError{Op: "rename", Old: oldpath, New: newpath, Err: err}
	}
	return os.Rename(oldpath, newpath)
}

func (d *FS) Symlink(oldname, newname string) error {
	if _, err := d.check(Symlink, newname); err != nil {
		return &os.LinkError{Op: "symlink", Old: oldname, New: newname, Err: err}
	}
	return os.Symlink(oldname, newname)
}

// file is an *os.File whose writes and syncs may fail.
type file struct {
	*os.File
	fs      *FS
	written int64
}

func (f *file) Write(p []byte) (int, error) {
	fault, err := f.fs.check(Write, f.Name())
	if err == nil {
		n, err := f.File.Write(p)
		f.written += int64(n)
		return n, err
	}
	room := max(0, fault.After-f.written)
	if int64(len(p)) <= room {
		n, err := f.File.Write(p)
		f.written += int64(n)
		return n, err
	}
	n, werr := f.File.Write(p[:room])
	f.written += int64(n)
	if werr != nil {
		return n, werr
	}
	f.fs.count(Write)
	return n, &os.PathError{Op: "write", Path: f.Name(), Err: err}
}

func (f *file) Sync() error {
	if _, err := f.fs.check(Sync, f.Name()); err != nil {
		return &os.PathError{Op: "sync", Path: f.Name(), Err: err}
	}
	return f.File.Sync()
}
