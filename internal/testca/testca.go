// Package testca starts a real ACME test CA for tests and the demo: Pebble and
// pebble-challtestsrv, both pinned in go.mod as tool dependencies, on free
// loopback ports. Pebble's DNS lookups go to challtestsrv, which answers every
// A query with 127.0.0.1, so Pebble validates HTTP-01 challenges against
// 127.0.0.1:HTTPPort and TLS-ALPN-01 against 127.0.0.1:TLSPort.
//
// Nothing in the renewer binary imports this package.
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
	"errors"
	"fmt"
	"io"
	"math/big"
	mrand "math/rand/v2"
	"net"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"time"
)

// Options shape the CA. The zero value (with Dir set) is a Pebble with one
// 90-day profile, no validation sleeps, no authorization reuse, and Pebble's
// default 5% of nonces rejected as bad so badNonce retries are exercised.
type Options struct {
	Dir      string        // where configs, keys and logs go (required)
	Validity time.Duration // of the "default" profile; 0 means 90 days
	// Profiles adds more named profiles with their validity periods.
	Profiles map[string]time.Duration
	Env      []string  // extra environment for Pebble, e.g. PEBBLE_WFE_NONCEREJECT=50
	Log      io.Writer // output of both servers; nil means Dir/ca.log
	// DNSServer, when set, is where Pebble resolves names (and looks up
	// DNS-01 TXT records) instead of challtestsrv, e.g. a real Knot.
	DNSServer string
	// EAB, when set, makes external account binding required, with these
	// key identifiers and base64url HMAC keys.
	EAB map[string]string
	// StockRetryAfter keeps Pebble's own Retry-After values (authorizations
	// 3 s, orders 5 s, as in its shipped config) instead of the 1 s that
	// keeps tests quick; benchmarks use it to see what a client does with them.
	StockRetryAfter bool
	// CAAIdentities (step-ca only) are listed in the directory's
	// meta.caaIdentities.
	CAAIdentities []string
}

// CA is a running Pebble with its challenge test server.
type CA struct {
	Kind       string // KindPebble or KindStepCA
	Directory  string // ACME directory URL
	API        string // step-ca's base URL (its /crl, /health); empty for Pebble
	Management string // Pebble's management API base URL
	CABundle   string // PEM file to trust for the Directory's TLS
	HTTPPort   int    // port Pebble connects to for HTTP-01 validation
	TLSPort    int    // port Pebble connects to for TLS-ALPN-01 validation
	DNSAddr    string // challtestsrv's DNS server (host:port)
	ChallAPI   string // challtestsrv's management API base URL

	client  *http.Client
	pebble  *exec.Cmd                    // the CA's own process (Pebble or step-ca)
	restart func() (*exec.Cmd, []string) // the CA process again, and its extra environment
	dataDir string                       // step-ca's database, wiped by Forget
	logw    io.Writer
	procs   []*exec.Cmd
	waits   []chan error
	once    sync.Once
}

// Start builds (if needed) and starts both servers and waits until Pebble
// answers its directory. The caller must call Stop.
func Start(ctx context.Context, o Options) (*CA, error) {
	pebbleBin, err := toolPath(ctx, "pebble")
	if err != nil {
		return nil, err
	}
	return launch(ctx, o, func(logw io.Writer, challBin string) (*CA, error) {
		return start(ctx, o, pebbleBin, challBin, logw)
	})
}

// launch prepares o.Dir and the log, then calls try (which starts a CA
// with challtestsrv on fresh ports) up to three times: ports are picked
// free and then handed over, and another process may grab one in between.
func launch(ctx context.Context, o Options, try func(logw io.Writer, challBin string) (*CA, error)) (*CA, error) {
	if o.Dir == "" {
		return nil, errors.New("testca: Options.Dir is required")
	}
	if err := os.MkdirAll(o.Dir, 0o700); err != nil {
		return nil, fmt.Errorf("testca: %w", err)
	}
	challBin, err := toolPath(ctx, "pebble-challtestsrv")
	if err != nil {
		return nil, err
	}
	logw := o.Log
	if logw == nil {
		f, err := os.OpenFile(filepath.Join(o.Dir, "ca.log"), os.O_CREATE|os.O_WRONLY|os.O_APPEND, 0o600)
		if err != nil {
			return nil, fmt.Errorf("testca: %w", err)
		}
		logw = f
	}
	var lastErr error
	for range 3 {
		ca, err := try(logw, challBin)
		if err == nil {
			return ca, nil
		}
		lastErr = err
		if ctx.Err() != nil {
			break
		}
	}
	return nil, lastErr
}

func start(ctx context.Context, o Options, pebbleBin, challBin string, logw io.Writer) (*CA, error) {
	ports, err := freePorts(6)
	if err != nil {
		return nil, err
	}
	acmePort, mgmtPort, httpPort, tlsPort, dnsPort, challPort := ports[0], ports[1], ports[2], ports[3], ports[4], ports[5]

	certFile, keyFile := filepath.Join(o.Dir, "ca-tls.pem"), filepath.Join(o.Dir, "ca-tls.key")
	if err := writeTLSCert(certFile, keyFile); err != nil {
		return nil, err
	}
	validity := o.Validity
	if validity == 0 {
		validity = 90 * 24 * time.Hour
	}
	profiles := map[string]any{"default": map[string]any{"description": "default", "validityPeriod": int(validity.Seconds())}}
	for name, d := range o.Profiles {
		profiles[name] = map[string]any{"description": name, "validityPeriod": int(d.Seconds())}
	}
	retryAfter := map[string]int{"authz": 1, "order": 1}
	if o.StockRetryAfter {
		retryAfter = map[string]int{"authz": 3, "order": 5}
	}
	cfg := map[string]any{"pebble": map[string]any{
		"listenAddress":                  "127.0.0.1:" + strconv.Itoa(acmePort),
		"managementListenAddress":        "127.0.0.1:" + strconv.Itoa(mgmtPort),
		"certificate":                    certFile,
		"privateKey":                     keyFile,
		"httpPort":                       httpPort,
		"tlsPort":                        tlsPort,
		"ocspResponderURL":               "",
		"externalAccountBindingRequired": len(o.EAB) > 0,
		"externalAccountMACKeys":         o.EAB,
		"retryAfter":                     retryAfter,
		"keyAlgorithm":                   "ecdsa",
		"profiles":                       profiles,
	}}
	cfgFile := filepath.Join(o.Dir, "pebble-config.json")
	raw, _ := json.MarshalIndent(cfg, "", "  ")
	if err := os.WriteFile(cfgFile, raw, 0o600); err != nil {
		return nil, fmt.Errorf("testca: %w", err)
	}

	ca := &CA{
		Kind:       KindPebble,
		Directory:  fmt.Sprintf("https://127.0.0.1:%d/dir", acmePort),
		Management: fmt.Sprintf("https://127.0.0.1:%d", mgmtPort),
		CABundle:   certFile,
		HTTPPort:   httpPort,
		TLSPort:    tlsPort,
		DNSAddr:    "127.0.0.1:" + strconv.Itoa(dnsPort),
		ChallAPI:   fmt.Sprintf("http://127.0.0.1:%d", challPort),
	}
	pool := x509.NewCertPool()
	pemBytes, _ := os.ReadFile(certFile)
	pool.AppendCertsFromPEM(pemBytes)
	ca.client = &http.Client{Timeout: 10 * time.Second, Transport: &http.Transport{TLSClientConfig: &tls.Config{RootCAs: pool}}}

	chall := exec.Command(challBin,
		"-dnsserver", ca.DNSAddr, "-management", "127.0.0.1:"+strconv.Itoa(challPort),
		"-http01", "", "-https01", "", "-tlsalpn01", "", "-doh", "",
		"-defaultIPv4", "127.0.0.1", "-defaultIPv6", "")
	if err := ca.spawn(chall, logw, nil); err != nil {
		return nil, err
	}
	env := append([]string{"PEBBLE_VA_NOSLEEP=1", "PEBBLE_AUTHZREUSE=0"}, o.Env...)
	dnsServer := ca.DNSAddr
	if o.DNSServer != "" {
		dnsServer = o.DNSServer
	}
	pebble := exec.Command(pebbleBin, "-config", cfgFile, "-dnsserver", dnsServer)
	pebble.Dir = o.Dir
	ca.logw = logw
	ca.restart = func() (*exec.Cmd, []string) {
		c := exec.Command(pebbleBin, "-config", cfgFile, "-dnsserver", dnsServer)
		c.Dir = o.Dir
		return c, env
	}
	if err := ca.spawn(pebble, logw, env); err != nil {
		ca.Stop()
		return nil, err
	}
	ca.pebble = pebble
	if err := ca.waitReady(ctx, 60*time.Second); err != nil {
		ca.Stop()
		return nil, err
	}
	return ca, nil
}

func (c *CA) spawn(cmd *exec.Cmd, logw io.Writer, env []string) error {
	cmd.Stdout, cmd.Stderr = logw, logw
	cmd.Env = append(os.Environ(), env...)
	if err := cmd.Start(); err != nil {
		return fmt.Errorf("testca: start %s: %w", filepath.Base(cmd.Path), err)
	}
	done := make(chan error, 1)
	go func() { done <- cmd.Wait() }()
	c.procs = append(c.procs, cmd)
	c.waits = append(c.waits, done)
	return nil
}

func (c *CA) waitReady(ctx context.Context, limit time.Duration) error {
	deadline := time.Now().Add(limit)
	for {
		for i, w := range c.waits {
			select {
			case err := <-w:
				return fmt.Errorf("testca: %s exited early: %v", filepath.Base(c.procs[i].Path), err)
			default:
			}
		}
		resp, err := c.client.Get(c.Directory)
		if err == nil {
			resp.Body.Close()
			if resp.StatusCode == http.StatusOK {
				// challtestsrv starts in parallel; its API answering means its DNS is up too.
				if r, err := http.Get(c.ChallAPI + "/"); err == nil {
					r.Body.Close()
					return nil
				}
			}
		}
		if time.Now().After(deadline) {
			return fmt.Errorf("testca: Pebble not ready at %s after %s: %v", c.Directory, limit, err)
		}
		select {
		case <-ctx.Done():
			return ctx.Err()
		case <-time.After(50 * time.Millisecond):
		}
	}
}

// Stop ends both servers and waits for them. It is safe to call twice.
func (c *CA) Stop() {
	c.once.Do(func() {
		for i, p := range c.procs {
			_ = p.Process.Signal(os.Interrupt)
			select {
			case <-c.waits[i]:
			case <-time.After(5 * time.Second):
				_ = p.Process.Kill()
				<-c.waits[i]
			}
		}
	})
}

// Forget makes the CA forget every account, order and certificate, as a
// CA that lost its database would, and waits until it answers again on the
// same directory URL: Pebble (all in memory) is restarted; step-ca is
// stopped, its database removed, and started again.
func (c *CA) Forget(ctx context.Context) error {
	i := -1
	for j, p := range c.procs {
		if p == c.pebble {
			i = j
		}
	}
	if i < 0 || c.restart == nil {
		return errors.New("testca: no CA process to restart")
	}
	_ = c.pebble.Process.Signal(os.Interrupt)
	select {
	case <-c.waits[i]:
	case <-time.After(5 * time.Second):
		_ = c.pebble.Process.Kill()
		<-c.waits[i]
	}
	if c.dataDir != "" {
		if err := os.RemoveAll(c.dataDir); err != nil {
			return fmt.Errorf("testca: %w", err)
		}
	}
	cmd, env := c.restart()
	if err := c.spawn(cmd, c.logw, env); err != nil {
		return err
	}
	last := len(c.procs) - 1
	c.procs[i], c.waits[i] = c.procs[last], c.waits[last]
	c.procs, c.waits = c.procs[:last], c.waits[:last]
	c.pebble = cmd
	return c.waitReady(ctx, 60*time.Second)
}

// Responsive reports whether Pebble answers, within d, a request that reads
// its store (the management API's certificate status of an unknown serial):
// unlike its directory, that stalls when the store's lock does.
func (c *CA) Responsive(d time.Duration) error {
	ctx, cancel := context.WithTimeout(context.Background(), d)
	defer cancel()
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, c.Management+"/cert-status-by-serial/1", nil)
	if err != nil {
		return err
	}
	resp, err := c.client.Do(req)
	if err != nil {
		return fmt.Errorf("testca: Pebble does not answer: %w", err)
	}
	resp.Body.Close()
	return nil
}

// Quit sends Pebble SIGQUIT: it exits, writing every goroutine's stack to
// the CA's log (for a Pebble that stopped answering).
func (c *CA) Quit() {
	if c.pebble != nil && c.pebble.Process != nil {
		_ = c.pebble.Process.Signal(syscall.SIGQUIT)
	}
}

// Roots returns the PEM of Pebble's current issuing root (what issued chains end at).
func (c *CA) Roots() ([]byte, error) {
	return c.get(c.Management + "/roots/0")
}

// Root returns the PEM of Pebble's root number i (0 is the default chain's;
// PEBBLE_ALTERNATE_ROOTS=N adds 1..N).
func (c *CA) Root(i int) ([]byte, error) {
	return c.get(c.Management + "/roots/" + strconv.Itoa(i))
}

// Post sends a JSON body to Pebble's management API (e.g. "/set-renewal-info/").
func (c *CA) Post(path string, body any) error {
	raw, err := json.Marshal(body)
	if err != nil {
		return err
	}
	resp, err := c.client.Post(c.Management+path, "application/json", strings.NewReader(string(raw)))
	if err != nil {
		return fmt.Errorf("testca: POST %s: %w", path, err)
	}
	defer resp.Body.Close()
	if resp.StatusCode/100 != 2 {
		msg, _ := io.ReadAll(resp.Body)
		return fmt.Errorf("testca: POST %s: %s: %s", path, resp.Status, msg)
	}
	return nil
}

// Get reads path from Pebble's management API (e.g.
// "/cert-status-by-serial/SERIAL") or step-ca's API.
func (c *CA) Get(path string) ([]byte, error) {
	base := c.Management
	if c.Kind == KindStepCA {
		base = c.API
	}
	return c.get(base + path)
}

func (c *CA) get(url string) ([]byte, error) {
	resp, err := c.client.Get(url)
	if err != nil {
		return nil, fmt.Errorf("testca: GET %s: %w", url, err)
	}
	defer resp.Body.Close()
	if resp.StatusCode != http.StatusOK {
		return nil, fmt.Errorf("testca: GET %s: %s", url, resp.Status)
	}
	return io.ReadAll(resp.Body)
}

// toolPath builds the named tool of this module (cached after the first
// time) and returns the executable's path, so the process we start and stop
// is the server itself and not a `go tool` wrapper.
func toolPath(ctx context.Context, name string) (string, error) {
	return toolPathEnv(ctx, name)
}

// toolPaths remembers, per test process, where each tool was found: every
// `go tool -n` loads the tool's whole package graph (a quarter of a second
// of CPU, more on a busy machine), and a package's tests start dozens of CAs.
var toolPaths sync.Map // name and env -> string

// toolPathEnv is toolPath with extra build environment (CGO_ENABLED=0).
func toolPathEnv(ctx context.Context, name string, env ...string) (string, error) {
	key := strings.Join(append([]string{name}, env...), "\x00")
	if p, ok := toolPaths.Load(key); ok {
		return p.(string), nil
	}
	cmd := exec.CommandContext(ctx, "go", "tool", "-n", name)
	if len(env) > 0 {
		cmd.Env = append(os.Environ(), env...)
	}
	if root, err := moduleRoot(); err == nil {
		cmd.Dir = root
	}
	out, err := cmd.Output()
	if err != nil {
		var ee *exec.ExitError
		if errors.As(err, &ee) {
			return "", fmt.Errorf("testca: go tool -n %s: %v: %s", name, err, ee.Stderr)
		}
		return "", fmt.Errorf("testca: go tool -n %s: %w", name, err)
	}
	p := strings.TrimSpace(string(out))
	toolPaths.Store(key, p)
	return p, nil
}

// moduleRoot is the directory of this module's go.mod, asked of go once.
var moduleRoot = sync.OnceValues(func() (string, error) {
	out, err := exec.Command("go", "env", "GOMOD").Output()
	if err != nil {
		return "", err
	}
	gomod := strings.TrimSpace(string(out))
	if gomod == "" || gomod == os.DevNull {
		return "", errors.New("not inside a module")
	}
	return filepath.Dir(gomod), nil
})

// freePorts returns n loopback ports, each free for TCP and UDP a moment
// ago. They are chosen below the kernel's ephemeral range, never from it:
// a port from that range, closed until its server starts, can meanwhile
// become the local end of any process's outgoing connection (seen: an
// http-01 server's bind failing with "address already in use" under make
// test's load). Outside the range only another test choosing the same port
// can collide, and choosing at random makes that unlikely.
func freePorts(n int) ([]int, error) {
	var closers []io.Closer
	defer func() {
		for _, c := range closers {
			c.Close()
		}
	}()
	lo, hi := portRange()
	ports := make([]int, 0, n)
	for tries := 0; len(ports) < n; tries++ {
		if tries == 1000 {
			return nil, fmt.Errorf("testca: no free port in %d-%d after 1000 tries", lo, hi)
		}
		port := lo + mrand.IntN(hi-lo+1)
		l, err := net.Listen("tcp", "127.0.0.1:"+strconv.Itoa(port))
		if err != nil {
			continue
		}
		u, err := net.ListenPacket("udp", "127.0.0.1:"+strconv.Itoa(port))
		if err != nil {
			l.Close()
			continue
		}
		closers = append(closers, l, u)
		ports = append(ports, port)
	}
	return ports, nil
}

// portRange is where freePorts chooses: from 10000 to just below the
// kernel's ephemeral ports (net.ipv4.ip_local_port_range, 32768-60999 by
// default), or above them when they start too low to leave room, or, when
// they leave room on neither side, 10000-65535 after all.
func portRange() (lo, hi int) {
	eph := [2]int{32768, 60999}
	if b, err := os.ReadFile("/proc/sys/net/ipv4/ip_local_port_range"); err == nil {
		if f := strings.Fields(string(b)); len(f) == 2 {
			a, err1 := strconv.Atoi(f[0])
			z, err2 := strconv.Atoi(f[1])
			if err1 == nil && err2 == nil && a <= z {
				eph = [2]int{a, z}
			}
		}
	}
	switch {
	case eph[0]-1 >= 10000+1000:
		return 10000, eph[0] - 1
	case eph[1]+1 <= 65535-1000:
		return eph[1] + 1, 65535
	}
	return 10000, 65535
}

// FreePort returns a loopback port that was free for TCP and UDP a moment
// ago, outside the kernel's ephemeral range (see freePorts).
func FreePort() (int, error) {
	p, err := freePorts(1)
	if err != nil {
		return 0, err
	}
	return p[0], nil
}

// writeTLSCert makes the self-signed certificate Pebble serves its API with.
func writeTLSCert(certFile, keyFile string) error {
	key, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		return err
	}
	tmpl := &x509.Certificate{
		SerialNumber:          big.NewInt(time.Now().UnixNano()),
		Subject:               pkix.Name{CommonName: "renewer test CA API"},
		NotBefore:             time.Now().Add(-time.Hour),
		NotAfter:              time.Now().Add(7 * 24 * time.Hour),
		DNSNames:              []string{"localhost"},
		IPAddresses:           []net.IP{net.IPv4(127, 0, 0, 1), net.IPv6loopback},
		KeyUsage:              x509.KeyUsageDigitalSignature | x509.KeyUsageCertSign,
		ExtKeyUsage:           []x509.ExtKeyUsage{x509.ExtKeyUsageServerAuth},
		BasicConstraintsValid: true,
		IsCA:                  true,
	}
	der, err := x509.CreateCertificate(rand.Reader, tmpl, tmpl, &key.PublicKey, key)
	if err != nil {
		return err
	}
	kder, err := x509.MarshalECPrivateKey(key)
	if err != nil {
		return err
	}
	if err := os.WriteFile(certFile, pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: der}), 0o644); err != nil {
		return fmt.Errorf("testca: %w", err)
	}
	if err := os.WriteFile(keyFile, pem.EncodeToMemory(&pem.Block{Type: "EC PRIVATE KEY", Bytes: kder}), 0o600); err != nil {
		return fmt.Errorf("testca: %w", err)
	}
	return nil
}
