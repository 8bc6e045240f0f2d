package fleet_test

import (
	"context"
	"strings"
	"testing"
	"time"

	clientv3 "go.etcd.io/etcd/client/v3"

	"github.com/renewer/renewer/internal/agent"
	"github.com/renewer/renewer/internal/status"
	"github.com/renewer/renewer/internal/store"
	"github.com/renewer/renewer/internal/testca"
)

// The node renewing a certificate dies mid-order (its etcd connection is
// gone, so its lease expires): another node takes the lock over and
// finishes; the dead node installs nothing, as its publish is fenced.
func TestFleetTakeoverWhenRenewingNodeDies(t *testing.T) {
	t.Parallel()
	issued := &issuances{}
	ca := testca.StartT(t, testca.Options{Log: issued})
	eps := startCluster(t, 3)
	const domain = "takeover.example.test"
	pointAt(t, ca, domain, "127.0.0.6")
	s := newFleetSetup(t, ca, domain)
	a := s.newNode(t, "edge-a", "127.0.0.5", eps[0])
	b := s.newNode(t, "edge-b", "127.0.0.6", eps[1])

	// Watch for A's challenge token: then A holds the lock, mid-order.
	wctx, wcancel := context.WithCancel(context.Background())
	defer wcancel()
	tokens := b.fleet.Client().Watch(wctx, s.prefix+"/challenges/", clientv3.WithPrefix())
	ctxA, cancelA := context.WithCancel(context.Background())
	defer cancelA()
	resA := make(chan status.Result, 1)
	go func() { resA <- a.pass(t, ctxA, agent.PassOptions{}) }()
	select {
	case <-tokens:
	case <-time.After(60 * time.Second):
		t.Fatal("edge-a presented no challenge token within 60s")
	}
	locks, err := b.fleet.Client().Get(context.Background(), s.prefix+"/locks/certs/www/", clientv3.WithPrefix())
	if err != nil || len(locks.Kvs) != 1 {
		t.Fatalf("renewal lock while edge-a orders: %v, %d keys", err, len(locks.Kvs))
	}
	// Kill A: its etcd client goes first (no unlock, no revoke), then its work.
	a.fleet.Close()
	cancelA()

	b.daemon(t)
	var p *store.Published
	eventually(t, 60*time.Second, "edge-b publishes after edge-a's lease expired", func() bool {
		p, err = b.fleet.Latest(context.Background(), "www")
		return err == nil && p != nil
	})
	if p.Node != "edge-b" {
		t.Fatalf("published by %s, want edge-b", p.Node)
	}
	eventually(t, applyLimit, "edge-b serves what it published", func() bool { return b.serial(t) == p.Serial })
	if r := <-resA; r.Action != status.Failed {
		t.Errorf("killed edge-a's pass: %+v", r)
	}
	if got := a.serial(t); got != "" {
		t.Errorf("killed edge-a installed serial %s; the fleet has %s", got, p.Serial)
	}
	// The dead node's abandoned order may still complete at the CA; the
	// fleet serves one certificate all the same.
	if n := issued.Count(); n < 1 || n > 2 {
		t.Errorf("Pebble issued %d certificates", n)
	}
}

// A node cut off from etcd keeps serving what it has and does not renew;
// meanwhile another node renews; when the cut-off node is back, its watch
// notices and it installs the fleet's new version.
func TestFleetCutOffNodeCatchesUp(t *testing.T) {
	t.Parallel()
	issued := &issuances{}
	ca := testca.StartT(t, testca.Options{Log: issued})
	eps := startCluster(t, 3)
	const domain = "cutoff.example.test"
	pointAt(t, ca, domain, "127.0.0.7")
	s := newFleetSetup(t, ca, domain)
	a := s.newNode(t, "edge-a", "127.0.0.7", eps[0])
	px := newProxy(t, strings.TrimPrefix(eps[2], "http://"))
	c := s.newNode(t, "edge-c", "127.0.0.8", "http://"+px.addr)
	ctx := context.Background()
	wctx, wcancel := context.WithCancel(ctx)
	defer wcancel()
	changes := c.fleet.Changes(wctx)

	r := a.pass(t, ctx, agent.PassOptions{})
	if r.Action != status.Obtained || !r.OK() {
		t.Fatalf("first issuance on edge-a: %+v", r)
	}
	s1 := r.Serial
	if r := c.pass(t, ctx, agent.PassOptions{}); r.Action != status.Synced || r.Serial != s1 || !r.OK() {
		t.Fatalf("edge-c applying the fleet's version: %+v", r)
	}

	px.Cut()
	if r := c.pass(t, ctx, agent.PassOptions{Force: true}); r.Action != status.Failed || !strings.Contains(r.Err.Error(), "fleet") {
		t.Fatalf("forced renewal on cut-off edge-c: %+v", r)
	}
	if n, o := issued.Count(), issued.Orders(); n != 1 || o != 1 {
		t.Fatalf("cut-off edge-c ordered: Pebble got %d orders, issued %d certificates; want 1 and 1", o, n)
	}
	if got := c.serial(t); got != s1 {
		t.Fatalf("cut-off edge-c serves %q, want its installed %s", got, s1)
	}
	r = a.pass(t, ctx, agent.PassOptions{Force: true})
	if r.Action != status.Renewed || !r.OK() {
		t.Fatalf("renewal on edge-a while edge-c is cut off: %+v", r)
	}
	s2 := r.Serial

	for len(changes) > 0 {
		<-changes
	}
	px.Restore(t)
	select {
	case <-changes:
	case <-time.After(60 * time.Second):
		t.Fatal("edge-c's watch did not report the missed version within 60s of reconnecting")
	}
	if r := c.pass(t, ctx, agent.PassOptions{}); r.Action != status.Synced || r.Serial != s2 || !r.OK() {
		t.Fatalf("edge-c catching up: %+v", r)
	}
	if got, dep := c.serial(t), c.deployed(); got != s2 || len(dep) != 2 || dep[1] != s2 {
		t.Fatalf("edge-c after catching up: serial %s, hooks ran for %v; want %s", got, dep, s2)
	}
	reps, err := a.fleet.Reports(ctx, "www")
	if err != nil || len(reps) != 2 {
		t.Fatalf("reports: %+v, %v", reps, err)
	}
	for _, rep := range reps {
		if rep.Serial != s2 || !rep.Applied {
			t.Errorf("report of %s: %+v", rep.Node, rep)
		}
	}
}
