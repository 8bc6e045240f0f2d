package fleet

import (
	"bytes"
	"crypto/rand"
	"encoding/base64"
	"encoding/hex"
	"errors"
	"fmt"
	"os"
	"strings"

	"golang.org/x/crypto/nacl/secretbox"

	"github.com/renewer/renewer/internal/store"
)

// Key is the fleet key: private keys (of certificates and of the ACME
// account) are sealed with it before they are written to etcd.
type Key [32]byte

// ErrWrongKey is returned (wrapped) when a sealed value does not open with
// this node's fleet key: another key sealed it, or it was altered.
var ErrWrongKey = store.ErrWrongFleetKey

// LoadKey reads a fleet key file: 32 bytes, as base64 or hex text (what
// `head -c 32 /dev/urandom | base64` writes) or raw. The file must not be
// readable by group or others.
func LoadKey(path string) (Key, error) {
	var k Key
	fi, err := os.Stat(path)
	if err != nil {
		return k, fmt.Errorf("fleet key: %w (fleet mode needs the fleet key on every node)", err)
	}
	if fi.Mode().Perm()&0o077 != 0 {
		return k, fmt.Errorf("fleet key %s: mode %04o lets others read it; chmod 0600 it", path, fi.Mode().Perm())
	}
	raw, err := os.ReadFile(path)
	if err != nil {
		return k, fmt.Errorf("fleet key: %w", err)
	}
	return ParseKey(raw)
}

// ParseKey decodes a fleet key given as base64 or hex text, or 32 raw bytes.
func ParseKey(raw []byte) (Key, error) {
	var k Key
	text := strings.TrimSpace(string(raw))
	for _, dec := range []func(string) ([]byte, error){
		base64.StdEncoding.DecodeString, base64.RawStdEncoding.DecodeString,
		base64.URLEncoding.DecodeString, base64.RawURLEncoding.DecodeString, hex.DecodeString,
	} {
		if b, err := dec(text); err == nil && len(b) == len(k) {
			copy(k[:], b)
			return k, nil
		}
	}
	if len(raw) == len(k) {
		copy(k[:], raw)
		return k, nil
	}
	return k, errors.New("fleet key: want 32 random bytes as base64 or hex, e.g. from `head -c 32 /dev/urandom | base64`")
}

// NewKey returns a random fleet key.
func NewKey() (Key, error) {
	var k Key
	_, err := rand.Read(k[:])
	return k, err
}

// String is the key as base64, the form LoadKey reads.
func (k Key) String() string { return base64.StdEncoding.EncodeToString(k[:]) }

// seal encrypts and authenticates plain for the etcd key where it is
// stored: the key is sealed with it, so a value moved to another key does
// not open. Layout: 24-byte nonce, then secretbox's output.
func (k *Key) seal(where string, plain []byte) ([]byte, error) {
	var nonce [24]byte
	if _, err := rand.Read(nonce[:]); err != nil {
		return nil, fmt.Errorf("seal: %w", err)
	}
	msg := append([]byte(where+"\x00"), plain...)
	return secretbox.Seal(nonce[:], msg, &nonce, (*[32]byte)(k)), nil
}

// open reverses seal; it fails with ErrWrongKey unless box was sealed with
// this key for where.
func (k *Key) open(where string, box []byte) ([]byte, error) {
	if len(box) < 24+secretbox.Overhead {
		return nil, fmt.Errorf("%s: %w", where, ErrWrongKey)
	}
	var nonce [24]byte
	copy(nonce[:], box)
	msg, ok := secretbox.Open(nil, box[24:], &nonce, (*[32]byte)(k))
	if !ok {
		return nil, fmt.Errorf("%s: %w", where, ErrWrongKey)
	}
	plain, ok := bytes.CutPrefix(msg, []byte(where+"\x00"))
	if !ok {
		return nil, fmt.Errorf("%s: sealed for another key: %w", where, ErrWrongKey)
	}
	return plain, nil
}
