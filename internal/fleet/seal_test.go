package fleet_test

import (
	"encoding/base64"
	"encoding/hex"
	"testing"

	"github.com/renewer/renewer/internal/fleet"
)

// The fleet key file holds 32 bytes as base64 (what internal/docs/fleet.md's
// `head -c 32 /dev/urandom | base64` writes), hex, or raw.
func TestParseKey(t *testing.T) {
	k, err := fleet.NewKey()
	if err != nil {
		t.Fatal(err)
	}
	for name, raw := range map[string][]byte{
		"base64 with newline": []byte(base64.StdEncoding.EncodeToString(k[:]) + "\n"),
		"base64url":           []byte(base64.RawURLEncoding.EncodeToString(k[:])),
		"hex":                 []byte(hex.EncodeToString(k[:])),
		"raw":                 k[:],
	} {
		got, err := fleet.ParseKey(raw)
		if err != nil || got != k {
			t.Errorf("%s: %v", name, err)
		}
	}
	for name, raw := range map[string][]byte{
		"short":     []byte(base64.StdEncoding.EncodeToString(k[:16])),
		"empty":     nil,
		"not a key": []byte("correct horse battery staple"),
	} {
		if _, err := fleet.ParseKey(raw); err == nil {
			t.Errorf("%s: accepted", name)
		}
	}
}
