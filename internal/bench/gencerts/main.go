// Command gencerts prepares a benchmark fixture: a renewer config with N
// certificates and a storage in which each is already installed and far
// from due, so a pass or an idle daemon has nothing to renew. Certificates
// come from a throwaway CA made here; no ACME server is involved.
//
// With -ari-fresh each certificate also has a fresh answer from the CA's
// renewal information (a window far ahead, not to be asked again for hours),
// as after an earlier pass: a pass then has no reason to contact the CA.
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
	"sync"
	"time"

	"github.com/renewer/renewer/internal/store"
)

func main() {
	n := flag.Int("n", 1000, "number of certificates")
	dir := flag.String("dir", "", "output directory (renewer.hcl and state/ are written there)")
	ariFresh := flag.Bool("ari-fresh", false, "store a fresh ARI answer for each certificate")
	jobs := flag.Int("j", 8, "installs at once (each one waits for fsync)")
	flag.Parse()
	if *dir == "" {
		fmt.Fprintln(os.Stderr, "gencerts: -dir is required")
		os.Exit(2)
	}
	if err := run(*n, *dir, *ariFresh, max(1, *jobs)); err != nil {
		fmt.Fprintf(os.Stderr, "gencerts: %v\n", err)
		os.Exit(1)
	}
}

func run(n int, dir string, ariFresh bool, jobs int) error {
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
		fmt.Fprintf(&cfg, "certificate %q {\n  domains = [%q]\n  challenge \"http\" { listen = \"127.0.0.1:80\" }\n}\n", name, name+".example.test")
	}
	// Installs fsync every file and directory: run several at once.
	errs := make([]error, n)
	sem := make(chan struct{}, jobs)
	var wg sync.WaitGroup
	for i := range n {
		sem <- struct{}{}
		wg.Go(func() {
			defer func() { <-sem }()
			errs[i] = install(st, i, now, caCert, caKey, chain, ariFresh)
		})
	}
	wg.Wait()
	for _, err := range errs {
		if err != nil {
			return err
		}
	}
	return os.WriteFile(filepath.Join(dir, "renewer.hcl"), []byte(cfg.String()), 0o600)
}

// install makes certificate number i and installs it as c<i>, with state
// saying its hooks have run.
func install(st *store.Store, i int, now time.Time, caCert *x509.Certificate, caKey *ecdsa.PrivateKey, chain []byte, ariFresh bool) error {
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
	serial := fmt.Sprintf("%x", 1000+i)
	state := store.State{InstalledSerial: serial, AppliedSerial: serial}
	if ariFresh {
		start := now.Add(60 * 24 * time.Hour)
		state.ARI = &store.ARIState{
			Serial: serial, Start: start, End: start.Add(48 * time.Hour), Chosen: start.Add(time.Duration(i%48) * time.Hour),
			FetchedAt: now, NextFetch: now.Add(6 * time.Hour),
		}
	}
	return st.SaveState(name, state)
}
