package acme

import (
	"encoding/json"
	"errors"
	"fmt"
	"os"
	"path/filepath"

	"github.com/google/renameio/v2"
)

// The files of an account directory (Options.AccountDir). This package
// owns them: other packages move an account only through ExportAccount and
// ImportAccount, and check one with HasAccount.
const (
	accountKeyFile = "key.pem"      // the account's private key
	accountFile    = "account.json" // its registration at the CA
)

// accountFiles is an account as ExportAccount writes it (the form a fleet
// shares, sealed, in etcd).
type accountFiles struct {
	KeyPEM  string `json:"key_pem"`
	Account string `json:"account_json"`
	// NextKeyPEM is a key rollover's new key while the CA has not been
	// seen to accept it (key.next.pem, rollover.go).
	NextKeyPEM string `json:"next_key_pem,omitempty"`
}

// ExportAccount returns the registered account in dir as one value.
func ExportAccount(dir string) ([]byte, error) {
	key, err := os.ReadFile(filepath.Join(dir, accountKeyFile))
	if err != nil {
		return nil, fmt.Errorf("export account: %w", err)
	}
	acc, err := os.ReadFile(filepath.Join(dir, accountFile))
	if err != nil {
		return nil, fmt.Errorf("export account: %w", err)
	}
	next, err := os.ReadFile(filepath.Join(dir, accountNextKeyFile))
	if err != nil && !errors.Is(err, os.ErrNotExist) {
		return nil, fmt.Errorf("export account: %w", err)
	}
	return json.Marshal(accountFiles{KeyPEM: string(key), Account: string(acc), NextKeyPEM: string(next)})
}

// WriteFileFunc writes a file atomically with mode perm; nil means
// renameio's. The agent passes its store's, so that the disk-fault tests
// reach the account files too.
type WriteFileFunc func(path string, data []byte, perm os.FileMode) error

func (w WriteFileFunc) orDefault() WriteFileFunc {
	if w == nil {
		return func(path string, data []byte, perm os.FileMode) error { return renameio.WriteFile(path, data, perm) }
	}
	return w
}

// ImportAccount writes an account ExportAccount made into dir, each file
// atomically (0600), with write; a pending key dir holds that data does
// not is removed. A Client using dir notices and loads it again.
func ImportAccount(dir string, data []byte, write WriteFileFunc) error {
	var f accountFiles
	if err := json.Unmarshal(data, &f); err != nil {
		return fmt.Errorf("import account: %w", err)
	}
	if f.KeyPEM == "" {
		return errors.New("import account: no key")
	}
	for _, w := range []struct{ name, data string }{{accountKeyFile, f.KeyPEM}, {accountFile, f.Account}} {
		if err := write.orDefault()(filepath.Join(dir, w.name), []byte(w.data), 0o600); err != nil {
			return fmt.Errorf("import account: %w", err)
		}
	}
	next := filepath.Join(dir, accountNextKeyFile)
	if f.NextKeyPEM != "" {
		if err := write.orDefault()(next, []byte(f.NextKeyPEM), 0o600); err != nil {
			return fmt.Errorf("import account: %w", err)
		}
	} else if err := os.Remove(next); err != nil && !errors.Is(err, os.ErrNotExist) {
		return fmt.Errorf("import account: %w", err)
	}
	return nil
}

// AccountPending reports whether data (as ExportAccount makes it) holds a
// key rollover's new key that is not settled yet.
func AccountPending(data []byte) bool {
	var f accountFiles
	return json.Unmarshal(data, &f) == nil && f.NextKeyPEM != ""
}

// HasAccount reports why dir holds no account key, or nil when it does.
func HasAccount(dir string) error {
	_, err := os.Stat(filepath.Join(dir, accountKeyFile))
	return err
}
