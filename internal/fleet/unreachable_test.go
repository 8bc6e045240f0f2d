package fleet_test

import (
	"context"
	"errors"
	"strings"
	"testing"
	"time"

	"github.com/renewer/renewer/internal/agent"
	"github.com/renewer/renewer/internal/metrics"
	"github.com/renewer/renewer/internal/metrics/metricstest"
	"github.com/renewer/renewer/internal/report"
	"github.com/renewer/renewer/internal/status"
	"github.com/renewer/renewer/internal/testca"
)

// With etcd unreachable, a due certificate fails like any other failure:
// its state counts the failure (failures, last_result, next_attempt), the
// metrics count it (renewer_renewals_total{result="failure"},
// renewer_certificate_consecutive_failures), the next pass backs off, and
// the error says why etcd could not be reached instead of a bare
// "context deadline exceeded". No order reaches the CA.
func TestFleetEtcdUnreachableCountsAsFailure(t *testing.T) {
	t.Parallel()
	issued := &issuances{}
	ca := testca.StartT(t, testca.Options{Log: issued})
	p := newProxy(t, "127.0.0.1:9") // etcd's address; cut below: nothing listens
	p.Cut()
	s := newFleetSetup(t, ca, "down.example.test")
	n := s.newNode(t, "edge-0", "127.0.0.2", "http://"+p.addr)

	m := metrics.New("test")
	rep, err := report.New(n.cfg, report.Options{Metrics: m})
	if err != nil {
		t.Fatal(err)
	}
	a, err := agent.New(n.cfg, agent.Options{Log: logger(t, n.name), Fleet: n.fleet, Observer: rep})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(a.Close)

	res, err := a.RunOnce(context.Background(), agent.PassOptions{})
	if err != nil {
		t.Fatal(err)
	}
	r := res[0]
	if r.Action != status.Failed || r.Interrupted || r.Err == nil {
		t.Fatalf("pass with etcd unreachable: %+v", r)
	}
	if !errors.Is(r.Err, context.DeadlineExceeded) || !strings.Contains(r.Err.Error(), "nothing listens at the etcd endpoint") {
		t.Errorf("the error does not say why etcd is unreachable: %v", r.Err)
	}
	st, err := a.Store().LoadState("www")
	if err != nil {
		t.Fatal(err)
	}
	if st.Failures != 1 || st.LastResult != "failed" || !strings.Contains(st.LastError, "fleet: claim www") || !st.NextAttempt.After(time.Now()) {
		t.Errorf("state after the failure: %+v", st)
	}
	for _, c := range []struct {
		name   string
		labels map[string]string
	}{
		{"renewer_renewals_total", map[string]string{"name": "www", "result": "failure"}},
		{"renewer_certificate_consecutive_failures", map[string]string{"name": "www"}},
	} {
		if v, ok := metricstest.Value(t, m.Registry(), c.name, c.labels); !ok || v != 1 {
			t.Errorf("%s%v = %v (present %v), want 1", c.name, c.labels, v, ok)
		}
	}

	// The next pass backs off rather than trying again at once.
	res, err = a.RunOnce(context.Background(), agent.PassOptions{})
	if err != nil {
		t.Fatal(err)
	}
	if res[0].Action != status.Waiting {
		t.Errorf("second pass at once: %+v, want backing off", res[0])
	}
	if st2, _ := a.Store().LoadState("www"); st2.Failures != 1 || !st2.NextAttempt.Equal(st.NextAttempt) {
		t.Errorf("state after the backed-off pass: %+v", st2)
	}
	if o := issued.Orders(); o != 0 {
		t.Errorf("Pebble got %d orders while etcd was unreachable", o)
	}
}
