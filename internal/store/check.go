package store

import (
	"bytes"
	"errors"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"

	"github.com/renewer/renewer/internal/certinfo"
)

// CheckVersion reports whether v's files agree with each other: cert.pem
// and chain.pem must make up fullchain.pem, which a server may read instead
// of them. The fullchain and key themselves are checked by whoever parses
// them (certinfo.Load).
func CheckVersion(v *Version) error {
	cert, err := os.ReadFile(v.Cert)
	if err != nil {
		return fmt.Errorf("read %s: %w", v.Cert, err)
	}
	chain, err := os.ReadFile(v.Chain)
	if err != nil {
		return fmt.Errorf("read %s: %w", v.Chain, err)
	}
	full, err := os.ReadFile(v.Fullchain)
	if err != nil {
		return fmt.Errorf("read %s: %w", v.Fullchain, err)
	}
	if !bytes.Equal(joinPEM(cert, chain), full) {
		return fmt.Errorf("%s and %s do not make up %s (changed by someone else?)", v.Cert, v.Chain, v.Fullchain)
	}
	return nil
}

// TargetProblem is one file of an install target that does not hold the
// live version's content.
type TargetProblem struct {
	Path string
	Err  error
}

func (p TargetProblem) Error() string { return p.Path + ": " + p.Err.Error() }

// CheckTarget compares every file WriteTarget writes for t with live
// version v and returns those that differ: missing, unreadable, or holding
// something else (another certificate or key, garbage: someone else wrote
// it, or a crash came between the copies). Each problem says what the file
// holds instead, when it can tell.
func CheckTarget(v *Version, t Target) []TargetProblem {
	read := func(p string) []byte { b, _ := os.ReadFile(p); return b }
	full, key := read(v.Fullchain), read(v.Key)
	var out []TargetProblem
	check := func(path string, want []byte, isKey bool) {
		got, err := os.ReadFile(path)
		switch {
		case errors.Is(err, fs.ErrNotExist):
			out = append(out, TargetProblem{path, errors.New("missing")})
		case err != nil:
			out = append(out, TargetProblem{path, err})
		case !bytes.Equal(got, want):
			out = append(out, TargetProblem{path, differs(got, full, key, isKey)})
		}
	}
	if t.Dir != "" {
		check(filepath.Join(t.Dir, CertFile), read(v.Cert), false)
		check(filepath.Join(t.Dir, ChainFile), read(v.Chain), false)
		check(filepath.Join(t.Dir, FullchainFile), full, false)
		check(filepath.Join(t.Dir, KeyFile), key, true)
	}
	if t.HAProxyBundle != "" {
		check(t.HAProxyBundle, joinPEM(full, key), false)
	}
	return out
}

// differs says how got differs from the live files.
func differs(got, full, key []byte, isKey bool) error {
	live, err := certinfo.Parse(full, key)
	if err != nil {
		return errors.New("differs from the live version")
	}
	if isKey {
		f, err := certinfo.Parse(full, got)
		if err != nil {
			return fmt.Errorf("not a usable private key: %w", err)
		}
		if !f.KeyMatches {
			return errors.New("holds another private key than the live certificate's")
		}
		return errors.New("differs from the live key file")
	}
	f, err := certinfo.Parse(got, got)
	if err != nil {
		f, err = certinfo.Parse(got, nil)
	}
	switch {
	case err != nil:
		return fmt.Errorf("unreadable: %w", err)
	case f.Serial != live.Serial:
		return fmt.Errorf("holds serial %s, not the live %s", f.Serial, live.Serial)
	case f.HasKey && !f.KeyMatches:
		return errors.New("holds a private key that does not match its certificate")
	}
	return errors.New("differs from the live version")
}
