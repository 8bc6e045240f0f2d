package fleet_test

import (
	"bytes"
	"context"
	"crypto/x509"
	"errors"
	"fmt"
	"log/slog"
	"net/url"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/hashicorp/hcl/v2"
	clientv3 "go.etcd.io/etcd/client/v3"
	"go.etcd.io/etcd/server/v3/embed"
	"go.uber.org/zap"

	"github.com/renewer/renewer/internal/acme"
	"github.com/renewer/renewer/internal/agent"
	"github.com/renewer/renewer/internal/config"
	"github.com/renewer/renewer/internal/fleet"
	"github.com/renewer/renewer/internal/status"
	"github.com/renewer/renewer/internal/store"
	"github.com/renewer/renewer/internal/testca"
)

// startTLSEtcd starts one etcd member serving TLS with p's server
// certificate and requiring client certificates from p's CA, with
// authentication enabled for a renewer user (password pw) on prefix.
func startTLSEtcd(t *testing.T, p pki, prefix, pw string) string {
	t.Helper()
	cu := url.URL{Scheme: "https", Host: fmt.Sprintf("127.0.0.1:%d", testca.FreePortT(t))}
	pu := url.URL{Scheme: "http", Host: fmt.Sprintf("127.0.0.1:%d", testca.FreePortT(t))}
	cfg := embed.NewConfig()
	cfg.Name, cfg.Dir = "secure", filepath.Join(t.TempDir(), "data")
	cfg.ListenClientUrls, cfg.AdvertiseClientUrls = []url.URL{cu}, []url.URL{cu}
	cfg.ListenPeerUrls, cfg.AdvertisePeerUrls = []url.URL{pu}, []url.URL{pu}
	cfg.InitialCluster = "secure=" + pu.String()
	cfg.ClientTLSInfo.CertFile, cfg.ClientTLSInfo.KeyFile = p.serverCert, p.serverKey
	cfg.ClientTLSInfo.TrustedCAFile, cfg.ClientTLSInfo.ClientCertAuth = p.ca, true
	cfg.LogLevel = "error"
	cfg.ZapLoggerBuilder = embed.NewZapLoggerBuilder(zap.NewNop())
	cfg.UnsafeNoFsync = true // a test member on a shared disk: no fsync wait per write
	cfg.BcryptCost = 4       // bcrypt's least: a password check answers within the dial timeout on a busy machine under -race
	e, err := embed.StartEtcd(cfg)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(e.Close)
	select {
	case <-e.Server.ReadyNotify():
	case <-time.After(30 * time.Second):
		t.Fatal("etcd not ready")
	}
	// Authentication, set up over the client TLS connection.
	fc := &config.Fleet{Etcd: config.Etcd{Endpoints: []string{cu.String()}, CAFile: p.ca, CertFile: p.clientCert, KeyFile: p.clientKey}}
	enableAuth(t, adminClient(t, fc), prefix, pw)
	return cu.String()
}

// enableAuth, as an etcd administrator would through cli: a root user,
// then a renewer user (password pw) that may read and write under prefix
// only, then authentication on.
func enableAuth(t *testing.T, cli *clientv3.Client, prefix, pw string) {
	t.Helper()
	ctx := context.Background()
	for _, step := range []func() error{
		func() error { _, err := cli.UserAdd(ctx, "root", "rootpw"); return err },
		func() error { _, err := cli.UserGrantRole(ctx, "root", "root"); return err },
		func() error { _, err := cli.UserAdd(ctx, "renewer", pw); return err },
		func() error { _, err := cli.RoleAdd(ctx, "renewer"); return err },
		func() error {
			_, err := cli.RoleGrantPermission(ctx, "renewer", prefix+"/", clientv3.GetPrefixRangeEnd(prefix+"/"), clientv3.PermissionType(clientv3.PermReadWrite))
			return err
		},
		func() error { _, err := cli.UserGrantRole(ctx, "renewer", "renewer"); return err },
		func() error { _, err := cli.AuthEnable(ctx); return err },
	} {
		if err := step(); err != nil {
			t.Fatalf("etcd auth setup: %v", err)
		}
	}
}

// adminClient is an etcd client with fc's TLS settings (no password).
func adminClient(t *testing.T, fc *config.Fleet) *clientv3.Client {
	t.Helper()
	b, err := fleet.OpenConfig(&config.Fleet{Node: "admin", KeyFile: keyFileOf(t), Etcd: fc.Etcd}, nil)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { b.Close() })
	return b.Client()
}

var keyFiles sync.Map

func keyFileOf(t *testing.T) string {
	if f, ok := keyFiles.Load(t.Name()); ok {
		return f.(string)
	}
	f := filepath.Join(t.TempDir(), "fleet.key")
	writeFile(t, f, newKey(t).String(), 0o600)
	keyFiles.Store(t.Name(), f)
	return f
}

// Each way of getting etcd's connection wrong reads differently, with what
// to check, instead of the same "context deadline exceeded": etcd's
// certificate not signed by ca_file, no client certificate, plaintext
// against TLS and TLS against plaintext, a wrong password, nothing
// listening, and a user without permission on the prefix.
func TestEtcdErrorsSayWhy(t *testing.T) {
	t.Parallel()
	dir := t.TempDir()
	p := newPKI(t, dir, "renewer")
	other := newPKI(t, t.TempDir(), "renewer")
	ep := startTLSEtcd(t, p, "/why", "s3cret")
	plain := startCluster(t, 1)[0]
	pw := filepath.Join(dir, "etcd.password")
	writeFile(t, pw, "s3cret\n", 0o600)
	bad := filepath.Join(dir, "bad.password")
	writeFile(t, bad, "wrong\n", 0o600)
	good := config.Etcd{Endpoints: []string{ep}, Prefix: "/why", CAFile: p.ca, CertFile: p.clientCert, KeyFile: p.clientKey,
		Username: "renewer", PasswordFile: pw, DialTimeout: 3 * time.Second} // TLS and bcrypt under -race
	for _, c := range []struct {
		name string
		edit func(e *config.Etcd)
		want string
	}{
		{"works", func(*config.Etcd) {}, ""},
		{"wrong CA", func(e *config.Etcd) { e.CAFile = other.ca }, "etcd's server certificate is not signed by ca_file"},
		{"no client certificate", func(e *config.Etcd) { e.CertFile, e.KeyFile = "", "" }, "cert_file"}, // "requires a client certificate", or (TLS 1.3) "closed the connection"
		{"client certificate of another CA", func(e *config.Etcd) { e.CertFile, e.KeyFile = other.clientCert, other.clientKey },
			"cert_file"},
		{"plaintext against TLS", func(e *config.Etcd) {
			e.Endpoints = []string{strings.Replace(ep, "https://", "http://", 1)}
			e.CAFile, e.CertFile, e.KeyFile = "", "", ""
		}, "etcd serves TLS at this endpoint"},
		{"TLS against plaintext", func(e *config.Etcd) {
			e.Endpoints = []string{strings.Replace(plain, "http://", "https://", 1)}
			e.Username, e.PasswordFile = "", ""
		}, "does it serve plaintext at this endpoint?"},
		{"a password for etcd without authentication works", func(e *config.Etcd) {
			e.Endpoints = []string{plain}
			e.CAFile, e.CertFile, e.KeyFile = "", "", ""
		}, ""},
		{"wrong password", func(e *config.Etcd) { e.PasswordFile = bad }, "etcd refused the username or password"},
		{"nothing listening", func(e *config.Etcd) { e.Endpoints = []string{fmt.Sprintf("https://127.0.0.1:%d", testca.FreePortT(t))} },
			"nothing listens at the etcd endpoint"},
		{"no permission on the prefix", func(e *config.Etcd) { e.Prefix = "/elsewhere" }, "the etcd user may not use this prefix"},
	} {
		t.Run(c.name, func(t *testing.T) {
			e := good
			c.edit(&e)
			fc := &config.Fleet{Node: "n1", KeyFile: keyFileOf(t), LockTTL: 2 * time.Second, Range: hcl.Range{Filename: "renewer.hcl"}, Etcd: e}
			err := firstError(context.Background(), fc)
			switch {
			case c.want == "" && err != nil:
				t.Fatalf("with the right settings: %v", err)
			case c.want != "" && (err == nil || !strings.Contains(err.Error(), c.want)):
				t.Fatalf("got %v\nwant an error saying %q", err, c.want)
			}
			t.Logf("%v", err)
		})
	}
}

// failIssuer is a CA that refuses every order.
type failIssuer struct{}

func (failIssuer) Obtain(context.Context, config.Certificate, status.View, bool, bool) (*acme.Certificate, error) {
	return nil, errors.New("no CA in this test")
}

func (failIssuer) RenewalInfo(context.Context, config.CA, *x509.Certificate) (*acme.RenewalInfo, error) {
	return nil, acme.ErrNoARI
}

// A node whose fleet key is not the fleet's says so in its log, not that
// the fleet is unreachable: etcd answered, the value did not open.
func TestWrongFleetKeyIsNotUnreachable(t *testing.T) {
	t.Parallel()
	eps := startCluster(t, 1)
	ctx := context.Background()
	right := open(t, eps, "edge-right", newKey(t))
	c, ok, err := right.Claim(ctx, "www")
	if err != nil || !ok {
		t.Fatalf("claim: %v %v", ok, err)
	}
	if err := c.Publish(ctx, store.Published{Serial: "0a", Bundle: store.Bundle{Cert: []byte("C"), Key: []byte(secretKey)}}); err != nil {
		t.Fatal(err)
	}
	c.Release()

	dir := t.TempDir()
	cfg, err := config.Parse(filepath.Join(dir, "renewer.hcl"), []byte(fmt.Sprintf(`
acme {}
storage { path = %q }
certificate "www" {
  domains = ["www.example.test"]
  challenge "http" { webroot = %q }
}
`, filepath.Join(dir, "state"), dir)))
	if err != nil {
		t.Fatal(err)
	}
	var logs syncBuffer
	wrong := open(t, eps, "edge-wrong", newKey(t))
	a, err := agent.New(cfg, agent.Options{Log: slog.New(slog.NewTextHandler(&logs, nil)), Fleet: wrong, Issuer: failIssuer{}})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(a.Close)
	if _, err := a.RunOnce(ctx, agent.PassOptions{}); err != nil {
		t.Fatal(err)
	}
	out := logs.String()
	if strings.Contains(out, "fleet unreachable") || !strings.Contains(out, "cannot be opened with this node's fleet key") {
		t.Errorf("log of a node with another fleet key:\n%s", out)
	}
}

type syncBuffer struct {
	mu sync.Mutex
	b  bytes.Buffer
}

func (s *syncBuffer) Write(p []byte) (int, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.b.Write(p)
}

func (s *syncBuffer) String() string {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.b.String()
}
