package store

import (
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"strings"
)

// CleanStale removes what a process killed in the middle of writing
// certificate name left behind: temp version directories under
// certs/<name>/ (".tmp-*", holding a private key), a temp live link
// (live/.<name>.tmp-XXXXXXXX) and a temp state file
// (state/.<name>.json.tmp-N). It returns the paths removed. Callers hold
// Lock(name): every writer of these holds it too, so whatever is there is
// stale, whatever its age. Nothing else is touched: only names of exactly
// the forms the store itself writes for this certificate.
func (s *Store) CleanStale(name string) ([]string, error) {
	if err := validName(name); err != nil {
		return nil, err
	}
	var removed []string
	var errs []error
	clean := func(dir string, match func(string) bool) {
		entries, err := os.ReadDir(dir)
		if errors.Is(err, os.ErrNotExist) {
			return
		}
		if err != nil {
			errs = append(errs, err)
			return
		}
		for _, e := range entries {
			if !match(e.Name()) {
				continue
			}
			p := filepath.Join(dir, e.Name())
			if err := os.RemoveAll(p); err != nil {
				errs = append(errs, err)
				continue
			}
			removed = append(removed, p)
		}
	}
	clean(s.certsDir(name), func(n string) bool { return isTemp(n, tmpPrefix, isDigits) })
	clean(filepath.Join(s.root, "live"), func(n string) bool { return isTemp(n, "."+name+tmpPrefix, isHex8) })
	clean(filepath.Join(s.root, "state"), func(n string) bool { return isTemp(n, "."+name+".json"+tmpPrefix, isDigits) })
	if err := errors.Join(errs...); err != nil {
		return removed, fmt.Errorf("store: clean stale files of %s: %w", name, err)
	}
	return removed, nil
}

// isTemp: n is prefix followed by a random part that rest accepts.
func isTemp(n, prefix string, rest func(string) bool) bool {
	r, ok := strings.CutPrefix(n, prefix)
	return ok && rest(r)
}

func isDigits(s string) bool {
	return s != "" && strings.Trim(s, "0123456789") == ""
}

func isHex8(s string) bool {
	return len(s) == 8 && strings.Trim(s, "0123456789abcdef") == ""
}

// CheckWritable makes sure a new version of name can be written before
// anything is ordered for it: it creates a probe file in certs/<name>/
// through the store's FS, writes and fsyncs it, and removes it. On a
// read-only or failing disk the error says so; nothing is left behind (a
// probe left by a kill is a temp file CleanStale removes).
func (s *Store) CheckWritable(name string) error {
	if err := validName(name); err != nil {
		return err
	}
	dir := s.certsDir(name)
	if err := mkdirPrivate(dir); err != nil {
		return fmt.Errorf("store: %s is not writable: %w", dir, err)
	}
	f, err := s.fs.CreateTemp(dir, tmpPrefix+"*")
	if err != nil {
		return fmt.Errorf("store: %s is not writable: %w", dir, err)
	}
	probe := f.Name()
	err = writeAll(f, []byte("renewer write probe\n"))
	if err == nil {
		err = f.Sync()
	}
	if cerr := f.Close(); err == nil {
		err = cerr
	}
	if rerr := os.Remove(probe); err == nil && rerr != nil {
		err = rerr
	}
	if err != nil {
		return fmt.Errorf("store: %s is not writable: %w", dir, err)
	}
	return nil
}

// CleanTarget removes the temp files a process killed while writing the
// install target t left beside its destinations: ".<file>.tmp-N" (a new
// file written aside, the key among them) and ".<file>.tmp-N.old" (a link
// to the file it replaced), for exactly the files WriteTarget writes
// there (following links as it does). It returns the paths removed.
// Callers hold the lock of the certificate t belongs to.
func CleanTarget(t Target) ([]string, error) {
	var dests []string
	if t.Dir != "" {
		for _, f := range []string{KeyFile, CertFile, ChainFile, FullchainFile} {
			dests = append(dests, filepath.Join(t.Dir, f))
		}
	}
	if t.HAProxyBundle != "" {
		dests = append(dests, t.HAProxyBundle)
	}
	var removed []string
	var errs []error
	for _, d := range dests {
		dest, err := resolveLink(d)
		if err != nil {
			continue // WriteTarget refuses it too: it wrote nothing there
		}
		dir, prefix := filepath.Dir(dest), "."+filepath.Base(dest)+tmpPrefix
		entries, err := os.ReadDir(dir)
		if errors.Is(err, os.ErrNotExist) {
			continue
		}
		if err != nil {
			errs = append(errs, err)
			continue
		}
		for _, e := range entries {
			if e.IsDir() || !isTemp(e.Name(), prefix, func(r string) bool { return isDigits(strings.TrimSuffix(r, ".old")) }) {
				continue
			}
			p := filepath.Join(dir, e.Name())
			if err := os.Remove(p); err != nil && !errors.Is(err, os.ErrNotExist) {
				errs = append(errs, err)
				continue
			}
			removed = append(removed, p)
		}
	}
	if err := errors.Join(errs...); err != nil {
		return removed, fmt.Errorf("store: clean stale files of install target: %w", err)
	}
	return removed, nil
}
