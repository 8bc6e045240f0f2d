package fleet_test

import (
	"context"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/x509"
	"crypto/x509/pkix"
	"encoding/pem"
	"math/big"
	"net"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/hashicorp/hcl/v2"

	"github.com/renewer/renewer/internal/config"
	"github.com/renewer/renewer/internal/fleet"
	"github.com/renewer/renewer/internal/store"
)

// pki writes a CA, a server certificate for 127.0.0.1 and a client
// certificate for cn into dir and returns their paths.
type pki struct{ ca, serverCert, serverKey, clientCert, clientKey string }

func newPKI(t *testing.T, dir, cn string) pki {
	t.Helper()
	caKey, _ := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	caTmpl := &x509.Certificate{
		SerialNumber: big.NewInt(1), Subject: pkix.Name{CommonName: "etcd test CA"},
		NotBefore: time.Now().Add(-time.Hour), NotAfter: time.Now().Add(24 * time.Hour),
		KeyUsage: x509.KeyUsageCertSign, BasicConstraintsValid: true, IsCA: true,
	}
	caDER, err := x509.CreateCertificate(rand.Reader, caTmpl, caTmpl, &caKey.PublicKey, caKey)
	if err != nil {
		t.Fatal(err)
	}
	caCert, _ := x509.ParseCertificate(caDER)
	p := pki{ca: filepath.Join(dir, "ca.pem")}
	writePEM(t, p.ca, "CERTIFICATE", caDER)
	leaf := func(name string, serial int64, usage x509.ExtKeyUsage, ips []net.IP) (string, string) {
		k, _ := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
		tmpl := &x509.Certificate{
			SerialNumber: big.NewInt(serial), Subject: pkix.Name{CommonName: name},
			NotBefore: time.Now().Add(-time.Hour), NotAfter: time.Now().Add(24 * time.Hour),
			KeyUsage: x509.KeyUsageDigitalSignature, ExtKeyUsage: []x509.ExtKeyUsage{usage}, IPAddresses: ips,
		}
		der, err := x509.CreateCertificate(rand.Reader, tmpl, caCert, &k.PublicKey, caKey)
		if err != nil {
			t.Fatal(err)
		}
		kder, _ := x509.MarshalECPrivateKey(k)
		cf, kf := filepath.Join(dir, name+".pem"), filepath.Join(dir, name+".key")
		writePEM(t, cf, "CERTIFICATE", der)
		writePEM(t, kf, "EC PRIVATE KEY", kder)
		return cf, kf
	}
	p.serverCert, p.serverKey = leaf("server", 2, x509.ExtKeyUsageServerAuth, []net.IP{net.IPv4(127, 0, 0, 1)})
	p.clientCert, p.clientKey = leaf(cn, 3, x509.ExtKeyUsageClientAuth, nil)
	return p
}

func writePEM(t *testing.T, path, typ string, der []byte) {
	t.Helper()
	writeFile(t, path, string(pem.EncodeToMemory(&pem.Block{Type: typ, Bytes: der})), 0o600)
}

// A fleet behind etcd with client-certificate TLS and authentication: the
// backend connects with ca_file, cert_file/key_file, username and
// password_file from the config; a wrong password or no client
// certificate gets nowhere.
func TestEtcdTLSAndAuth(t *testing.T) {
	t.Parallel()
	dir := t.TempDir()
	p := newPKI(t, dir, "renewer")
	ep := startTLSEtcd(t, p, "/secure", "s3cret")
	ctx := context.Background()

	k := newKey(t)
	keyFile, pwFile := filepath.Join(dir, "fleet.key"), filepath.Join(dir, "etcd.password")
	writeFile(t, keyFile, k.String(), 0o600)
	writeFile(t, pwFile, "s3cret\n", 0o600)
	fc := &config.Fleet{Node: "n1", KeyFile: keyFile, LockTTL: 2 * time.Second, Range: hcl.Range{Filename: "renewer.hcl"},
		Etcd: config.Etcd{Endpoints: []string{ep}, Prefix: "/secure", CAFile: p.ca, CertFile: p.clientCert, KeyFile: p.clientKey,
			Username: "renewer", PasswordFile: pwFile, DialTimeout: 5 * time.Second}}
	b, err := fleet.OpenConfig(fc, logger(t, "n1"))
	if err != nil {
		t.Fatal(err)
	}
	defer b.Close()
	c, ok, err := b.Claim(ctx, "www")
	if err != nil || !ok {
		t.Fatalf("claim over TLS with auth: %v %v", ok, err)
	}
	if err := c.Publish(ctx, store.Published{Serial: "0a", Bundle: store.Bundle{Cert: []byte("C"), Key: []byte(secretKey)}}); err != nil {
		t.Fatalf("publish over TLS with auth: %v", err)
	}
	c.Release()
	if got, err := b.Latest(ctx, "www"); err != nil || got == nil || string(got.Bundle.Key) != secretKey {
		t.Fatalf("read over TLS with auth: %+v, %v", got, err)
	}

	writeFile(t, pwFile, "wrong\n", 0o600)
	if err := firstError(ctx, fc); err == nil || !strings.Contains(err.Error(), "authentication failed") {
		t.Errorf("with a wrong password: %v", err)
	}
	writeFile(t, pwFile, "s3cret\n", 0o600)
	fc.Etcd.CertFile, fc.Etcd.KeyFile = "", ""
	fc.Etcd.DialTimeout = time.Second
	if err := firstError(ctx, fc); err == nil {
		t.Error("without a client certificate: read succeeded")
	}
}

// firstError opens a backend as fc says and reads through it: the first
// error on the way.
func firstError(ctx context.Context, fc *config.Fleet) error {
	b, err := fleet.OpenConfig(fc, nil)
	if err != nil {
		return err
	}
	defer b.Close()
	_, err = b.Latest(ctx, "www")
	return err
}

func readFile(t *testing.T, path string) string {
	t.Helper()
	b, err := readAll(path)
	if err != nil {
		t.Fatal(err)
	}
	return b
}
