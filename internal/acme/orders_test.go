package acme

import (
	"context"
	"log/slog"
	"math/big"
	"strconv"
	"strings"
	"sync"
	"testing"

	"github.com/go-acme/lego/v4/certificate"

	"github.com/renewer/renewer/internal/testca"
)

// lineCounter counts the CA's log lines that contain a string.
type lineCounter struct {
	mu   sync.Mutex
	want string
	n    int
}

func (l *lineCounter) Write(p []byte) (int, error) {
	l.mu.Lock()
	defer l.mu.Unlock()
	l.n += strings.Count(string(p), l.want)
	return len(p), nil
}

func (l *lineCounter) count() int {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.n
}

// Orders share one lego client: the directory is fetched once, not per order.
func TestOrdersShareClient(t *testing.T) {
	t.Parallel()
	dirGets := &lineCounter{want: "GET /dir -> calling handler()"}
	ca := testca.StartT(t, testca.Options{Log: dirGets})
	solver := NewHTTPSolver(slog.New(slog.DiscardHandler))
	defer solver.Close()
	c := testClient(t, ca, solver)
	listen := "127.0.0.1:" + strconv.Itoa(ca.HTTPPort)
	before := -1
	for i, name := range []string{"a.example.test", "b.example.test", "c.example.test"} {
		if _, err := c.Obtain(context.Background(), Request{Domains: []string{name}, Listen: listen}); err != nil {
			t.Fatalf("obtain %s: %v", name, err)
		}
		if i == 0 {
			before = dirGets.count()
		}
	}
	if after := dirGets.count(); after != before {
		t.Errorf("directory fetched %d more times for two more orders, want 0", after-before)
	}
	if len(c.orders) != 1 {
		t.Errorf("%d lego clients for orders of one kind, want 1", len(c.orders))
	}
}

// An order naming in "replaces" a certificate the CA cannot find is refused
// at new-order, at every retry: the client orders once more without
// "replaces" and gets the certificate. (Pebble v2.10.1 refuses this way for
// its own certificates whose serial has its top bit set: it looks the
// DER-encoded serial up among serials encoded without the sign byte.)
func TestReplacesRefusedOrdersWithout(t *testing.T) {
	t.Parallel()
	ca := testca.StartT(t, testca.Options{})
	solver := NewHTTPSolver(slog.New(slog.DiscardHandler))
	defer solver.Close()
	c := testClient(t, ca, solver)
	refused := &lineCounter{want: "ordering without"}
	c.opts.Log = slog.New(slog.NewTextHandler(refused, nil))
	listen := "127.0.0.1:" + strconv.Itoa(ca.HTTPPort)
	first, err := c.Obtain(context.Background(), Request{Domains: []string{"r.example.test"}, Listen: listen})
	if err != nil {
		t.Fatal(err)
	}
	leaf := leafOf(t, first)
	unknown := *leaf
	unknown.SerialNumber = new(big.Int).Add(leaf.SerialNumber, big.NewInt(1)) // same issuer, never issued
	id, err := certificate.MakeARICertID(&unknown)
	if err != nil {
		t.Fatal(err)
	}
	second, err := c.Obtain(context.Background(), Request{Domains: []string{"r.example.test"}, Listen: listen, Replaces: id, ReplacesAt: ca.Directory})
	if err != nil {
		t.Fatalf("order naming an unknown certificate in replaces: %v", err)
	}
	if got := leafOf(t, second); got.SerialNumber.Cmp(leaf.SerialNumber) == 0 {
		t.Error("no new certificate")
	}
	if refused.count() == 0 {
		t.Error("the CA never refused the order with replaces: the test proves nothing")
	}
}
