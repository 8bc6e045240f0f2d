package fleet_test

import (
	"context"
	"crypto"
	"crypto/tls"
	"crypto/x509"
	"errors"
	"net/http"
	"os"
	"testing"

	legoacme "github.com/go-acme/lego/v4/acme"
	"github.com/go-acme/lego/v4/acme/api"
	"github.com/go-acme/lego/v4/certcrypto"

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
