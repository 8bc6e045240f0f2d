package acme

import (
	"crypto"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"encoding/json"
	"errors"
	"fmt"
	"net/url"
	"os"
	"path/filepath"
	"strings"
	"time"

	"github.com/go-acme/lego/v4/certcrypto"
	"github.com/go-acme/lego/v4/registration"
)

// AccountKey names the account of one CA directory and e-mail address as a
// single path element, e.g. "acme-v02.api.letsencrypt.org_directory_ops@example.com".
// Accounts of different CAs (or of staging and production) never mix.
func AccountKey(directory, email string) string {
	host := directory
	if u, err := url.Parse(directory); err == nil && u.Host != "" {
		host = u.Host + u.Path
	}
	if email == "" {
		email = "default"
	}
	key := host + "_" + email
	return strings.Map(func(r rune) rune {
		switch {
		case r >= 'a' && r <= 'z', r >= 'A' && r <= 'Z', r >= '0' && r <= '9', r == '.', r == '@', r == '-':
			return r
		}
		return '_'
	}, strings.Trim(key, "/"))
}

// account is a registration.User kept in a directory:
// key.pem (0600) and account.json.
type account struct {
	Email        string                 `json:"email,omitempty"`
	Directory    string                 `json:"directory"`
	Created      time.Time              `json:"created"`
	Registration *registration.Resource `json:"registration,omitempty"`
	key          crypto.PrivateKey
}

func (a *account) GetEmail() string                        { return a.Email }
func (a *account) GetRegistration() *registration.Resource { return a.Registration }
func (a *account) GetPrivateKey() crypto.PrivateKey        { return a.key }

// loadAccount reads the account in dir. A missing key means a fresh account
// (a new key is made and saved at once, so a crash before registration
// reuses it); a missing or empty account.json means "not registered yet".
func loadAccount(dir, directory, email string, now time.Time, write WriteFileFunc) (*account, error) {
	keyFile := filepath.Join(dir, accountKeyFile)
	acc := &account{Email: email, Directory: directory, Created: now}
	keyPEM, err := os.ReadFile(keyFile)
	switch {
	case errors.Is(err, os.ErrNotExist):
		k, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
		if err != nil {
			return nil, fmt.Errorf("generate account key: %w", err)
		}
		if err := write.orDefault()(keyFile, certcrypto.PEMEncode(k), 0o600); err != nil {
			return nil, fmt.Errorf("save account key: %w", err)
		}
		acc.key = k
		return acc, nil
	case err != nil:
		return nil, fmt.Errorf("read account key: %w", err)
	}
	if acc.key, err = certcrypto.ParsePEMPrivateKey(keyPEM); err != nil {
		return nil, fmt.Errorf("parse account key %s: %w", keyFile, err)
	}
	raw, err := os.ReadFile(filepath.Join(dir, accountFile))
	if errors.Is(err, os.ErrNotExist) {
		return acc, nil
	}
	if err != nil {
		return nil, fmt.Errorf("read account: %w", err)
	}
	if err := json.Unmarshal(raw, acc); err != nil {
		return nil, fmt.Errorf("parse account %s: %w", filepath.Join(dir, accountFile), err)
	}
	acc.Email = email
	return acc, nil
}

func (a *account) save(dir string, write WriteFileFunc) error {
	raw, err := json.MarshalIndent(a, "", "  ")
	if err != nil {
		return err
	}
	if err := write.orDefault()(filepath.Join(dir, accountFile), append(raw, '\n'), 0o600); err != nil {
		return fmt.Errorf("save account: %w", err)
	}
	return nil
}
