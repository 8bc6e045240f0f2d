package fleet_test

import (
	"context"
	"errors"
	"fmt"
	"strings"
	"testing"
	"time"

	clientv3 "go.etcd.io/etcd/client/v3"

	"github.com/renewer/renewer/internal/acme"
	"github.com/renewer/renewer/internal/agent"
	"github.com/renewer/renewer/internal/config"
	"github.com/renewer/renewer/internal/fleet"
	"github.com/renewer/renewer/internal/status"
	"github.com/renewer/renewer/internal/testca"
)

var _ acme.ChallengeCertStore = (*fleet.Backend)(nil)

// newALPNNode is newNode with the tls-alpn challenge on ip:TLSPort, the
// port Pebble's VA connects to, instead of HTTP-01.
func (s *fleetSetup) newALPNNode(t *testing.T, name, ip, endpoint string) *node {
	t.Helper()
	n := s.newNode(t, name, ip, endpoint)
	src, err := readAll(n.file)
	if err != nil {
		t.Fatal(err)
	}
	httpLine := fmt.Sprintf(`challenge "http" { listen = "%s:%d" }`, ip, s.ca.HTTPPort)
	if !strings.Contains(src, httpLine) {
		t.Fatalf("node config has no %s:\n%s", httpLine, src)
	}
	src = strings.Replace(src, httpLine, fmt.Sprintf(`challenge "tls-alpn" { listen = "%s:%d" }`, ip, s.ca.TLSPort), 1)
	writeFile(t, n.file, src, 0o600)
	if n.cfg, err = config.Load(n.file); err != nil {
		t.Fatal(err)
	}
	return n
}

// TLS-ALPN-01 behind a load balancer: the CA's validation reaches edge-b
// (its DNS name points there) while edge-a places the order. edge-b's
// daemon keeps its tls-alpn listener open and answers with the challenge
// certificate it builds from the key authorization edge-a shared through
// etcd; edge-a's own listener, on another address, is never reached. Then
// every node applies the new version. Also: the shared challenge is sealed
// (a node with another fleet key cannot read it) and gone after the order.
func TestFleetTLSALPNAnsweredByAnotherNode(t *testing.T) {
	t.Parallel()
	issued := &issuances{}
	ca := testca.StartT(t, testca.Options{Log: issued})
	eps := startCluster(t, 3)
	const domain = "alpn.example.test"
	pointAt(t, ca, domain, "127.0.0.12") // the "load balancer" sends the CA to edge-b
	s := newFleetSetup(t, ca, domain)
	a := s.newALPNNode(t, "edge-a", "127.0.0.11", eps[0])
	b := s.newALPNNode(t, "edge-b", "127.0.0.12", eps[1])

	// edge-b's daemon issues first (the CA reaches edge-b: its own challenge).
	b.daemon(t)
	eventually(t, 90*time.Second, "a first version published", func() bool {
		p, err := b.fleet.Latest(context.Background(), "www")
		return err == nil && p != nil
	})

	// edge-a applies it, then orders; the CA validates at edge-b.
	if res := a.pass(t, context.Background(), agent.PassOptions{}); res.Action != status.Synced || !res.OK() {
		t.Fatalf("edge-a's pass after edge-b's issuance: %+v", res)
	}
	res := a.pass(t, context.Background(), agent.PassOptions{Force: true, Names: []string{"www"}})
	if res.Action != status.Renewed || !res.OK() {
		t.Fatalf("forced renewal on edge-a (tls-alpn-01 answered by edge-b): %+v", res)
	}
	p, err := b.fleet.Latest(context.Background(), "www")
	if err != nil || p == nil || p.Serial != res.Serial || p.Node != "edge-a" {
		t.Fatalf("fleet's version after edge-a's renewal: %+v, %v; want serial %s from edge-a", p, err, res.Serial)
	}
	eventually(t, applyLimit, "edge-b applies edge-a's version", func() bool {
		return b.serial(t) == p.Serial && a.serial(t) == p.Serial
	})
	if n, o := issued.Count(), issued.Orders(); n != 2 || o != 2 {
		t.Fatalf("Pebble got %d orders and issued %d certificates, want 2 and 2", o, n)
	}

	// The challenge was withdrawn after the order.
	left, err := b.fleet.Client().Get(context.Background(), s.prefix+"/tls-alpn/", clientv3.WithPrefix())
	if err != nil || len(left.Kvs) != 0 {
		t.Errorf("tls-alpn-01 challenges left in etcd after the orders: %v, %v", err, left)
	}

	// Sealed with the fleet key: another key reads nothing.
	ctx := context.Background()
	if err := a.fleet.PutALPN(ctx, domain, domain, "token.thumbprint"); err != nil {
		t.Fatal(err)
	}
	id, ka, ok, err := b.fleet.ALPN(ctx, domain)
	if err != nil || !ok || id != domain || ka != "token.thumbprint" {
		t.Fatalf("ALPN on another node: %q %q %v %v", id, ka, ok, err)
	}
	other, err := fleet.Open(fleet.Options{Endpoints: eps[2:], Prefix: s.prefix, Node: "edge-other", Key: newKey(t), Log: logger(t, "edge-other")})
	if err != nil {
		t.Fatal(err)
	}
	defer other.Close()
	if _, _, ok, err := other.ALPN(ctx, domain); ok || !errors.Is(err, fleet.ErrWrongKey) {
		t.Errorf("ALPN with another fleet key: ok %v, err %v; want ErrWrongKey", ok, err)
	}
	if err := a.fleet.DeleteALPN(ctx, domain); err != nil {
		t.Fatal(err)
	}
	if _, _, ok, err := b.fleet.ALPN(ctx, domain); ok || err != nil {
		t.Errorf("ALPN after DeleteALPN: ok %v, err %v", ok, err)
	}
	if _, _, ok, err := b.fleet.ALPN(ctx, "../certs/www"); ok || err != nil {
		t.Errorf("ALPN of a name that is no server name: ok %v, err %v", ok, err)
	}
}
