package acme

import (
	"context"
	"log/slog"
	"strconv"
	"strings"
	"sync"
	"testing"

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
