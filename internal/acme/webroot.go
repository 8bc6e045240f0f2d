package acme

import (
	"errors"
	"fmt"
	"io/fs"
	"os"
	"path"
	"path/filepath"
	"strings"
	"sync"
	"time"
)

// challengeDir is where HTTP-01 answers live, relative to a webroot.
const challengeDir = ".well-known/acme-challenge"

// webrootProvider answers HTTP-01 by writing the key authorization to
// <webroot>/.well-known/acme-challenge/<token>, which the site's own web
// server serves. Every file operation goes through an os.Root opened on the
// webroot, so nothing is ever written outside it: a token with "/" or ".."
// is refused, and so is a .well-known or acme-challenge that is a symbolic
// link leading out of the webroot (a link that stays inside is followed).
// The token's file is removed after the challenge; the directories stay.
type webrootProvider struct {
	dir string
}

func newWebrootProvider(dir string) (*webrootProvider, error) {
	fi, err := os.Stat(dir)
	if err != nil {
		return nil, err
	}
	if !fi.IsDir() {
		return nil, fmt.Errorf("%s is not a directory", dir)
	}
	return &webrootProvider{dir: dir}, nil
}

func (p *webrootProvider) Present(domain, token, keyAuth string) error {
	if !validToken(token) {
		return fmt.Errorf("webroot: invalid token %q from the CA", token)
	}
	root, err := os.OpenRoot(p.dir)
	if err != nil {
		return fmt.Errorf("webroot: %w", err)
	}
	defer root.Close()
	if err := root.MkdirAll(challengeDir, 0o755); err != nil {
		return fmt.Errorf("webroot %s: create %s: %w", p.dir, challengeDir, escapeHint(err))
	}
	name := path.Join(challengeDir, token)
	presented.Store(filepath.Join(p.dir, name), true)
	// Readable by the web server (another user); the key authorization is
	// public by design: the CA fetches it over plain HTTP.
	f, err := root.OpenFile(name, os.O_WRONLY|os.O_CREATE|os.O_TRUNC, 0o644)
	if err != nil {
		return fmt.Errorf("webroot %s: write %s: %w", p.dir, name, escapeHint(err))
	}
	_, err = f.WriteString(keyAuth)
	if err == nil {
		err = f.Chmod(0o644) // whatever the umask
	}
	if cerr := f.Close(); err == nil {
		err = cerr
	}
	if err != nil {
		_ = root.Remove(name)
		return fmt.Errorf("webroot %s: write %s: %w", p.dir, name, err)
	}
	return nil
}

func (p *webrootProvider) CleanUp(domain, token, keyAuth string) error {
	if !validToken(token) {
		return nil // Present wrote nothing for it
	}
	root, err := os.OpenRoot(p.dir)
	if err != nil {
		return fmt.Errorf("webroot: %w", err)
	}
	defer root.Close()
	name := path.Join(challengeDir, token)
	if err := root.Remove(name); err != nil && !errors.Is(err, fs.ErrNotExist) {
		return fmt.Errorf("webroot %s: remove challenge file: %w", p.dir, err)
	}
	presented.Delete(filepath.Join(p.dir, name))
	return nil
}

// presented holds the answer files this process has written and not yet
// cleaned up (path -> true): CleanWebroot leaves them alone.
var presented sync.Map

// StaleToken is the age after which an HTTP-01 answer file left in a
// webroot is surely not part of an order under way (a CA validates within
// minutes of the answer being written).
const StaleToken = time.Hour

// CleanWebroot removes the HTTP-01 answers a killed renewer left in
// <webroot>/.well-known/acme-challenge and returns their paths. Only files
// of the form Present writes are removed: a regular file named as an ACME
// token whose content is exactly a key authorization for that token
// (token "." 43 base64url characters), older than StaleToken (another
// renewer process may be answering a challenge with the same webroot), and
// not pending in this process. Everything else in the webroot stays.
func CleanWebroot(webroot string, now time.Time) ([]string, error) {
	root, err := os.OpenRoot(webroot)
	if err != nil {
		return nil, fmt.Errorf("webroot %s: %w", webroot, err)
	}
	defer root.Close()
	d, err := root.Open(challengeDir)
	if errors.Is(err, fs.ErrNotExist) {
		return nil, nil
	}
	if err != nil {
		return nil, fmt.Errorf("webroot %s: %w", webroot, escapeHint(err))
	}
	entries, err := d.ReadDir(-1)
	d.Close()
	if err != nil {
		return nil, fmt.Errorf("webroot %s: %w", webroot, err)
	}
	var removed []string
	var errs []error
	for _, e := range entries {
		token := e.Name()
		name := path.Join(challengeDir, token)
		full := filepath.Join(webroot, name)
		if !e.Type().IsRegular() || !validToken(token) {
			continue
		}
		if _, ok := presented.Load(full); ok {
			continue
		}
		if fi, err := e.Info(); err != nil || now.Sub(fi.ModTime()) < StaleToken || fi.Size() != int64(len(token)+1+43) {
			continue
		}
		data, err := root.ReadFile(name)
		if err != nil || !isKeyAuthorization(token, string(data)) {
			continue
		}
		if err := root.Remove(name); err != nil && !errors.Is(err, fs.ErrNotExist) {
			errs = append(errs, err)
			continue
		}
		removed = append(removed, full)
	}
	if err := errors.Join(errs...); err != nil {
		return removed, fmt.Errorf("webroot %s: remove stale challenge file: %w", webroot, err)
	}
	return removed, nil
}

// isKeyAuthorization: s is token "." and an unpadded base64url SHA-256
// account key thumbprint (RFC 8555 section 8.1), nothing more.
func isKeyAuthorization(token, s string) bool {
	thumb, ok := strings.CutPrefix(s, token+".")
	return ok && len(thumb) == 43 && validToken(thumb)
}

// escapeHint explains os.Root's refusal to follow a link out of the webroot.
func escapeHint(err error) error {
	if isEscape(err) {
		return fmt.Errorf("%w (a symbolic link leads out of the webroot; renewer writes only inside it)", err)
	}
	return err
}

// isEscape: os.Root's error for a path that leaves the root (the os
// package does not export it).
func isEscape(err error) bool {
	return err != nil && strings.Contains(err.Error(), "path escapes from parent")
}
