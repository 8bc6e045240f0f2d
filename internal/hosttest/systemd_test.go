package hosttest

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
	"math/big"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"strconv"
	"strings"
	"testing"
	"time"
)

// maxExposure is the highest `systemd-analyze security` score the shipped
// service units may have ("OK" is up to 2.0 on systemd's scale).
const maxExposure = 2.0

// TestSystemdHost installs the Debian package in a container booted from
// this machine's system and checks, under the real systemd, beside Debian's
// nginx and HAProxy, what a user of the package meets. It first runs
// today's (pre-package) unit and nginx hook and shows the failures the
// package removes.
func TestSystemdHost(t *testing.T) {
	if os.Getuid() != 0 {
		msg := "the systemd host test needs root (mounts, systemd-nspawn)"
		if os.Getenv("CI") != "" {
			t.Fatalf("%s; CI is set, so this test must not be skipped", msg)
		}
		t.Skipf("SKIPPED: %s (CI is unset)", msg)
	}
	need(t, "nginx", "nginx")
	need(t, "haproxy", "haproxy")
	need(t, "systemd-nspawn", "systemd-container")
	lintian := need(t, "lintian", "lintian")
	need(t, "nsenter", "util-linux")

	ctx, cancel := context.WithTimeout(context.Background(), 12*time.Minute)
	t.Cleanup(cancel)
	work := t.TempDir()

	// The package, from the code of this tree, and lintian's verdict on it,
	// in the background while the container boots.
	type built struct {
		bin, deb string
		err      error
	}
	pkg, lint := make(chan built, 1), make(chan []byte, 1)
	go func() {
		defer close(lint)
		bin, deb, err := buildPackage(ctx, work)
		pkg <- built{bin, deb, err}
		if err == nil {
			// Without binaries/spelling: its only tag is at info level,
			// which lintian does not show without -I, and reading the 67 MB
			// binary's strings for it took 4 of lintian's 10 s of CPU.
			out, _ := exec.CommandContext(ctx, lintian, "--tag-display-limit", "0", "--dont-check-part", "binaries/spelling", deb).CombinedOutput()
			lint <- out
		}
	}()
	pebble, chall := tool(ctx, t, "pebble"), tool(ctx, t, "pebble-challtestsrv")

	c := boot(ctx, t)
	b := <-pkg
	if b.err != nil {
		t.Fatal(b.err)
	}
	startPebble(t, c, pebble, chall)

	t.Run("today's units", func(t *testing.T) { oldUnits(t, c, b.bin) })
	if !t.Failed() {
		packaged(t, c, b.deb)
	}
	t.Run("lintian", func(t *testing.T) {
		out := <-lint
		t.Logf("lintian %s:\n%s", filepath.Base(b.deb), out)
		for _, l := range strings.Split(string(out), "\n") {
			if strings.HasPrefix(l, "E: ") {
				t.Errorf("lintian error: %s", l)
			}
		}
	})
}

// buildPackage builds the binary as make build does and the Debian package
// from it, in dir.
func buildPackage(ctx context.Context, dir string) (bin, deb string, err error) {
	bin = filepath.Join(dir, "renewer")
	build := exec.CommandContext(ctx, "go", "build", "-trimpath", "-ldflags", "-s -w", "-o", bin, "../../cmd/renewer")
	build.Env = append(os.Environ(), "CGO_ENABLED=0")
	if out, err := build.CombinedOutput(); err != nil {
		return "", "", fmt.Errorf("go build: %v\n%s", err, out)
	}
	// As make deb does, in a process of its own: nfpm's compression inside
	// this race-instrumented test binary took a minute of CPU.
	mkdeb := exec.CommandContext(ctx, "go", "run", "../debpkg/mkdeb", "-binary", bin, "-version", "0.0.0", "-examples", "../../examples", "-out", dir)
	mkdeb.Stderr = os.Stderr
	out, err := mkdeb.Output()
	if err != nil {
		return "", "", fmt.Errorf("mkdeb: %v", err)
	}
	return bin, strings.TrimSpace(string(out)), nil
}

// tool is the path of a `go tool` binary (built on the host, visible in the
// container through the overlay).
func tool(ctx context.Context, t *testing.T, name string) string {
	t.Helper()
	out, err := exec.CommandContext(ctx, "go", "tool", "-n", name).Output()
	if err != nil {
		t.Fatalf("go tool -n %s: %v", name, err)
	}
	p := strings.TrimSpace(string(out))
	if _, err := os.Stat(p); err != nil {
		// -n prints where it would be; build it.
		if out, err := exec.CommandContext(ctx, "go", "build", "-o", p, toolPkg[name]).CombinedOutput(); err != nil {
			t.Fatalf("go build %s: %v\n%s", name, err, out)
		}
	}
	return p
}

var toolPkg = map[string]string{
	"pebble":              "github.com/letsencrypt/pebble/v2/cmd/pebble",
	"pebble-challtestsrv": "github.com/letsencrypt/pebble/v2/cmd/pebble-challtestsrv",
}

// startPebble runs Pebble and challtestsrv inside the container as
// transient services: ACME on 127.0.0.1:14000, HTTP-01 validation on port
// 80 (nginx), every name resolving to 127.0.0.1.
func startPebble(t *testing.T, c *container, pebble, chall string) {
	t.Helper()
	cert, key := selfSigned(t, "127.0.0.1")
	c.write("/root/pebble/tls.pem", cert, 0o644)
	c.write("/root/pebble/tls.key", key, 0o600)
	cfg := map[string]any{"pebble": map[string]any{
		"listenAddress":           "127.0.0.1:14000",
		"managementListenAddress": "127.0.0.1:15000",
		"certificate":             "/root/pebble/tls.pem",
		"privateKey":              "/root/pebble/tls.key",
		"httpPort":                80,
		"tlsPort":                 443,
		"ocspResponderURL":        "",
		"retryAfter":              map[string]int{"authz": 1, "order": 1},
		"keyAlgorithm":            "ecdsa",
		"profiles":                map[string]any{"default": map[string]any{"description": "default", "validityPeriod": 90 * 24 * 3600}},
	}}
	raw, _ := json.MarshalIndent(cfg, "", "  ")
	c.write("/root/pebble/config.json", string(raw), 0o644)
	c.must("systemd-run", "--unit=challtestsrv", chall, "-dnsserver", "127.0.0.1:8053", "-management", "127.0.0.1:8055",
		"-http01", "", "-https01", "", "-tlsalpn01", "", "-doh", "", "-defaultIPv4", "127.0.0.1", "-defaultIPv6", "")
	c.must("systemd-run", "--unit=pebble", "-p", "WorkingDirectory=/root/pebble",
		"-E", "PEBBLE_VA_NOSLEEP=1", "-E", "PEBBLE_AUTHZREUSE=0",
		pebble, "-config", "/root/pebble/config.json", "-dnsserver", "127.0.0.1:8053")
	// renewer trusts Pebble's API through ca_bundle.
	c.write("/etc/renewer-test/pebble-api.pem", cert, 0o644)
	waitFor(t, 60*time.Second, "pebble answers", func() (bool, string) {
		var err error
		cerr := c.inNet(func() error {
			var conn *tls.Conn
			conn, err = tls.Dial("tcp", "127.0.0.1:14000", &tls.Config{InsecureSkipVerify: true})
			if err == nil {
				conn.Close()
			}
			return nil
		})
		if cerr != nil {
			return false, cerr.Error()
		}
		return err == nil, fmt.Sprint(err)
	})
}

// selfSigned is a certificate and key for ip (Pebble's API).
func selfSigned(t *testing.T, ip string) (string, string) {
	t.Helper()
	k, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	tmpl := &x509.Certificate{
		SerialNumber: big.NewInt(1), Subject: pkix.Name{CommonName: "pebble api"},
		NotBefore: time.Now().Add(-time.Hour), NotAfter: time.Now().Add(24 * time.Hour),
		IPAddresses: []net.IP{net.ParseIP(ip)}, DNSNames: []string{"localhost"},
		KeyUsage: x509.KeyUsageDigitalSignature, ExtKeyUsage: []x509.ExtKeyUsage{x509.ExtKeyUsageServerAuth},
	}
	der, err := x509.CreateCertificate(rand.Reader, tmpl, tmpl, &k.PublicKey, k)
	if err != nil {
		t.Fatal(err)
	}
	kd, _ := x509.MarshalECPrivateKey(k)
	return string(pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: der})),
		string(pem.EncodeToMemory(&pem.Block{Type: "EC PRIVATE KEY", Bytes: kd}))
}

// served is the serial (hex) of the certificate served at addr for SNI name,
// as seen from inside the container.
func served(c *container, addr, name string) (string, error) {
	var serial string
	var derr error
	err := c.inNet(func() error {
		d := &net.Dialer{Timeout: 5 * time.Second}
		conn, err := tls.DialWithDialer(d, "tcp", addr, &tls.Config{ServerName: name, InsecureSkipVerify: true})
		if err != nil {
			derr = err
			return nil
		}
		defer conn.Close()
		serial = fmt.Sprintf("%x", conn.ConnectionState().PeerCertificates[0].SerialNumber)
		return nil
	})
	if err != nil {
		return "", err
	}
	return serial, derr
}

// fileIssuer is the issuer of the first certificate in a PEM file inside
// the container.
func fileIssuer(c *container, p string) string {
	b := []byte(c.read(p))
	if len(b) == 0 {
		return ""
	}
	blk, _ := pem.Decode(b)
	if blk == nil {
		return ""
	}
	crt, err := x509.ParseCertificate(blk.Bytes)
	if err != nil {
		return ""
	}
	return crt.Issuer.String()
}

// fileSerial is the serial (hex) of the first certificate in a PEM file
// inside the container.
func fileSerial(c *container, p string) string {
	b := []byte(c.read(p))
	if len(b) == 0 {
		return ""
	}
	for {
		var blk *pem.Block
		blk, b = pem.Decode(b)
		if blk == nil {
			return ""
		}
		if blk.Type == "CERTIFICATE" {
			crt, err := x509.ParseCertificate(blk.Bytes)
			if err != nil {
				return ""
			}
			return fmt.Sprintf("%x", crt.SerialNumber)
		}
	}
}

// waitServed waits until addr serves, for name, the certificate in file.
func waitServed(t *testing.T, c *container, addr, name, file string) string {
	t.Helper()
	var want string
	waitFor(t, 60*time.Second, fmt.Sprintf("%s serves %s for %s", addr, file, name), func() (bool, string) {
		want = fileSerial(c, file)
		got, err := served(c, addr, name)
		return want != "" && got == want, fmt.Sprintf("served %q (%v), file %q", got, err, want)
	})
	return want
}

var exposureRE = regexp.MustCompile(`Overall exposure level for \S+: ([0-9.]+)`)

// exposure is `systemd-analyze security UNIT`'s overall score.
func exposure(t *testing.T, c *container, unit string) float64 {
	t.Helper()
	out, _ := c.exec("systemd-analyze", "security", "--no-pager", unit)
	m := exposureRE.FindStringSubmatch(out)
	if m == nil {
		t.Fatalf("systemd-analyze security %s: no score in\n%s", unit, out)
	}
	f, _ := strconv.ParseFloat(m[1], 64)
	return f
}
