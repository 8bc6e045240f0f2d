package acme

import (
	"bytes"
	"context"
	"crypto"
	"crypto/tls"
	"crypto/x509"
	"errors"
	"io"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"net/http/httputil"
	"net/url"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"testing"

	legoacme "github.com/go-acme/lego/v4/acme"
	"github.com/go-acme/lego/v4/acme/api"
	"github.com/go-acme/lego/v4/certcrypto"
	jose "github.com/go-jose/go-jose/v4"

	"github.com/renewer/renewer/internal/testca"
)

// What the test proxy does with one request.
type proxyAction int

const (
	pass             proxyAction = iota
	fail500                      // answer 500 without asking the CA
	forwardThen500               // the CA acts on it, the client gets a 500 (answer lost)
	forwardThenReset             // the CA acts on it, the connection is reset
	reset                        // the connection is reset, the CA is not asked
)

// caProxy is a TLS reverse proxy in front of Pebble (with Pebble's own TLS
// certificate, so the same CABundle is trusted) that records every POST
// and lets a test decide the fate of each request.
type caProxy struct {
	Directory string

	mu     sync.Mutex
	decide func(r *http.Request) proxyAction
	posts  []recordedPost
}

type recordedPost struct {
	path string
	body []byte
}

func startCAProxy(t *testing.T, ca *testca.CA) *caProxy {
	t.Helper()
	target, err := url.Parse(ca.Directory)
	if err != nil {
		t.Fatal(err)
	}
	cert, err := tls.LoadX509KeyPair(ca.CABundle, filepath.Join(filepath.Dir(ca.CABundle), "ca-tls.key"))
	if err != nil {
		t.Fatal(err)
	}
	roots := x509.NewCertPool()
	pemBytes, err := os.ReadFile(ca.CABundle)
	if err != nil {
		t.Fatal(err)
	}
	roots.AppendCertsFromPEM(pemBytes)
	rp := httputil.NewSingleHostReverseProxy(&url.URL{Scheme: "https", Host: target.Host})
	rp.Transport = &http.Transport{TLSClientConfig: &tls.Config{RootCAs: roots}}
	p := &caProxy{}
	srv := httptest.NewUnstartedServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		var body []byte
		if r.Method == http.MethodPost {
			body, _ = io.ReadAll(r.Body)
			r.Body = io.NopCloser(bytes.NewReader(body))
		}
		p.mu.Lock()
		act := pass
		if p.decide != nil {
			act = p.decide(r)
		}
		if r.Method == http.MethodPost && act == pass {
			p.posts = append(p.posts, recordedPost{r.URL.Path, body})
		}
		p.mu.Unlock()
		switch act {
		case fail500:
			http.Error(w, "injected fault", http.StatusInternalServerError)
		case forwardThen500, forwardThenReset:
			rec := httptest.NewRecorder()
			rp.ServeHTTP(rec, r)
			if act == forwardThenReset {
				hangUp(w)
				return
			}
			http.Error(w, "injected fault after the CA answered "+strconv.Itoa(rec.Code), http.StatusInternalServerError)
		case reset:
			hangUp(w)
		default:
			rp.ServeHTTP(w, r)
		}
	}))
	srv.TLS = &tls.Config{Certificates: []tls.Certificate{cert}}
	srv.StartTLS()
	t.Cleanup(srv.Close)
	p.Directory = srv.URL + target.Path
	return p
}

func hangUp(w http.ResponseWriter) {
	if hj, ok := w.(http.Hijacker); ok {
		if conn, _, err := hj.Hijack(); err == nil {
			conn.Close()
			return
		}
	}
	http.Error(w, "injected fault", http.StatusBadGateway)
}

func (p *caProxy) set(decide func(r *http.Request) proxyAction) {
	p.mu.Lock()
	p.decide = decide
	p.mu.Unlock()
}

// takePosts returns the recorded POSTs and forgets them.
func (p *caProxy) takePosts() []recordedPost {
	p.mu.Lock()
	defer p.mu.Unlock()
	out := p.posts
	p.posts = nil
	return out
}

func isKeyChange(r *http.Request) bool {
	return r.Method == http.MethodPost && strings.Contains(r.URL.Path, "rollover-account-key")
}

// rolloverClient is a client of the proxy's directory with its own account
// directory; the solver answers HTTP-01 on the CA's validation port.
func rolloverClient(t *testing.T, ca *testca.CA, directory, accDir string, solver *HTTPSolver) *Client {
	t.Helper()
	c, err := New(Options{
		Directory: directory, Email: "ops@example.test", AcceptTerms: true, CABundle: ca.CABundle, AccountDir: accDir,
		Log: slog.New(slog.NewTextHandler(testWriter{t}, &slog.HandlerOptions{Level: slog.LevelDebug})),
	}, solver)
	if err != nil {
		t.Fatal(err)
	}
	return c
}

func obtainOne(t *testing.T, ca *testca.CA, c *Client, name string) {
	t.Helper()
	cert, err := c.Obtain(context.Background(), Request{Domains: []string{name}, Listen: "127.0.0.1:" + strconv.Itoa(ca.HTTPPort)})
	if err != nil {
		t.Fatalf("order for %s: %v", name, err)
	}
	leafOf(t, cert)
}

func readKey(t *testing.T, dir string) (crypto.Signer, []byte) {
	t.Helper()
	raw, err := os.ReadFile(filepath.Join(dir, accountKeyFile))
	if err != nil {
		t.Fatal(err)
	}
	k, err := certcrypto.ParsePEMPrivateKey(raw)
	if err != nil {
		t.Fatal(err)
	}
	return k.(crypto.Signer), raw
}

// legoCore is lego's own ACME API client (not renewer's code) signing
// with key: kid "" embeds the key (a lookup), else signs as that account.
func legoCore(t *testing.T, ca *testca.CA, directory string, key crypto.Signer, kid string) *api.Core {
	t.Helper()
	pemBytes, err := os.ReadFile(ca.CABundle)
	if err != nil {
		t.Fatal(err)
	}
	roots := x509.NewCertPool()
	roots.AppendCertsFromPEM(pemBytes)
	hc := &http.Client{Transport: &http.Transport{TLSClientConfig: &tls.Config{RootCAs: roots}}}
	core, err := api.New(hc, "renewer-test", directory, kid, key)
	if err != nil {
		t.Fatal(err)
	}
	return core
}

// assertCARefusesKey checks, with lego's own client, that the CA knows no
// account by key and refuses key's signature on the account URL.
func assertCARefusesKey(t *testing.T, ca *testca.CA, directory string, key crypto.Signer, accountURL string) {
	t.Helper()
	_, err := legoCore(t, ca, directory, key, "").Accounts.New(legoacme.Account{OnlyReturnExisting: true})
	var pd *legoacme.ProblemDetails
	if !errors.As(err, &pd) || pd.Type != "urn:ietf:params:acme:error:accountDoesNotExist" {
		t.Errorf("lookup with the old key: got %v, want the CA's accountDoesNotExist", err)
	}
	_, err = legoCore(t, ca, directory, key, accountURL).Accounts.Get(accountURL)
	if !errors.As(err, &pd) || pd.HTTPStatus < 400 || pd.HTTPStatus >= 500 {
		t.Errorf("POST-as-GET of %s signed with the old key: got %v, want a 4xx refusal", accountURL, err)
	} else {
		t.Logf("the CA refuses the old key on the account URL: %s", pd)
	}
}

// assertCAKnowsKey checks, with lego's own client, that key is the key of
// accountURL at the CA.
func assertCAKnowsKey(t *testing.T, ca *testca.CA, directory string, key crypto.Signer, accountURL string) {
	t.Helper()
	acc, err := legoCore(t, ca, directory, key, "").Accounts.New(legoacme.Account{OnlyReturnExisting: true})
	if err != nil || acc.Location != accountURL {
		t.Fatalf("lookup with the key: %q, %v; want account %s", acc.Location, err, accountURL)
	}
}

// signedBy reports whether the JWS in body verifies with pub.
func signedBy(t *testing.T, body []byte, pub crypto.PublicKey) bool {
	t.Helper()
	jws, err := jose.ParseSigned(string(body), []jose.SignatureAlgorithm{jose.ES256, jose.ES384, jose.RS256})
	if err != nil {
		t.Fatalf("a POST is not a JWS: %v", err)
	}
	_, err = jws.Verify(pub)
	return err == nil
}

// After a rollover, the client's later orders are signed with the new key
// and succeed; the CA refuses the old key; a second client that had the
// account loaded (a daemon while `renewer account rollover` runs) picks
// the new key up from disk.
func TestRolloverNewKeySignsLaterOrders(t *testing.T) {
	t.Parallel()
	ca := testca.StartT(t, testca.Options{})
	proxy := startCAProxy(t, ca)
	solver := NewHTTPSolver(slog.New(slog.DiscardHandler))
	defer solver.Close()
	accDir := t.TempDir()
	c := rolloverClient(t, ca, proxy.Directory, accDir, solver)
	daemon := rolloverClient(t, ca, proxy.Directory, accDir, solver)
	obtainOne(t, ca, c, "before.example.test")
	obtainOne(t, ca, daemon, "daemon-before.example.test")
	oldKey, _ := readKey(t, accDir)

	res, err := c.Rollover(context.Background(), RolloverOptions{})
	if err != nil {
		t.Fatalf("rollover: %v", err)
	}
	newKey, _ := readKey(t, accDir)
	if Thumbprint(newKey.Public()) != res.New || res.Old != Thumbprint(oldKey.Public()) || res.Old == res.New {
		t.Fatalf("result %+v; key on disk %s", res, Thumbprint(newKey.Public()))
	}
	if _, err := os.Stat(filepath.Join(accDir, accountNextKeyFile)); !errors.Is(err, os.ErrNotExist) {
		t.Errorf("the pending key is still there after the rollover: %v", err)
	}
	if fi, err := os.Stat(filepath.Join(accDir, accountKeyFile)); err != nil || fi.Mode().Perm() != 0o600 {
		t.Errorf("new key file: %v, %v", fi, err)
	}
	// The key change request itself: outer JWS by the old key.
	var sawKeyChange bool
	for _, p := range proxy.takePosts() {
		if strings.Contains(p.path, "rollover-account-key") {
			sawKeyChange = true
			if !signedBy(t, p.body, oldKey.Public()) {
				t.Error("the key change's outer JWS is not signed by the old key")
			}
		}
	}
	if !sawKeyChange {
		t.Fatal("no key change request went through the proxy")
	}

	obtainOne(t, ca, c, "after.example.test")
	obtainOne(t, ca, daemon, "daemon-after.example.test")
	posts := proxy.takePosts()
	signed := 0
	for _, p := range posts {
		if p.path == "/sign-me-up" { // lookups by key: signed with the key looked up
			continue
		}
		if signedBy(t, p.body, oldKey.Public()) {
			t.Errorf("POST %s after the rollover is signed with the old key", p.path)
		}
		if !signedBy(t, p.body, newKey.Public()) {
			t.Errorf("POST %s after the rollover is not signed with the new key", p.path)
		}
		signed++
	}
	if signed < 6 {
		t.Fatalf("only %d signed POSTs seen for two orders", signed)
	}
	t.Logf("%d POSTs of two orders after the rollover, all signed with the new key", signed)

	acc := res.Account
	assertCAKnowsKey(t, ca, proxy.Directory, newKey, acc)
	assertCARefusesKey(t, ca, proxy.Directory, oldKey, acc)

	// A new process on the same directory orders with the new key.
	fresh := rolloverClient(t, ca, proxy.Directory, accDir, solver)
	obtainOne(t, ca, fresh, "fresh.example.test")
}

// Every failure at the CA leaves the old key in use and nothing lost: the
// key file is byte for byte the same, there is no pending key, the CA
// still knows the old key and orders succeed. An answer lost after the CA
// accepted is settled: the new key is taken.
func TestRolloverFailureKeepsOldKey(t *testing.T) {
	t.Parallel()
	// No bad nonces: a request forwarded once must reach the CA's handler.
	ca := testca.StartT(t, testca.Options{Env: []string{"PEBBLE_WFE_NONCEREJECT=0"}})
	proxy := startCAProxy(t, ca)
	solver := NewHTTPSolver(slog.New(slog.DiscardHandler))
	defer solver.Close()
	accDir := t.TempDir()
	c := rolloverClient(t, ca, proxy.Directory, accDir, solver)
	obtainOne(t, ca, c, "first.example.test")
	accountURL := c.acc.Registration.URI

	// Another account, whose key we will try to take over.
	otherDir := t.TempDir()
	other := rolloverClient(t, ca, proxy.Directory, otherDir, nil)
	if err := other.Register(context.Background()); err != nil {
		t.Fatal(err)
	}
	otherKey, _ := readKey(t, otherDir)

	unchanged := func(t *testing.T, what string, oldPEM, oldJSON []byte) {
		t.Helper()
		_, nowPEM := readKey(t, accDir)
		nowJSON, _ := os.ReadFile(filepath.Join(accDir, accountFile))
		if !bytes.Equal(nowPEM, oldPEM) || !bytes.Equal(nowJSON, oldJSON) {
			t.Errorf("%s: the account files changed", what)
		}
		if _, err := os.Stat(filepath.Join(accDir, accountNextKeyFile)); !errors.Is(err, os.ErrNotExist) {
			t.Errorf("%s: a pending key is left: %v", what, err)
		}
		k, _ := readKey(t, accDir)
		assertCAKnowsKey(t, ca, proxy.Directory, k, accountURL)
		obtainOne(t, ca, c, strings.ReplaceAll(what, " ", "-")+".example.test")
	}

	cases := []struct {
		name   string
		decide func(*http.Request) proxyAction
		opts   RolloverOptions
		want   string
	}{
		{name: "key of another account", opts: RolloverOptions{NewKey: func(crypto.Signer) (crypto.Signer, error) { return otherKey, nil }}, want: "belongs to account"},
		{name: "key change fails", decide: func(r *http.Request) proxyAction {
			if isKeyChange(r) {
				return fail500
			}
			return pass
		}, want: "500"},
		{name: "key change reset", decide: func(r *http.Request) proxyAction {
			if isKeyChange(r) {
				return reset
			}
			return pass
		}, want: "refused"},
		{name: "dns record not visible", opts: RolloverOptions{Before: func(context.Context, RolloverKey) error {
			return errors.New("the record is not visible yet")
		}}, decide: func(r *http.Request) proxyAction {
			if isKeyChange(r) {
				panic("the key change was sent although Before refused")
			}
			return pass
		}, want: "not visible"},
		{name: "stage fails", opts: RolloverOptions{Stage: func(context.Context, []byte) error { return errors.New("etcd is down") }},
			decide: func(r *http.Request) proxyAction {
				if isKeyChange(r) {
					panic("the key change was sent although staging failed")
				}
				return pass
			}, want: "etcd is down"},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			_, oldPEM := readKey(t, accDir)
			oldJSON, _ := os.ReadFile(filepath.Join(accDir, accountFile))
			proxy.set(tc.decide)
			_, err := c.Rollover(context.Background(), tc.opts)
			proxy.set(nil)
			if err == nil || !strings.Contains(err.Error(), tc.want) {
				t.Fatalf("rollover: %v, want an error with %q", err, tc.want)
			}
			t.Logf("refused as expected: %v", err)
			unchanged(t, tc.name, oldPEM, oldJSON)
		})
	}
	// The other account still has its key.
	assertCAKnowsKey(t, ca, proxy.Directory, otherKey, other.acc.Registration.URI)

	// The CA accepts, its answer is lost: settled by asking the CA.
	oldKey, _ := readKey(t, accDir)
	proxy.set(func(r *http.Request) proxyAction {
		if isKeyChange(r) {
			return forwardThen500
		}
		return pass
	})
	res, err := c.Rollover(context.Background(), RolloverOptions{})
	proxy.set(nil)
	if err != nil || !res.Settled {
		t.Fatalf("rollover whose answer was lost: %+v, %v; want it settled", res, err)
	}
	newKey, _ := readKey(t, accDir)
	if Thumbprint(newKey.Public()) != res.New {
		t.Fatal("the settled key is not on disk")
	}
	assertCARefusesKey(t, ca, proxy.Directory, oldKey, accountURL)
	obtainOne(t, ca, c, "settled.example.test")
}

// The CA accepts the key change, and then neither its answer nor a lookup
// gets through (the CA went away): the outcome is unknown, the new key
// stays pending, and the next client to reach the CA settles it and
// orders with the new key.
func TestRolloverUnknownOutcomeSettledLater(t *testing.T) {
	t.Parallel()
	// No bad nonces: a request forwarded once must reach the CA's handler.
	ca := testca.StartT(t, testca.Options{Env: []string{"PEBBLE_WFE_NONCEREJECT=0"}})
	proxy := startCAProxy(t, ca)
	solver := NewHTTPSolver(slog.New(slog.DiscardHandler))
	defer solver.Close()
	accDir := t.TempDir()
	c := rolloverClient(t, ca, proxy.Directory, accDir, solver)
	obtainOne(t, ca, c, "first.example.test")
	accountURL := c.acc.Registration.URI
	oldKey, oldPEM := readKey(t, accDir)

	var down bool
	proxy.set(func(r *http.Request) proxyAction {
		switch {
		case down:
			return reset
		case isKeyChange(r):
			down = true
			return forwardThenReset
		}
		return pass
	})
	_, err := c.Rollover(context.Background(), RolloverOptions{})
	if !errors.Is(err, ErrRolloverUnknown) {
		t.Fatalf("rollover with the CA gone after it accepted: %v, want ErrRolloverUnknown", err)
	}
	if _, now := readKey(t, accDir); !bytes.Equal(now, oldPEM) {
		t.Fatal("key.pem changed although the outcome is unknown")
	}
	pending, err := os.ReadFile(filepath.Join(accDir, accountNextKeyFile))
	if err != nil {
		t.Fatalf("the new key was not kept pending: %v", err)
	}
	// The fleet's form carries the pending key too.
	if exp, err := ExportAccount(accDir); err != nil || !bytes.Contains(exp, []byte("next_key_pem")) {
		t.Errorf("export while a key is pending: %s, %v", exp, err)
	}
	// An order while the CA is still away fails, and cannot settle it.
	if _, err := c.Obtain(context.Background(), Request{Domains: []string{"away.example.test"}, Listen: "127.0.0.1:" + strconv.Itoa(ca.HTTPPort)}); err == nil {
		t.Fatal("an order succeeded with the CA unreachable")
	}
	// The CA is back: it did change the key.
	proxy.set(nil)
	assertCARefusesKey(t, ca, proxy.Directory, oldKey, accountURL)
	// The same client (a daemon) settles it at its next order, and orders
	// with the new key.
	obtainOne(t, ca, c, "first-again.example.test")
	if _, now := readKey(t, accDir); !bytes.Equal(now, pending) {
		t.Fatal("the pending key the CA accepted was not taken")
	}
	if _, err := os.Stat(filepath.Join(accDir, accountNextKeyFile)); !errors.Is(err, os.ErrNotExist) {
		t.Errorf("pending key left after it was settled: %v", err)
	}
	// A new process orders with it too.
	later := rolloverClient(t, ca, proxy.Directory, accDir, solver)
	obtainOne(t, ca, later, "later.example.test")
}

// A pending key the CA never saw (a crash before the request) is dropped
// at the next contact with the CA; the old key stays.
func TestRolloverPendingNeverSentDropped(t *testing.T) {
	t.Parallel()
	ca := testca.StartT(t, testca.Options{})
	solver := NewHTTPSolver(slog.New(slog.DiscardHandler))
	defer solver.Close()
	accDir := t.TempDir()
	c := rolloverClient(t, ca, ca.Directory, accDir, solver)
	if err := c.Register(context.Background()); err != nil {
		t.Fatal(err)
	}
	_, oldPEM := readKey(t, accDir)
	k, err := newKeyLike(nil)
	if err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(filepath.Join(accDir, accountNextKeyFile), certcrypto.PEMEncode(k), 0o600); err != nil {
		t.Fatal(err)
	}
	later := rolloverClient(t, ca, ca.Directory, accDir, solver)
	obtainOne(t, ca, later, "never-sent.example.test")
	if _, now := readKey(t, accDir); !bytes.Equal(now, oldPEM) {
		t.Fatal("the key changed")
	}
	if _, err := os.Stat(filepath.Join(accDir, accountNextKeyFile)); !errors.Is(err, os.ErrNotExist) {
		t.Errorf("the pending key the CA never saw is still there: %v", err)
	}
}
