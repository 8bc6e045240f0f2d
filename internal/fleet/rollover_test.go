package fleet_test

import (
	"context"
	"crypto"
	"crypto/tls"
	"crypto/x509"
	"errors"
	"net/http"
	"net/http/httptest"
	"net/http/httputil"
	"net/url"
	"os"
	"path/filepath"
	"strings"
	"sync/atomic"
	"testing"

	legoacme "github.com/go-acme/lego/v4/acme"
	"github.com/go-acme/lego/v4/acme/api"
	"github.com/go-acme/lego/v4/certcrypto"

	"github.com/renewer/renewer/internal/acme"
	"github.com/renewer/renewer/internal/agent"
	"github.com/renewer/renewer/internal/status"
	"github.com/renewer/renewer/internal/testca"
)

// An account key rollover in a fleet: one node rolls the shared account
// over under the fleet's account lock and publishes it; the other node,
// whose agent had the old key loaded (a running daemon), orders with the
// new key at its next renewal, and both nodes hold the same new key. The
// CA no longer knows the old key.
func TestFleetAccountRollover(t *testing.T) {
	t.Parallel()
	ca := testca.StartT(t, testca.Options{})
	eps := startCluster(t, 1)
	const domain = "roll.example.test"
	pointAt(t, ca, domain, "127.0.0.2")
	s := newFleetSetup(t, ca, domain)
	// Both on the address the CA validates at; their passes run one after
	// the other, so one listener at a time.
	n0, n1 := s.newNode(t, "edge-0", "127.0.0.2", eps[0]), s.newNode(t, "edge-1", "127.0.0.2", eps[0])
	ctx := context.Background()

	if res := n0.pass(t, ctx, agent.PassOptions{Force: true, Names: []string{"www"}}); res.Action != status.Obtained || !res.OK() {
		t.Fatalf("first order on edge-0: %+v", res)
	}
	long := n1.agent(t) // edge-1's daemon: its account client stays loaded
	if res, err := long.RunOnce(ctx, agent.PassOptions{}); err != nil || res[0].Action != status.Synced {
		t.Fatalf("edge-1 applies edge-0's certificate: %+v, %v", res, err)
	}
	if res, err := long.RunOnce(ctx, agent.PassOptions{Force: true, Names: []string{"www"}}); err != nil || !res[0].OK() || res[0].Action != status.Renewed {
		t.Fatalf("order on edge-1 with the shared account: %+v, %v", res, err)
	}
	oldKey, _ := n1.accountFiles(t)
	if k0, _ := n0.accountFiles(t); k0 != oldKey || oldKey == "" {
		t.Fatal("the nodes do not share one account key before the rollover")
	}

	roll := n0.agent(t)
	r, err := roll.RolloverAccount(ctx, agent.RolloverOptions{})
	if err != nil {
		t.Fatalf("rollover on edge-0: %v", err)
	}
	if !r.Fleet || r.Old == r.New || r.Account == "" {
		t.Fatalf("rollover result: %+v", r)
	}
	newKey, _ := n0.accountFiles(t)
	if newKey == oldKey {
		t.Fatal("edge-0's key did not change")
	}

	// edge-1's long-lived agent renews: it takes the fleet's new key first.
	res, err := long.RunOnce(ctx, agent.PassOptions{Force: true, Names: []string{"www"}})
	if err != nil || !res[0].OK() || res[0].Action != status.Renewed {
		t.Fatalf("order on edge-1 after the rollover: %+v, %v", res, err)
	}
	if k1, _ := n1.accountFiles(t); k1 != newKey {
		t.Fatal("edge-1 does not hold the fleet's new key after ordering")
	}
	// And edge-0 orders with it too (after taking edge-1's version).
	if res := n0.pass(t, ctx, agent.PassOptions{}); res.Action != status.Synced {
		t.Fatalf("edge-0 applies edge-1's certificate: %+v", res)
	}
	if res := n0.pass(t, ctx, agent.PassOptions{Force: true, Names: []string{"www"}}); res.Action != status.Renewed || !res.OK() {
		t.Fatalf("order on edge-0 after the rollover: %+v", res)
	}

	// The CA refuses the old key, and knows the new one as the account.
	lookup := func(pemKey string) (string, error) {
		k, err := certcrypto.ParsePEMPrivateKey([]byte(pemKey))
		if err != nil {
			t.Fatal(err)
		}
		pemBytes, err := os.ReadFile(ca.CABundle)
		if err != nil {
			t.Fatal(err)
		}
		roots := x509.NewCertPool()
		roots.AppendCertsFromPEM(pemBytes)
		hc := &http.Client{Transport: &http.Transport{TLSClientConfig: &tls.Config{RootCAs: roots}}}
		core, err := api.New(hc, "renewer-test", ca.Directory, "", k.(crypto.Signer))
		if err != nil {
			t.Fatal(err)
		}
		acc, err := core.Accounts.New(legoacme.Account{OnlyReturnExisting: true})
		return acc.Location, err
	}
	if loc, err := lookup(newKey); err != nil || loc != r.Account {
		t.Errorf("lookup with the new key: %q, %v; want %s", loc, err, r.Account)
	}
	var pd *legoacme.ProblemDetails
	if _, err := lookup(oldKey); !errors.As(err, &pd) || pd.Type != "urn:ietf:params:acme:error:accountDoesNotExist" {
		t.Errorf("lookup with the old key: %v; want accountDoesNotExist", err)
	}
}

// A rollover whose author never saw the CA's answer (the CA took the key,
// then went away): the pending key was published to the fleet before the
// CA was asked, so another node settles it when the CA is back (it asks
// the CA which key it knows) and orders with the new key; the author does
// the same at its next order.
func TestFleetRolloverSettledByAnotherNode(t *testing.T) {
	t.Parallel()
	ca := testca.StartT(t, testca.Options{Env: []string{"PEBBLE_WFE_NONCEREJECT=0"}})
	proxy := startLossyProxy(t, ca)
	eps := startCluster(t, 1)
	const domain = "settle.example.test"
	pointAt(t, ca, domain, "127.0.0.2")
	s := newFleetSetup(t, &testca.CA{Directory: proxy.directory, CABundle: ca.CABundle, HTTPPort: ca.HTTPPort}, domain)
	n0, n1 := s.newNode(t, "edge-0", "127.0.0.2", eps[0]), s.newNode(t, "edge-1", "127.0.0.2", eps[0])
	ctx := context.Background()
	if res := n0.pass(t, ctx, agent.PassOptions{Force: true, Names: []string{"www"}}); res.Action != status.Obtained || !res.OK() {
		t.Fatalf("first order on edge-0: %+v", res)
	}
	oldKey, _ := n0.accountFiles(t)

	proxy.loseKeyChange.Store(true)
	_, err := n0.agent(t).RolloverAccount(ctx, agent.RolloverOptions{})
	if err == nil || !strings.Contains(err.Error(), "outcome of the key change is unknown") {
		t.Fatalf("rollover with the answer lost and the CA gone: %v", err)
	}
	if k, _ := n0.accountFiles(t); k != oldKey {
		t.Fatal("edge-0's key.pem changed although the outcome is unknown")
	}
	proxy.down.Store(false) // the CA is back

	if res := n1.pass(t, ctx, agent.PassOptions{}); res.Action != status.Synced {
		t.Fatalf("edge-1 applies edge-0's certificate: %+v", res)
	}
	if res := n1.pass(t, ctx, agent.PassOptions{Force: true, Names: []string{"www"}}); res.Action != status.Renewed || !res.OK() {
		t.Fatalf("order on edge-1 after the unsettled rollover: %+v", res)
	}
	k1, _ := n1.accountFiles(t)
	if k1 == oldKey || k1 == "" {
		t.Fatal("edge-1 did not take the key the CA accepted")
	}
	// edge-1 shared what it settled: the fleet's account has no pending key.
	dirs, _ := filepath.Glob(filepath.Join(n1.cfg.Storage.Path, "accounts", "*"))
	var shared []byte
	err = n1.fleet.SyncAccount(ctx, filepath.Base(dirs[0]), nil, func(b []byte) error { shared = b; return nil }, nil)
	if err != nil || len(shared) == 0 || acme.AccountPending(shared) || !strings.Contains(string(shared), strings.Split(k1, "\n")[1]) {
		t.Fatalf("the fleet's account after edge-1 settled the rollover (%v):\n%s", err, shared)
	}
	if res := n0.pass(t, ctx, agent.PassOptions{}); res.Action != status.Synced {
		t.Fatalf("edge-0 applies edge-1's certificate: %+v", res)
	}
	if res := n0.pass(t, ctx, agent.PassOptions{Force: true, Names: []string{"www"}}); res.Action != status.Renewed || !res.OK() {
		t.Fatalf("order on edge-0 after edge-1 settled the rollover: %+v", res)
	}
	if k0, _ := n0.accountFiles(t); k0 != k1 {
		t.Fatal("the nodes hold different keys after the rollover was settled")
	}
}

// lossyProxy forwards to Pebble; once loseKeyChange is set, the next key
// change reaches the CA but its answer is lost, and the CA is unreachable
// (down) from then on until the test clears down.
type lossyProxy struct {
	directory     string
	loseKeyChange atomic.Bool
	down          atomic.Bool
}

func startLossyProxy(t *testing.T, ca *testca.CA) *lossyProxy {
	t.Helper()
	target, err := url.Parse(ca.Directory)
	if err != nil {
		t.Fatal(err)
	}
	cert, err := tls.LoadX509KeyPair(ca.CABundle, filepath.Join(filepath.Dir(ca.CABundle), "ca-tls.key"))
	if err != nil {
		t.Fatal(err)
	}
	pemBytes, err := os.ReadFile(ca.CABundle)
	if err != nil {
		t.Fatal(err)
	}
	roots := x509.NewCertPool()
	roots.AppendCertsFromPEM(pemBytes)
	rp := httputil.NewSingleHostReverseProxy(&url.URL{Scheme: "https", Host: target.Host})
	rp.Transport = &http.Transport{TLSClientConfig: &tls.Config{RootCAs: roots}}
	p := &lossyProxy{}
	hangUp := func(w http.ResponseWriter) {
		if conn, _, err := w.(http.Hijacker).Hijack(); err == nil {
			conn.Close()
		}
	}
	srv := httptest.NewUnstartedServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		switch {
		case p.down.Load():
			hangUp(w)
		case r.Method == http.MethodPost && strings.HasSuffix(r.URL.Path, "/rollover-account-key") && p.loseKeyChange.CompareAndSwap(true, false):
			rp.ServeHTTP(httptest.NewRecorder(), r)
			p.down.Store(true)
			hangUp(w)
		default:
			rp.ServeHTTP(w, r)
		}
	}))
	srv.TLS = &tls.Config{Certificates: []tls.Certificate{cert}}
	srv.StartTLS()
	t.Cleanup(srv.Close)
	p.directory = srv.URL + target.Path
	return p
}
