package testca

import (
	"context"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/tls"
	"crypto/x509"
	"crypto/x509/pkix"
	"encoding/json"
	"encoding/pem"
	"fmt"
	"io"
	"math/big"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"time"
)

// Kinds of CA this package starts.
const (
	KindPebble = "pebble"
	KindStepCA = "step-ca"
)

// StepCAProvisioner is the name of the ACME provisioner of a started step-ca.
const StepCAProvisioner = "acme"

// StartStepCA starts Smallstep's step-ca (github.com/smallstep/certificates,
// a tool dependency in go.mod, built with CGO_ENABLED=0 as upstream builds
// it) with a root and an intermediate generated here, one ACME provisioner
// offering http-01, dns-01 and tls-alpn-01, a bbolt database, and a CRL that
// is regenerated on every revocation. Certificates last o.Validity (24 h
// when zero) and at most 48 h (or Validity, when longer).
//
// Like Pebble it resolves names through challtestsrv (every A query is
// 127.0.0.1; TXT records through ChallAPI), or through o.DNSServer when
// set. step-ca validates HTTP-01 on port 80 and TLS-ALPN-01 on port 443 of
// the name; its --insecure --acme-http-port/--acme-tls-port flags move those
// to HTTPPort and TLSPort here, so tests need neither root nor fixed ports.
//
// Options.Profiles, Env, EAB and StockRetryAfter are Pebble's and ignored;
// CAAIdentities are step-ca's only.
func StartStepCA(ctx context.Context, o Options) (*CA, error) {
	stepBin, err := toolPathEnv(ctx, "step-ca", "CGO_ENABLED=0")
	if err != nil {
		return nil, err
	}
	return launch(ctx, o, func(logw io.Writer, challBin string) (*CA, error) {
		return startStep(ctx, o, stepBin, challBin, logw)
	})
}

func startStep(ctx context.Context, o Options, stepBin, challBin string, logw io.Writer) (*CA, error) {
	ports, err := freePorts(5)
	if err != nil {
		return nil, err
	}
	apiPort, httpPort, tlsPort, dnsPort, challPort := ports[0], ports[1], ports[2], ports[3], ports[4]
	rootFile := filepath.Join(o.Dir, "root.crt")
	crtFile, keyFile := filepath.Join(o.Dir, "intermediate.crt"), filepath.Join(o.Dir, "intermediate.key")
	if _, err := os.Stat(rootFile); err != nil {
		if err := writeStepPKI(rootFile, crtFile, keyFile); err != nil {
			return nil, err
		}
	}
	validity := o.Validity
	if validity == 0 {
		validity = 24 * time.Hour
	}
	maxDur := max(48*time.Hour, validity)
	addr := "127.0.0.1:" + strconv.Itoa(apiPort)
	cfg := map[string]any{
		"root":     rootFile,
		"crt":      crtFile,
		"key":      keyFile,
		"address":  addr,
		"dnsNames": []string{"127.0.0.1", "localhost"},
		"logger":   map[string]any{"format": "text"},
		"db":       map[string]any{"type": "bbolt", "dataSource": filepath.Join(o.Dir, "db")},
		"crl":      map[string]any{"enabled": true, "generateOnRevoke": true, "cacheDuration": "24h"},
		"authority": map[string]any{
			"provisioners": []any{map[string]any{
				"type":          "ACME",
				"name":          StepCAProvisioner,
				"challenges":    []string{"http-01", "dns-01", "tls-alpn-01"},
				"caaIdentities": o.CAAIdentities,
				"claims": map[string]any{
					"minTLSCertDuration":     "5m",
					"defaultTLSCertDuration": validity.String(),
					"maxTLSCertDuration":     maxDur.String(),
				},
			}},
		},
		"tls": map[string]any{"minVersion": 1.2, "maxVersion": 1.3, "renegotiation": false},
	}
	cfgFile := filepath.Join(o.Dir, "ca.json")
	raw, _ := json.MarshalIndent(cfg, "", "  ")
	if err := os.WriteFile(cfgFile, raw, 0o600); err != nil {
		return nil, fmt.Errorf("testca: %w", err)
	}
	ca := &CA{
		Kind:      KindStepCA,
		Directory: fmt.Sprintf("https://%s/acme/%s/directory", addr, StepCAProvisioner),
		API:       "https://" + addr,
		CABundle:  rootFile,
		HTTPPort:  httpPort,
		TLSPort:   tlsPort,
		DNSAddr:   "127.0.0.1:" + strconv.Itoa(dnsPort),
		ChallAPI:  fmt.Sprintf("http://127.0.0.1:%d", challPort),
		dataDir:   filepath.Join(o.Dir, "db"),
		logw:      logw,
	}
	pool := x509.NewCertPool()
	pemBytes, _ := os.ReadFile(rootFile)
	pool.AppendCertsFromPEM(pemBytes)
	ca.client = &http.Client{Timeout: 10 * time.Second, Transport: &http.Transport{TLSClientConfig: &tls.Config{RootCAs: pool}}}

	chall := exec.Command(challBin,
		"-dnsserver", ca.DNSAddr, "-management", "127.0.0.1:"+strconv.Itoa(challPort),
		"-http01", "", "-https01", "", "-tlsalpn01", "", "-doh", "",
		"-defaultIPv4", "127.0.0.1", "-defaultIPv6", "")
	if err := ca.spawn(chall, logw, nil); err != nil {
		return nil, err
	}
	resolver := ca.DNSAddr
	if o.DNSServer != "" {
		resolver = o.DNSServer
	}
	step := exec.Command(stepBin, cfgFile, "--resolver", resolver,
		"--insecure", "--acme-http-port", strconv.Itoa(httpPort), "--acme-tls-port", strconv.Itoa(tlsPort))
	step.Dir = o.Dir
	ca.restart = func() (*exec.Cmd, []string) {
		c := exec.Command(step.Path, step.Args[1:]...)
		c.Dir = step.Dir
		return c, nil
	}
	if err := ca.spawn(step, logw, nil); err != nil {
		ca.Stop()
		return nil, err
	}
	ca.pebble = step
	if err := ca.waitReady(ctx, 60*time.Second); err != nil {
		ca.Stop()
		return nil, err
	}
	return ca, nil
}

// CRL returns step-ca's current certificate revocation list, verified
// against its intermediate.
func (c *CA) CRL() (*x509.RevocationList, error) {
	if c.Kind != KindStepCA {
		return nil, fmt.Errorf("testca: %s serves no CRL", c.Kind)
	}
	der, err := c.get(c.API + "/crl")
	if err != nil {
		return nil, err
	}
	crl, err := x509.ParseRevocationList(der)
	if err != nil {
		return nil, fmt.Errorf("testca: parse CRL: %w", err)
	}
	ipem, err := os.ReadFile(filepath.Join(filepath.Dir(c.CABundle), "intermediate.crt"))
	if err != nil {
		return nil, err
	}
	block, _ := pem.Decode(ipem)
	issuer, err := x509.ParseCertificate(block.Bytes)
	if err != nil {
		return nil, err
	}
	if err := crl.CheckSignatureFrom(issuer); err != nil {
		return nil, fmt.Errorf("testca: CRL signature: %w", err)
	}
	return crl, nil
}

// writeStepPKI writes a root, an intermediate it signs, and the
// intermediate's unencrypted key, as step-ca's ca.json names them.
func writeStepPKI(rootFile, crtFile, keyFile string) error {
	now := time.Now()
	rootKey, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		return err
	}
	rootTmpl := &x509.Certificate{
		SerialNumber:          big.NewInt(now.UnixNano()),
		Subject:               pkix.Name{CommonName: "renewer test step-ca root"},
		NotBefore:             now.Add(-time.Hour),
		NotAfter:              now.Add(30 * 24 * time.Hour),
		KeyUsage:              x509.KeyUsageCertSign | x509.KeyUsageCRLSign,
		BasicConstraintsValid: true,
		IsCA:                  true,
		MaxPathLen:            1,
	}
	rootDER, err := x509.CreateCertificate(rand.Reader, rootTmpl, rootTmpl, &rootKey.PublicKey, rootKey)
	if err != nil {
		return fmt.Errorf("testca: root: %w", err)
	}
	root, _ := x509.ParseCertificate(rootDER)
	intKey, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		return err
	}
	intTmpl := &x509.Certificate{
		SerialNumber:          big.NewInt(now.UnixNano() + 1),
		Subject:               pkix.Name{CommonName: "renewer test step-ca intermediate"},
		NotBefore:             now.Add(-time.Hour),
		NotAfter:              now.Add(29 * 24 * time.Hour),
		KeyUsage:              x509.KeyUsageCertSign | x509.KeyUsageCRLSign | x509.KeyUsageDigitalSignature,
		BasicConstraintsValid: true,
		IsCA:                  true,
		MaxPathLenZero:        true,
	}
	intDER, err := x509.CreateCertificate(rand.Reader, intTmpl, root, &intKey.PublicKey, rootKey)
	if err != nil {
		return fmt.Errorf("testca: intermediate: %w", err)
	}
	kder, err := x509.MarshalECPrivateKey(intKey)
	if err != nil {
		return err
	}
	for _, f := range []struct {
		path string
		data []byte
		mode os.FileMode
	}{
		{rootFile, pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: rootDER}), 0o644},
		{crtFile, pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: intDER}), 0o644},
		{keyFile, pem.EncodeToMemory(&pem.Block{Type: "EC PRIVATE KEY", Bytes: kder}), 0o600},
	} {
		if err := os.WriteFile(f.path, f.data, f.mode); err != nil {
			return fmt.Errorf("testca: %w", err)
		}
	}
	return nil
}
