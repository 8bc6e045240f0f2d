// Package store is the local filesystem storage of renewer: certificate
// versions with an atomically swapped "live" symlink, per-certificate state,
// account directories and flock-based locks.
//
// Layout under the root:
//
//	accounts/<key>/                account data (written by the acme package)
//	certs/<name>/<version>/        cert.pem chain.pem fullchain.pem privkey.pem meta.json
//	live/<name> -> ../certs/<name>/<version>
//	state/<name>.json              per-certificate state
//	locks/<name>.lock              flock files
//
// Directories are 0700, privkey.pem 0600, other files 0644.
package store

import (
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"time"

	"github.com/renewer/renewer/internal/certinfo"
)

// File names inside a version directory.
const (
	CertFile      = "cert.pem"
	ChainFile     = "chain.pem"
	FullchainFile = "fullchain.pem"
	KeyFile       = "privkey.pem"
	MetaFile      = "meta.json"
)

const (
	dirMode  = 0o700
	fileMode = 0o644
	keyMode  = 0o600

	tmpPrefix = ".tmp-"
	// staleTemp is the age after which a leftover temp directory (from a
	// crash) is removed while pruning.
	staleTemp = time.Hour
)

// ErrNotFound is returned (wrapped) when a certificate has no live version.
var ErrNotFound = errors.New("not found")

// Store is the local filesystem backend.
type Store struct {
	root string
	keep int
	now  func() time.Time // names versions and stamps installed_at
	fs   FS               // what writes go through
}

// Open creates root and its subdirectories (0700) if missing, and takes the
// group's and others' permissions off them if they exist with more (the
// store holds private keys). keep is the number of old versions kept
// besides the live one.
func Open(root string, keep int) (*Store, error) { return OpenFS(root, keep, nil) }

// OpenFS is Open with the store's writes (versions, the live link, state,
// install targets) going through fsys; nil means the OS.
func OpenFS(root string, keep int, fsys FS) (*Store, error) {
	if fsys == nil {
		fsys = osFS{}
	}
	if keep < 0 {
		return nil, fmt.Errorf("store: keep must be >= 0, got %d", keep)
	}
	abs, err := filepath.Abs(root)
	if err != nil {
		return nil, fmt.Errorf("store: root %q: %w", root, err)
	}
	for _, d := range []string{"", "accounts", "certs", "live", "state", "locks"} {
		if err := mkdirPrivate(filepath.Join(abs, d)); err != nil {
			return nil, fmt.Errorf("store: %w", err)
		}
	}
	return &Store{root: abs, keep: keep, now: time.Now, fs: fsys}, nil
}

// Root returns the absolute root directory.
func (s *Store) Root() string { return s.root }

// Bundle is what Install writes: PEM blocks as issued.
type Bundle struct {
	Cert  []byte // leaf certificate PEM
	Chain []byte // issuer certificates PEM
	Key   []byte // private key PEM
	// Where it came from, recorded in meta.json (optional):
	CA      string // ACME directory URL that issued it
	Account string // account (accounts/<Account>) that ordered it
}

// Version is one installed certificate version; file fields are absolute paths.
type Version struct {
	Name      string // certificate name
	ID        string // version directory name, e.g. 20261123T082000Z-0a1b2c3d
	Dir       string
	Cert      string
	Chain     string
	Fullchain string
	Key       string
}

type meta struct {
	Name        string    `json:"name"`
	Serial      string    `json:"serial"`
	NotAfter    time.Time `json:"not_after"`
	Domains     []string  `json:"domains"`
	InstalledAt time.Time `json:"installed_at"`
	CA          string    `json:"ca,omitempty"`
	Account     string    `json:"account,omitempty"`
}

// validName rejects names that are not a single, non-hidden path element.
func validName(name string) error {
	switch {
	case name == "":
		return errors.New("store: empty name")
	case strings.ContainsAny(name, "/\\\x00"):
		return fmt.Errorf("store: invalid name %q: contains a path separator", name)
	case strings.HasPrefix(name, "."):
		return fmt.Errorf("store: invalid name %q: starts with '.'", name)
	}
	return nil
}

func (s *Store) certsDir(name string) string { return filepath.Join(s.root, "certs", name) }
func (s *Store) liveLink(name string) string { return filepath.Join(s.root, "live", name) }

func (s *Store) version(name, id string) *Version {
	dir := filepath.Join(s.certsDir(name), id)
	return &Version{
		Name:      name,
		ID:        id,
		Dir:       dir,
		Cert:      filepath.Join(dir, CertFile),
		Chain:     filepath.Join(dir, ChainFile),
		Fullchain: filepath.Join(dir, FullchainFile),
		Key:       filepath.Join(dir, KeyFile),
	}
}

// Live returns the version live/<name> points to. It returns an error
// wrapping ErrNotFound when there is no link or the link dangles.
func (s *Store) Live(name string) (*Version, error) {
	if err := validName(name); err != nil {
		return nil, err
	}
	link := s.liveLink(name)
	target, err := os.Readlink(link)
	if errors.Is(err, os.ErrNotExist) {
		return nil, fmt.Errorf("store: live %s: %w", name, ErrNotFound)
	}
	if err != nil {
		return nil, fmt.Errorf("store: live %s: %w", name, err)
	}
	id := filepath.Base(target)
	if filepath.Join("..", "certs", name, id) != target || validName(id) != nil {
		return nil, fmt.Errorf("store: live %s: unexpected link target %q", name, target)
	}
	v := s.version(name, id)
	if fi, err := os.Stat(v.Dir); err != nil || !fi.IsDir() {
		return nil, fmt.Errorf("store: live %s: link %s -> %s dangles: %w", name, link, target, ErrNotFound)
	}
	return v, nil
}

// Versions lists the version IDs of name, oldest first. Temp directories are
// excluded. A name without versions yields an empty list.
func (s *Store) Versions(name string) ([]string, error) {
	if err := validName(name); err != nil {
		return nil, err
	}
	entries, err := os.ReadDir(s.certsDir(name))
	if errors.Is(err, os.ErrNotExist) {
		return nil, nil
	}
	if err != nil {
		return nil, fmt.Errorf("store: versions of %s: %w", name, err)
	}
	var ids []string
	for _, e := range entries {
		if e.IsDir() && !strings.HasPrefix(e.Name(), ".") {
			ids = append(ids, e.Name())
		}
	}
	// IDs start with a UTC timestamp (seconds), so they sort by time; within
	// one second the installation time recorded in meta.json decides.
	at := make(map[string]time.Time, len(ids))
	for _, id := range ids {
		at[id] = s.installedAt(name, id)
	}
	slices.SortFunc(ids, func(a, b string) int {
		if c := strings.Compare(a[:min(len(a), 16)], b[:min(len(b), 16)]); c != 0 {
			return c
		}
		if c := at[a].Compare(at[b]); c != 0 {
			return c
		}
		return strings.Compare(a, b)
	})
	return ids, nil
}

func (s *Store) installedAt(name, id string) time.Time {
	var m meta
	data, err := os.ReadFile(filepath.Join(s.certsDir(name), id, MetaFile))
	if err == nil {
		_ = json.Unmarshal(data, &m)
	}
	return m.InstalledAt
}

// Install writes b as a new version of name, validates the written files
// with certinfo (key matches, names cover domains, chain verifies, not
// expired at now), swaps live/<name> to it atomically and prunes old
// versions beyond keep. now is the validation time; the version ID and
// meta.json's installed_at use the store's clock (time.Now). Callers hold
// Lock(name) around Install.
//
// When it returns a nil Version (a failed write, a full disk, an invalid
// bundle), the previous live version is untouched and nothing new is left
// on disk. A Version with an error means the new version is live but
// something after the swap failed: the fsync of live/ (the swap may not
// survive a power loss, so nothing old is pruned) or pruning.
func (s *Store) Install(name string, domains []string, b Bundle, now time.Time) (*Version, error) {
	if err := validName(name); err != nil {
		return nil, err
	}
	parent := s.certsDir(name)
	if err := mkdirPrivate(parent); err != nil {
		return nil, fmt.Errorf("store: install %s: %w", name, err)
	}
	tmp, err := os.MkdirTemp(parent, tmpPrefix)
	if err != nil {
		return nil, fmt.Errorf("store: install %s: %w", name, err)
	}
	cleanup := tmp
	defer func() {
		if cleanup != "" {
			os.RemoveAll(cleanup)
		}
	}()

	facts, err := s.writeVersion(tmp, name, domains, b, now, s.now().UTC())
	if err != nil {
		return nil, fmt.Errorf("store: install %s: %w", name, err)
	}

	id, err := s.newID(name, facts.Serial)
	if err != nil {
		return nil, fmt.Errorf("store: install %s: %w", name, err)
	}
	v := s.version(name, id)
	if err := s.fs.Rename(tmp, v.Dir); err != nil {
		return nil, fmt.Errorf("store: install %s: %w", name, err)
	}
	cleanup = v.Dir
	if err := syncDir(s.fs, parent); err != nil {
		return nil, fmt.Errorf("store: install %s: %w", name, err)
	}

	link := s.liveLink(name)
	if err := swapSymlink(s.fs, filepath.Join("..", "certs", name, id), link); err != nil {
		return nil, fmt.Errorf("store: install %s: swap live link: %w", name, err)
	}
	cleanup = "" // live now; keep it whatever happens next
	if err := syncDir(s.fs, filepath.Dir(link)); err != nil {
		return v, fmt.Errorf("store: install %s: %s is live, but the swap may not be durable (old versions kept): %w", name, id, err)
	}
	if err := s.prune(name, id); err != nil {
		return v, fmt.Errorf("store: install %s: installed %s but pruning failed: %w", name, id, err)
	}
	return v, nil
}

// writeVersion writes the bundle into the empty directory dir, fsyncs it,
// then validates what is on disk and records meta.json.
func (s *Store) writeVersion(dir, name string, domains []string, b Bundle, now, installedAt time.Time) (*certinfo.Facts, error) {
	full := joinPEM(b.Cert, b.Chain)
	files := []struct {
		name string
		data []byte
		mode os.FileMode
	}{
		{KeyFile, b.Key, keyMode},
		{CertFile, b.Cert, fileMode},
		{ChainFile, b.Chain, fileMode},
		{FullchainFile, full, fileMode},
	}
	for _, f := range files {
		if err := writeNew(s.fs, filepath.Join(dir, f.name), f.data, f.mode); err != nil {
			return nil, err
		}
	}

	// Validate the files as written, not the bytes we were given.
	fullPEM, err := os.ReadFile(filepath.Join(dir, FullchainFile))
	if err != nil {
		return nil, err
	}
	keyPEM, err := os.ReadFile(filepath.Join(dir, KeyFile))
	if err != nil {
		return nil, err
	}
	facts, err := certinfo.Parse(fullPEM, keyPEM)
	if err != nil {
		return nil, fmt.Errorf("invalid bundle: %w", err)
	}
	if err := facts.Check(domains, now); err != nil {
		return nil, fmt.Errorf("invalid bundle: %w", err)
	}

	m, err := json.MarshalIndent(meta{
		Name:        name,
		Serial:      facts.Serial,
		NotAfter:    facts.NotAfter.UTC(),
		Domains:     domains,
		InstalledAt: installedAt,
		CA:          b.CA,
		Account:     b.Account,
	}, "", "  ")
	if err != nil {
		return nil, err
	}
	if err := writeNew(s.fs, filepath.Join(dir, MetaFile), append(m, '\n'), fileMode); err != nil {
		return nil, err
	}
	if err := syncDir(s.fs, dir); err != nil {
		return nil, err
	}
	return facts, nil
}

// newID returns an unused version ID: <UTC time>-<first 8 hex of serial>,
// with -2, -3 ... appended on collision.
func (s *Store) newID(name, serial string) (string, error) {
	var hex []byte
	for _, c := range strings.ToLower(serial) {
		if len(hex) == 8 {
			break
		}
		if c >= '0' && c <= '9' || c >= 'a' && c <= 'f' {
			hex = append(hex, byte(c))
		}
	}
	if len(hex) == 0 {
		hex = []byte("0")
	}
	base := s.now().UTC().Format("20060102T150405Z") + "-" + string(hex)
	for i := 1; i < 1000; i++ {
		id := base
		if i > 1 {
			id = fmt.Sprintf("%s-%d", base, i)
		}
		_, err := os.Lstat(filepath.Join(s.certsDir(name), id))
		if errors.Is(err, os.ErrNotExist) {
			return id, nil
		}
		if err != nil {
			return "", err
		}
	}
	return "", fmt.Errorf("no free version name for %s", base)
}

// prune removes versions beyond keep (oldest first), never live, and temp
// directories left by crashed installs.
func (s *Store) prune(name, live string) error {
	ids, err := s.Versions(name)
	if err != nil {
		return err
	}
	ids = slices.DeleteFunc(ids, func(id string) bool { return id == live })
	var errs []error
	if len(ids) > s.keep {
		for _, id := range ids[:len(ids)-s.keep] {
			if err := os.RemoveAll(filepath.Join(s.certsDir(name), id)); err != nil {
				errs = append(errs, err)
			}
		}
	}
	entries, err := os.ReadDir(s.certsDir(name))
	if err != nil {
		return errors.Join(append(errs, err)...)
	}
	for _, e := range entries {
		if !strings.HasPrefix(e.Name(), tmpPrefix) {
			continue
		}
		if fi, err := e.Info(); err == nil && s.now().Sub(fi.ModTime()) > staleTemp {
			if err := os.RemoveAll(filepath.Join(s.certsDir(name), e.Name())); err != nil {
				errs = append(errs, err)
			}
		}
	}
	return errors.Join(errs...)
}

// joinPEM concatenates PEM blobs, making sure each ends with a newline.
func joinPEM(parts ...[]byte) []byte {
	var buf bytes.Buffer
	for _, p := range parts {
		if len(p) == 0 {
			continue
		}
		buf.Write(p)
		if p[len(p)-1] != '\n' {
			buf.WriteByte('\n')
		}
	}
	return buf.Bytes()
}

// mkdirPrivate makes dir (and missing parents) 0700; an existing dir that
// group or others may enter gets 0700.
func mkdirPrivate(dir string) error {
	if err := os.MkdirAll(dir, dirMode); err != nil {
		return err
	}
	fi, err := os.Stat(dir)
	if err != nil {
		return err
	}
	if fi.Mode().Perm()&0o077 != 0 {
		return os.Chmod(dir, dirMode)
	}
	return nil
}

// AccountDir returns accounts/<key>, created 0700. Characters of key outside
// [A-Za-z0-9._@-] become '_', and so does a leading '.'.
func (s *Store) AccountDir(key string) (string, error) {
	if key == "" {
		return "", errors.New("store: empty account key")
	}
	safe := []byte(key)
	for i, c := range safe {
		ok := c >= 'a' && c <= 'z' || c >= 'A' && c <= 'Z' || c >= '0' && c <= '9' ||
			c == '.' || c == '_' || c == '@' || c == '-'
		if !ok || (i == 0 && c == '.') {
			safe[i] = '_'
		}
	}
	dir := filepath.Join(s.root, "accounts", string(safe))
	if err := mkdirPrivate(dir); err != nil {
		return "", fmt.Errorf("store: account dir: %w", err)
	}
	return dir, nil
}

// LiveFullchain is the path of name's live fullchain under storage root,
// for readers that must not open (and so create) the store, such as
// `renewer validate`.
func LiveFullchain(root, name string) string {
	return filepath.Join(root, "live", name, FullchainFile)
}
