// Package certinfo reads PEM certificate bundles and private keys and reports
// facts about them: names, validity, serial, issuer, key type, whether the key
// matches and whether the chain links up. It holds no renewal policy (that is
// package plan) and does no I/O beyond reading the files a caller names.
package certinfo

import (
	"crypto"
	"crypto/ecdsa"
	"crypto/ed25519"
	"crypto/elliptic"
	"crypto/rsa"
	"crypto/x509"
	"encoding/pem"
	"errors"
	"fmt"
	"math/big"
	"os"
	"strings"
	"time"
)

// Errors returned (wrapped) by Check, one per check, for errors.Is.
var (
	ErrNoKey       = errors.New("no private key")
	ErrKeyMismatch = errors.New("private key does not match the certificate")
	ErrNames       = errors.New("certificate does not cover the configured names")
	ErrChain       = errors.New("certificate chain does not verify")
	ErrExpired     = errors.New("certificate has expired")
	ErrNotYetValid = errors.New("certificate is not yet valid")
)

// ClockSkew is how far in the future a certificate's NotBefore may be for
// Check to accept it.
const ClockSkew = time.Hour

// Facts describes a parsed certificate bundle and, optionally, its key.
type Facts struct {
	Names      []string // DNS SANs then IP SANs (as strings), in certificate order; lower-case
	NotBefore  time.Time
	NotAfter   time.Time
	Serial     string // as openssl prints it: uppercase hex, even digit count (FormatSerial)
	Issuer     string // issuer CommonName, or the issuer DN when CN is empty
	KeyType    string // of the leaf's public key; see KeyTypeOf
	HasKey     bool   // a private key was given and parsed
	KeyMatches bool   // that key's public half equals the leaf's public key
	Leaf       *x509.Certificate
	Chain      []*x509.Certificate // certificates after the leaf, in file order
}

// Parse reads a PEM certificate bundle (leaf first, then an optional chain)
// and an optional PEM private key (nil means no key). Keys may be PKCS#1,
// PKCS#8 or SEC1 EC. Non-certificate blocks in certPEM are ignored, but at
// least one certificate is required.
func Parse(certPEM, keyPEM []byte) (*Facts, error) {
	certs, err := parseCerts(certPEM)
	if err != nil {
		return nil, err
	}
	var key crypto.PrivateKey
	if keyPEM != nil {
		if key, err = parseKey(keyPEM); err != nil {
			return nil, err
		}
	}
	return newFacts(certs, key), nil
}

// Load reads certPath (and keyPath unless it is empty) and parses them like
// Parse. Errors name the file at fault.
func Load(certPath, keyPath string) (*Facts, error) {
	data, err := os.ReadFile(certPath)
	if err != nil {
		return nil, fmt.Errorf("read certificate: %w", err)
	}
	certs, err := parseCerts(data)
	if err != nil {
		return nil, fmt.Errorf("%s: %w", certPath, err)
	}
	var key crypto.PrivateKey
	if keyPath != "" {
		data, err := os.ReadFile(keyPath)
		if err != nil {
			return nil, fmt.Errorf("read private key: %w", err)
		}
		if key, err = parseKey(data); err != nil {
			return nil, fmt.Errorf("%s: %w", keyPath, err)
		}
	}
	return newFacts(certs, key), nil
}

func parseCerts(data []byte) ([]*x509.Certificate, error) {
	var certs []*x509.Certificate
	for {
		var b *pem.Block
		b, data = pem.Decode(data)
		if b == nil {
			break
		}
		if b.Type != "CERTIFICATE" {
			continue
		}
		c, err := x509.ParseCertificate(b.Bytes)
		if err != nil {
			return nil, fmt.Errorf("parse certificate %d: %w", len(certs)+1, err)
		}
		certs = append(certs, c)
	}
	if len(certs) == 0 {
		return nil, errors.New("no PEM certificate found")
	}
	return certs, nil
}

// parseKey returns the first "... PRIVATE KEY" block's key. Like
// crypto/tls it tries PKCS#1, PKCS#8 and SEC1 whatever the block's label.
func parseKey(data []byte) (crypto.PrivateKey, error) {
	for {
		var b *pem.Block
		b, data = pem.Decode(data)
		if b == nil {
			return nil, errors.New("no PEM private key found")
		}
		if !strings.HasSuffix(b.Type, "PRIVATE KEY") {
			continue // e.g. "EC PARAMETERS" before an openssl EC key
		}
		if b.Type == "ENCRYPTED PRIVATE KEY" {
			return nil, errors.New("encrypted private keys are not supported")
		}
		if k, err := x509.ParsePKCS1PrivateKey(b.Bytes); err == nil {
			return k, nil
		}
		if k, err := x509.ParsePKCS8PrivateKey(b.Bytes); err == nil {
			return k, nil
		}
		if k, err := x509.ParseECPrivateKey(b.Bytes); err == nil {
			return k, nil
		}
		return nil, fmt.Errorf("parse private key: %q block is not PKCS#1, PKCS#8 or SEC1", b.Type)
	}
}

func newFacts(certs []*x509.Certificate, key crypto.PrivateKey) *Facts {
	leaf := certs[0]
	f := &Facts{
		NotBefore: leaf.NotBefore,
		NotAfter:  leaf.NotAfter,
		Issuer:    leaf.Issuer.CommonName,
		KeyType:   KeyTypeOf(leaf.PublicKey),
		Leaf:      leaf,
		Chain:     certs[1:],
	}
	if f.Issuer == "" {
		f.Issuer = leaf.Issuer.String()
	}
	if leaf.SerialNumber != nil {
		f.Serial = FormatSerial(leaf.SerialNumber)
	}
	for _, n := range leaf.DNSNames {
		f.Names = append(f.Names, strings.ToLower(n))
	}
	for _, ip := range leaf.IPAddresses {
		f.Names = append(f.Names, ip.String())
	}
	if key != nil {
		f.HasKey = true
		f.KeyMatches = keyMatches(key, leaf.PublicKey)
	}
	return f
}

func keyMatches(key crypto.PrivateKey, pub crypto.PublicKey) bool {
	k, ok := key.(interface{ Public() crypto.PublicKey })
	if !ok {
		return false
	}
	p, ok := k.Public().(interface{ Equal(crypto.PublicKey) bool })
	return ok && p.Equal(pub)
}

// KeyTypeOf names a public key the way the config's key_type does:
// "ec256", "ec384", "ec521", "rsaNNNN" (bit length, e.g. "rsa2048"),
// "ed25519", or "unknown".
func KeyTypeOf(pub crypto.PublicKey) string {
	switch k := pub.(type) {
	case *ecdsa.PublicKey:
		if k == nil || k.Curve == nil {
			return "unknown"
		}
		switch k.Curve {
		case elliptic.P256():
			return "ec256"
		case elliptic.P384():
			return "ec384"
		case elliptic.P521():
			return "ec521"
		}
	case *rsa.PublicKey:
		if k != nil && k.N != nil {
			return fmt.Sprintf("rsa%d", k.N.BitLen())
		}
	case ed25519.PublicKey:
		return "ed25519"
	}
	return "unknown"
}

// Lifetime is NotAfter - NotBefore.
func (f *Facts) Lifetime() time.Duration { return f.NotAfter.Sub(f.NotBefore) }

// SameNames reports whether the certificate's names and domains are the same
// set, ignoring case, order and duplicates.
func (f *Facts) SameNames(domains []string) bool {
	return f.Covers(domains) && len(missing(domains, f.Names)) == 0
}

// Covers reports whether every domain is one of the certificate's names
// (exact, case-insensitive; a wildcard name covers only the same wildcard).
func (f *Facts) Covers(domains []string) bool { return len(missing(f.Names, domains)) == 0 }

// missing returns the entries of want not in have, case-insensitively.
func missing(have, want []string) []string {
	set := make(map[string]bool, len(have))
	for _, n := range have {
		set[strings.ToLower(n)] = true
	}
	var out []string
	for _, n := range want {
		if !set[strings.ToLower(n)] {
			out = append(out, n)
		}
	}
	return out
}

// VerifyChain checks that the leaf is signed by Chain[0] and each Chain[i]
// by Chain[i+1]. It does not look for a trusted root or check validity
// periods of the chain certificates. An empty chain is an error.
func (f *Facts) VerifyChain() error {
	if len(f.Chain) == 0 {
		return errors.New("no chain certificates after the leaf")
	}
	child := f.Leaf
	for i, parent := range f.Chain {
		if err := child.CheckSignatureFrom(parent); err != nil {
			return fmt.Errorf("certificate %d (%s) is not signed by certificate %d (%s): %w",
				i+1, certName(child), i+2, certName(parent), err)
		}
		child = parent
	}
	return nil
}

func certName(c *x509.Certificate) string {
	if c.Subject.CommonName != "" {
		return c.Subject.CommonName
	}
	return c.Subject.String()
}

// Check is the validation done before installing: a private key is present
// and matches, the names cover domains, the chain verifies, and now is within
// NotBefore-ClockSkew .. NotAfter. The error names the first failed check and
// wraps one of the Err* values.
func (f *Facts) Check(domains []string, now time.Time) error {
	switch {
	case !f.HasKey:
		return ErrNoKey
	case !f.KeyMatches:
		return ErrKeyMismatch
	}
	if m := missing(f.Names, domains); len(m) > 0 {
		return fmt.Errorf("%w: missing %s", ErrNames, strings.Join(m, ", "))
	}
	if err := f.VerifyChain(); err != nil {
		return fmt.Errorf("%w: %w", ErrChain, err)
	}
	if now.After(f.NotAfter) {
		return fmt.Errorf("%w: not after %s", ErrExpired, f.NotAfter.UTC().Format(time.RFC3339))
	}
	if now.Add(ClockSkew).Before(f.NotBefore) {
		return fmt.Errorf("%w: not before %s", ErrNotYetValid, f.NotBefore.UTC().Format(time.RFC3339))
	}
	return nil
}

// FormatSerial is how renewer writes a serial number everywhere (output,
// meta.json, state, RENEWER_SERIAL, notifications): as `openssl x509
// -serial` and CRLs do, uppercase hexadecimal with an even number of
// digits (a leading 0 when needed), no colons.
func FormatSerial(n *big.Int) string {
	if n == nil {
		return ""
	}
	sign := ""
	if n.Sign() < 0 {
		sign, n = "-", new(big.Int).Neg(n)
	}
	h := strings.ToUpper(n.Text(16))
	if len(h)%2 == 1 {
		h = "0" + h
	}
	return sign + h
}

// NormalizeSerial rewrites a serial written in another form (renewer
// before 0.x wrote lowercase without the leading zero; colons as some
// tools print it) the way FormatSerial does. Text that is not a
// hexadecimal number comes back unchanged.
func NormalizeSerial(s string) string {
	h := strings.ReplaceAll(strings.TrimSpace(s), ":", "")
	if h == "" {
		return s
	}
	n, ok := new(big.Int).SetString(h, 16)
	if !ok {
		return s
	}
	return FormatSerial(n)
}

// SameSerial reports whether a and b name the same serial number, in
// whichever form each was written (state files written before serials
// kept their leading zero hold the old form).
func SameSerial(a, b string) bool {
	return a == b || NormalizeSerial(a) == NormalizeSerial(b)
}
