// Command gencerts prepares a benchmark fixture: a renewer config with N
// certificates and a storage in which each is already installed and far
// from due, so a pass or an idle daemon has nothing to renew. Certificates
// come from a throwaway CA made here; no ACME server is involved.
package main

import (
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/x509"
	"crypto/x509/pkix"
	"encoding/pem"
	"flag"
	"fmt"
	"math/big"
	"os"
	"path/filepath"
	"strings"
	"time"

	"github.com/renewer/renewer/internal/store"
)

func main() {
	n := flag.Int("n", 1000, "number of certificates")
	dir := flag.String("dir", "", "output directory (renewer.hcl and state/ are written there)")
	flag.Parse()
	if *dir == "" {
		fmt.Fprintln(os.Stderr, "gencerts: -dir is required")
		os.Exit(2)
	}
	if err := run(*n, *dir); err != nil {
		fmt.Fprintf(os.Stderr, "gencerts: %v\n", err)
		os.Exit(1)
	}
}

func run(n int, dir string) error {
	st, err := store.Open(filepath.Join(dir, "state"), 3)
	if err != nil {
		return err
	}
	caKey, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		return err
	}
	now := time.Now()
	caTmpl := &x509.Certificate{
		SerialNumber: big.NewInt(1), Subject: pkix.Name{CommonName: "bench CA"},
		NotBefore: now.Add(-time.Hour), NotAfter: now.Add(365 * 24 * time.Hour),
		IsCA: true, BasicConstraintsValid: true, KeyUsage: x509.KeyUsageCertSign,
	}
	caDER, err := x509.CreateCertificate(rand.Reader, caTmpl, caTmpl, &caKey.PublicKey, caKey)
	if err != nil {
		return err
	}
	caCert, _ := x509.ParseCertificate(caDER)
	chain := pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: caDER})

	var cfg strings.Builder
	fmt.Fprintf(&cfg, "storage { path = %q }\nacme {\n  directory    = \"https://127.0.0.1:1/dir\"\n  accept_terms = true\n}\n", filepath.Join(dir, "state"))
	for i := range n {
		name := fmt.Sprintf("c%05d", i)
		domain := name + ".example.test"
		key, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
		if err != nil {
			return err
		}
		tmpl := &x509.Certificate{
			SerialNumber: big.NewInt(int64(1000 + i)), Subject: pkix.Name{CommonName: domain},
			DNSNames: []string{domain}, NotBefore: now.Add(-time.Hour), NotAfter: now.Add(90 * 24 * time.Hour),
			KeyUsage: x509.KeyUsageDigitalSignature, ExtKeyUsage: []x509.ExtKeyUsage{x509.ExtKeyUsageServerAuth},
		}
		der, err := x509.CreateCertificate(rand.Reader, tmpl, caCert, &key.PublicKey, caKey)
		if err != nil {
			return err
		}
		kder, _ := x509.MarshalPKCS8PrivateKey(key)
		b := store.Bundle{
			Cert:  pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: der}),
			Chain: chain,
			Key:   pem.EncodeToMemory(&pem.Block{Type: "PRIVATE KEY", Bytes: kder}),
		}
		if _, err := st.Install(name, []string{domain}, b, now); err != nil {
			return err
		}
		// The hooks of an installed certificate count as applied.
		if err := st.SaveState(name, store.State{InstalledSerial: fmt.Sprintf("%x", 1000+i), AppliedSerial: fmt.Sprintf("%x", 1000+i)}); err != nil {
			return err
		}
		fmt.Fprintf(&cfg, "certificate %q {\n  domains = [%q]\n  challenge \"http\" { listen = \"127.0.0.1:80\" }\n}\n", name, domain)
	}
	return os.WriteFile(filepath.Join(dir, "renewer.hcl"), []byte(cfg.String()), 0o600)
}
