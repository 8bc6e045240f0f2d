package acme

import (
	"context"
	"crypto/x509"
	"encoding/pem"
	"fmt"
	"log/slog"
	"net"
	"net/http"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/renewer/renewer/internal/testca"
)

func testClient(t *testing.T, ca *testca.CA, solver *HTTPSolver) *Client {
	t.Helper()
	c, err := New(Options{
		Directory:   ca.Directory,
		Email:       "ops@example.test",
		AcceptTerms: true,
		CABundle:    ca.CABundle,
		AccountDir:  t.TempDir(),
		Log:         slog.New(slog.NewTextHandler(testWriter{t}, &slog.HandlerOptions{Level: slog.LevelDebug})),
	}, solver)
	if err != nil {
		t.Fatal(err)
	}
	return c
}

type testWriter struct{ t *testing.T }

func (w testWriter) Write(p []byte) (int, error) { w.t.Log(string(p)); return len(p), nil }

func leafOf(t *testing.T, c *Certificate) *x509.Certificate {
	t.Helper()
	b, _ := pem.Decode(c.Cert)
	if b == nil {
		t.Fatalf("no PEM in issued certificate")
	}
	leaf, err := x509.ParseCertificate(b.Bytes)
	if err != nil {
		t.Fatal(err)
	}
	if len(c.Chain) == 0 || len(c.Key) == 0 {
		t.Fatalf("issued certificate lacks chain or key")
	}
	return leaf
}

// Two standalone obtains at once share one listener: lego's own standalone
// server would fail the second with "address already in use".
func TestObtainStandaloneConcurrent(t *testing.T) {
	t.Parallel()
	ca := testca.StartT(t, testca.Options{})
	solver := NewHTTPSolver(slog.New(slog.DiscardHandler))
	defer solver.Close()
	c := testClient(t, ca, solver)
	listen := "127.0.0.1:" + strconv.Itoa(ca.HTTPPort)

	names := [][]string{{"a.example.test", "www.a.example.test"}, {"b.example.test"}, {"c.example.test"}}
	var wg sync.WaitGroup
	errs := make([]error, len(names))
	certs := make([]*Certificate, len(names))
	for i, domains := range names {
		wg.Go(func() {
			certs[i], errs[i] = c.Obtain(context.Background(), Request{Domains: domains, KeyType: "ec384", Listen: listen})
		})
	}
	wg.Wait()
	for i, domains := range names {
		if errs[i] != nil {
			t.Fatalf("obtain %v: %v", domains, errs[i])
		}
		leaf := leafOf(t, certs[i])
		if fmt.Sprint(leaf.DNSNames) != fmt.Sprint(domains) {
			t.Errorf("names = %v, want %v", leaf.DNSNames, domains)
		}
	}
	// The port is released once no challenge is pending.
	ln, err := net.Listen("tcp", listen)
	if err != nil {
		t.Fatalf("standalone listener still open after all orders: %v", err)
	}
	ln.Close()
	// The account was registered once and stored.
	if _, err := os.Stat(filepath.Join(c.opts.AccountDir, "account.json")); err != nil {
		t.Fatal(err)
	}
}

func TestObtainWebroot(t *testing.T) {
	t.Parallel()
	ca := testca.StartT(t, testca.Options{})
	root := t.TempDir()
	srv := &http.Server{Handler: http.FileServer(http.Dir(root))}
	ln, err := net.Listen("tcp", "127.0.0.1:"+strconv.Itoa(ca.HTTPPort))
	if err != nil {
		t.Fatal(err)
	}
	go srv.Serve(ln)
	defer srv.Close()

	c := testClient(t, ca, nil)
	cert, err := c.Obtain(context.Background(), Request{Domains: []string{"web.example.test"}, KeyType: "rsa2048", Webroot: root})
	if err != nil {
		t.Fatal(err)
	}
	leaf := leafOf(t, cert)
	if leaf.PublicKeyAlgorithm != x509.RSA {
		t.Errorf("key algorithm = %v, want RSA", leaf.PublicKeyAlgorithm)
	}
	// The challenge file was cleaned up.
	left, _ := filepath.Glob(filepath.Join(root, ".well-known", "acme-challenge", "*"))
	if len(left) != 0 {
		t.Errorf("challenge files left behind: %v", left)
	}
}

// A challenge nobody answers fails with the CA's reason, and the account is
// reused by a second client on the same account directory.
func TestObtainChallengeFails(t *testing.T) {
	t.Parallel()
	ca := testca.StartT(t, testca.Options{})
	c := testClient(t, ca, nil)
	// Webroot written, but nothing serves it on the validation port.
	_, err := c.Obtain(context.Background(), Request{Domains: []string{"nobody.example.test"}, Webroot: t.TempDir()})
	if err == nil {
		t.Fatal("obtain succeeded with no server answering the challenge")
	}
	t.Logf("error: %v", err)

	c2, err := New(c.opts, nil)
	if err != nil {
		t.Fatal(err)
	}
	acc, err := c2.account()
	if err != nil {
		t.Fatal(err)
	}
	if acc.Registration == nil || acc.Registration.URI != c.acc.Registration.URI {
		t.Errorf("stored account not reused: %+v vs %+v", acc.Registration, c.acc.Registration)
	}
	st, _ := os.Stat(filepath.Join(c.opts.AccountDir, "key.pem"))
	if st.Mode().Perm() != 0o600 {
		t.Errorf("account key mode %v, want 0600", st.Mode().Perm())
	}
}

func TestObtainCAUnreachable(t *testing.T) {
	t.Parallel()
	port, err := testca.FreePort()
	if err != nil {
		t.Fatal(err)
	}
	dir := "https://127.0.0.1:" + strconv.Itoa(port) + "/dir"
	c, err := New(Options{Directory: dir, AcceptTerms: true, AccountDir: t.TempDir()}, nil)
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
	defer cancel()
	_, err = c.Obtain(ctx, Request{Domains: []string{"x.example.test"}, Listen: "127.0.0.1:0"})
	if err == nil {
		t.Fatal("obtain succeeded with no CA")
	}
	// Issue 14 #13: said once, not "acme directory X: get directory at
	// 'X': Get "X": dial tcp ...".
	if n := strings.Count(err.Error(), dir); n != 1 || !strings.Contains(err.Error(), "connection refused") {
		t.Errorf("the directory URL is in the error %d times, want once with the cause: %v", n, err)
	}
	// The profiles read (fallback.go) says it once too.
	_, err = c.Profiles()
	if err == nil || strings.Count(err.Error(), dir) != 1 || !strings.Contains(err.Error(), "connection refused") {
		t.Errorf("profiles: %v", err)
	}
}

func TestRegisterNeedsTerms(t *testing.T) {
	t.Parallel()
	ca := testca.StartT(t, testca.Options{})
	c := testClient(t, ca, nil)
	c.opts.AcceptTerms = false
	if _, err := c.account(); err == nil {
		t.Fatal("registered without accept_terms")
	}
}

func TestAccountKey(t *testing.T) {
	t.Parallel()
	for _, tc := range []struct{ dir, email, want string }{
		{"https://acme-v02.api.letsencrypt.org/directory", "ops@example.com", "acme-v02.api.letsencrypt.org_directory_ops@example.com"},
		{"https://127.0.0.1:14000/dir", "", "127.0.0.1_14000_dir_default"},
	} {
		if got := AccountKey(tc.dir, tc.email); got != tc.want {
			t.Errorf("AccountKey(%q, %q) = %q, want %q", tc.dir, tc.email, got, tc.want)
		}
	}
}
