// Package certtest makes throwaway CAs, certificates and keys for tests.
// Nothing in the renewer binary imports it.
package certtest

import (
	"crypto"
	"crypto/ecdsa"
	"crypto/ed25519"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/rsa"
	"crypto/x509"
	"crypto/x509/pkix"
	"encoding/pem"
	"math/big"
	"net"
	"testing"
	"time"
)

// CA is a certificate authority that can issue certificates.
type CA struct {
	Cert    *x509.Certificate
	Key     crypto.Signer
	CertPEM []byte // Cert as one PEM block
}

// NewCA returns a self-signed EC P-256 root valid from 2000 to 2100, with
// subject CN=name, O=certtest (just O=certtest when name is empty).
func NewCA(t testing.TB, name string) *CA {
	t.Helper()
	return newCA(t, name, nil)
}

// NewIntermediate returns an EC P-256 CA signed by ca.
func (ca *CA) NewIntermediate(t testing.TB, name string) *CA {
	t.Helper()
	return newCA(t, name, ca)
}

func newCA(t testing.TB, name string, parent *CA) *CA {
	t.Helper()
	key := NewKey(t, "ec256")
	tmpl := &x509.Certificate{
		SerialNumber:          serial(t),
		Subject:               pkix.Name{CommonName: name, Organization: []string{"certtest"}},
		NotBefore:             time.Date(2000, 1, 1, 0, 0, 0, 0, time.UTC),
		NotAfter:              time.Date(2100, 1, 1, 0, 0, 0, 0, time.UTC),
		KeyUsage:              x509.KeyUsageCertSign | x509.KeyUsageCRLSign | x509.KeyUsageDigitalSignature,
		BasicConstraintsValid: true,
		IsCA:                  true,
	}
	issuer, signer := tmpl, key
	if parent != nil {
		issuer, signer = parent.Cert, parent.Key
	}
	der, err := x509.CreateCertificate(rand.Reader, tmpl, issuer, key.Public(), signer)
	if err != nil {
		t.Fatalf("certtest: create CA certificate: %v", err)
	}
	cert, err := x509.ParseCertificate(der)
	if err != nil {
		t.Fatalf("certtest: parse CA certificate: %v", err)
	}
	return &CA{Cert: cert, Key: key, CertPEM: certPEM(der)}
}

// Options shape a leaf certificate. The zero value is fine.
type Options struct {
	Names     []string      // DNS names and IP addresses; default {"example.com"}
	NotBefore time.Time     // default: an hour ago
	NotAfter  time.Time     // default: NotBefore + 90 days
	KeyType   string        // "ec256" (default), "ec384", "ec521", "rsa2048", "rsa3072", "rsa4096", "ed25519"
	Key       crypto.Signer // use this key instead of generating one (KeyType is then ignored)
	Serial    *big.Int      // default: random 128 bits
	CA        *CA           // issuer; default: a fresh CA per call
}

// Issue returns a fullchain PEM (the leaf, then the issuing CA's certificate)
// and the leaf's private key as PKCS#8 PEM.
func Issue(t testing.TB, o Options) (fullchainPEM, keyPEM []byte) {
	t.Helper()
	if len(o.Names) == 0 {
		o.Names = []string{"example.com"}
	}
	if o.NotBefore.IsZero() {
		o.NotBefore = time.Now().Add(-time.Hour).Truncate(time.Second)
	}
	if o.NotAfter.IsZero() {
		o.NotAfter = o.NotBefore.Add(90 * 24 * time.Hour)
	}
	if o.Key == nil {
		o.Key = NewKey(t, o.KeyType)
	}
	if o.Serial == nil {
		o.Serial = serial(t)
	}
	if o.CA == nil {
		o.CA = NewCA(t, "certtest CA")
	}
	tmpl := &x509.Certificate{
		SerialNumber:          o.Serial,
		NotBefore:             o.NotBefore,
		NotAfter:              o.NotAfter,
		KeyUsage:              x509.KeyUsageDigitalSignature,
		ExtKeyUsage:           []x509.ExtKeyUsage{x509.ExtKeyUsageServerAuth},
		BasicConstraintsValid: true,
	}
	if _, ok := o.Key.(*rsa.PrivateKey); ok {
		tmpl.KeyUsage |= x509.KeyUsageKeyEncipherment
	}
	for _, n := range o.Names {
		if ip := net.ParseIP(n); ip != nil {
			tmpl.IPAddresses = append(tmpl.IPAddresses, ip)
		} else {
			tmpl.DNSNames = append(tmpl.DNSNames, n)
		}
	}
	if len(tmpl.DNSNames) > 0 {
		tmpl.Subject.CommonName = tmpl.DNSNames[0]
	}
	der, err := x509.CreateCertificate(rand.Reader, tmpl, o.CA.Cert, o.Key.Public(), o.CA.Key)
	if err != nil {
		t.Fatalf("certtest: create certificate: %v", err)
	}
	return append(certPEM(der), o.CA.CertPEM...), KeyPEM(t, o.Key)
}

// NewKey generates a key of the given type ("" means "ec256").
func NewKey(t testing.TB, keyType string) crypto.Signer {
	t.Helper()
	var (
		k   crypto.Signer
		err error
	)
	switch keyType {
	case "", "ec256":
		k, err = ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	case "ec384":
		k, err = ecdsa.GenerateKey(elliptic.P384(), rand.Reader)
	case "ec521":
		k, err = ecdsa.GenerateKey(elliptic.P521(), rand.Reader)
	case "rsa2048":
		k, err = rsa.GenerateKey(rand.Reader, 2048)
	case "rsa3072":
		k, err = rsa.GenerateKey(rand.Reader, 3072)
	case "rsa4096":
		k, err = rsa.GenerateKey(rand.Reader, 4096)
	case "ed25519":
		_, k, err = ed25519.GenerateKey(rand.Reader)
	default:
		t.Fatalf("certtest: unknown key type %q", keyType)
	}
	if err != nil {
		t.Fatalf("certtest: generate %s key: %v", keyType, err)
	}
	return k
}

// KeyPEM encodes key as a PKCS#8 "PRIVATE KEY" PEM block.
func KeyPEM(t testing.TB, key crypto.Signer) []byte {
	t.Helper()
	der, err := x509.MarshalPKCS8PrivateKey(key)
	if err != nil {
		t.Fatalf("certtest: marshal key: %v", err)
	}
	return pem.EncodeToMemory(&pem.Block{Type: "PRIVATE KEY", Bytes: der})
}

func certPEM(der []byte) []byte {
	return pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: der})
}

func serial(t testing.TB) *big.Int {
	t.Helper()
	n, err := rand.Int(rand.Reader, new(big.Int).Lsh(big.NewInt(1), 128))
	if err != nil {
		t.Fatalf("certtest: serial: %v", err)
	}
	return n
}
