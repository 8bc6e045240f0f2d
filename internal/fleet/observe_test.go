package fleet_test

import (
	"context"
	"maps"
	"testing"
	"time"

	clientv3 "go.etcd.io/etcd/client/v3"

	"github.com/renewer/renewer/internal/fleet"
	"github.com/renewer/renewer/internal/metrics"
	"github.com/renewer/renewer/internal/metrics/metricstest"
)

// The node holding a renewal lock is recorded with it: released, or its
// lease ended (the holder died), the record goes too.
func TestLockHolders(t *testing.T) {
	t.Parallel()
	eps := startCluster(t, 3)
	ctx := context.Background()
	k := newKey(t)
	n1, n2 := open(t, eps[:1], "n1", k), open(t, eps[1:2], "n2", k)
	holders := func() map[string]string {
		t.Helper()
		h, err := n2.LockHolders(ctx)
		if err != nil {
			t.Fatal(err)
		}
		return h
	}
	if h := holders(); len(h) != 0 {
		t.Fatalf("holders before any claim: %v", h)
	}
	c1, ok, err := n1.Claim(ctx, "www")
	if err != nil || !ok {
		t.Fatalf("claim: %v %v", ok, err)
	}
	c2, ok, err := n2.Claim(ctx, "api")
	if err != nil || !ok {
		t.Fatalf("claim: %v %v", ok, err)
	}
	if h := holders(); !maps.Equal(h, map[string]string{"www": "n1", "api": "n2"}) {
		t.Fatalf("holders: %v", h)
	}
	c1.Release()
	if h := holders(); !maps.Equal(h, map[string]string{"api": "n2"}) {
		t.Fatalf("holders after www's release: %v", h)
	}
	// n2 dies holding api's lock: its lease ends.
	locks, err := n2.Client().Get(ctx, n2.Key("locks", "certs", "api")+"/", clientv3.WithPrefix())
	if err != nil || len(locks.Kvs) != 1 {
		t.Fatalf("lock keys: %v", err)
	}
	if _, err := n2.Client().Revoke(ctx, clientv3.LeaseID(locks.Kvs[0].Lease)); err != nil {
		t.Fatal(err)
	}
	if h := holders(); len(h) != 0 {
		t.Fatalf("holders after the holder's lease ended: %v", h)
	}
	c2.Release()
}

// Every failed etcd request is counted and reaches the metrics hook
// (renewer_fleet_etcd_request_errors_total); requests that succeed, and
// requests whose caller gave up, are not counted.
func TestEtcdRequestErrorsCounted(t *testing.T) {
	t.Parallel()
	eps := startCluster(t, 3)
	p := newProxy(t, eps[0][len("http://"):])
	b, err := fleet.Open(fleet.Options{Endpoints: []string{"http://" + p.addr}, Prefix: "/unit", Node: "n1", Key: newKey(t),
		DialTimeout: time.Second, Log: logger(t, "n1")})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { b.Close() })
	m := metrics.New("test")
	b.SetRequestErrorHook(m.EtcdRequestError)
	counted := func() float64 {
		v, _ := metricstest.Value(t, m.Registry(), "renewer_fleet_etcd_request_errors_total", nil)
		return v
	}
	ctx := context.Background()
	if _, err := b.Latest(ctx, "www"); err != nil {
		t.Fatal(err)
	}
	if b.RequestErrors() != 0 || counted() != 0 {
		t.Fatalf("errors after a good request: %d, metric %v", b.RequestErrors(), counted())
	}
	cctx, cancel := context.WithCancel(ctx)
	cancel()
	if _, err := b.Latest(cctx, "www"); err == nil {
		t.Fatal("a request with a cancelled context succeeded")
	}
	if b.RequestErrors() != 0 {
		t.Fatalf("a request its caller gave up was counted: %d", b.RequestErrors())
	}

	p.Cut()
	for range 2 {
		if _, err := b.Latest(ctx, "www"); err == nil {
			t.Fatal("Latest with etcd cut off succeeded")
		}
	}
	if n := b.RequestErrors(); n < 2 || counted() != float64(n) {
		t.Fatalf("after two failed reads: %d counted, metric %v", n, counted())
	}
	b.CountRequestError() // what a watch's error handling calls
	if n := b.RequestErrors(); counted() != float64(n) {
		t.Fatalf("CountRequestError: %d counted, metric %v", n, counted())
	}
	p.Restore(t)
	before := b.RequestErrors()
	eventually(t, 10*time.Second, "etcd reachable again", func() bool {
		_, err := b.Latest(ctx, "www")
		return err == nil
	})
	after := b.RequestErrors()
	if _, err := b.Latest(ctx, "www"); err != nil || b.RequestErrors() != after {
		t.Fatalf("a good request after the outage: %v, errors %d -> %d", err, after, b.RequestErrors())
	}
	t.Logf("errors counted: %d during the outage, %d while reconnecting", before, after-before)
}

// renewer run hands the backend fleet.Opener returns its metrics hook
// through this interface (internal/cli/run.go): the two must not drift.
var _ interface{ SetRequestErrorHook(func()) } = (*fleet.Backend)(nil)

// The daemon's fleet round reads the lock holders through this interface
// (internal/agent/fleetround.go).
var _ interface {
	LockHolders(context.Context) (map[string]string, error)
} = (*fleet.Backend)(nil)
