package acme

import (
	"errors"
	"fmt"
	"io/fs"
	"os"
	"path"
	"strings"
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
	if err := root.Remove(path.Join(challengeDir, token)); err != nil && !errors.Is(err, fs.ErrNotExist) {
		return fmt.Errorf("webroot %s: remove challenge file: %w", p.dir, err)
	}
	return nil
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
