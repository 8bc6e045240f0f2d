package fleet_test

import (
	"bytes"
	"context"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/renewer/renewer/internal/agent"
	"github.com/renewer/renewer/internal/cli"
	"github.com/renewer/renewer/internal/fleet"
	"github.com/renewer/renewer/internal/status"
	"github.com/renewer/renewer/internal/store"
	"github.com/renewer/renewer/internal/testca"
)

// syncBuf is the daemon's stderr, read while it runs.
type syncBuf struct {
	mu sync.Mutex
	b  bytes.Buffer
}

func (w *syncBuf) Write(p []byte) (int, error) {
	w.mu.Lock()
	defer w.mu.Unlock()
	return w.b.Write(p)
}

func (w *syncBuf) String() string {
	w.mu.Lock()
	defer w.mu.Unlock()
	return w.b.String()
}

// count is how many lines hold s.
func (w *syncBuf) count(s string) int {
	n := 0
	for l := range strings.Lines(w.String()) {
		if strings.Contains(l, s) {
			n++
		}
	}
	return n
}

// rewrite replaces old by new in file (old must be there).
func rewrite(t *testing.T, file string, pairs ...string) {
	t.Helper()
	src, err := readAll(file)
	if err != nil {
		t.Fatal(err)
	}
	for i := 0; i+1 < len(pairs); i += 2 {
		if !strings.Contains(src, pairs[i]) {
			t.Fatalf("%s holds no %q:\n%s", file, pairs[i], src)
		}
		src = strings.Replace(src, pairs[i], pairs[i+1], 1)
	}
	writeFile(t, file, src, 0o600)
}

// reportOf is node's report of "www" in the fleet b reads, nil when none.
func reportOf(t *testing.T, b *fleet.Backend, node string) *store.NodeReport {
	t.Helper()
	reps, err := b.Reports(context.Background(), "www")
	if err != nil {
		return nil
	}
	for _, r := range reps {
		if r.Node == node {
			return &r
		}
	}
	return nil
}

// A changed fleet block applied with SIGHUP, without a restart: the daemon
// (`renewer run`, in this process, sent real SIGHUPs) starts as edge-r on
// etcd cluster A and answers the HTTP-01 tokens of a renewal another node
// of A orders. Two bad changes are refused with the reason logged and the
// old connection kept: endpoints that do not answer (with a new node name),
// then a fleet key that does not open what the fleet holds; the daemon
// still works on A as edge-r. Then a good change: cluster B, node name
// edge-r2, another lock TTL. edge-r2's report appears in B at once,
// edge-r's leaves A, and the daemon now works against B: it answers the
// token of an order a node of B places and applies that node's version
// through B's watch. Last, the fleet block removed: the node leaves B and
// runs alone. The daemon runs throughout.
func TestFleetReloadAppliesChangedBlock(t *testing.T) {
	t.Parallel()
	issued := &issuances{}
	ca := testca.StartT(t, testca.Options{Log: issued})
	epsA, epsB := startCluster(t, 1), startCluster(t, 1)
	const domain = "reload.example.test"
	pointAt(t, ca, domain, "127.0.0.13") // the CA reaches edge-r, whichever node orders
	s := newFleetSetup(t, ca, domain)
	r := s.newNode(t, "edge-r", "127.0.0.13", epsA[0]) // r.fleet: the test's reader of A
	o := s.newNode(t, "edge-o", "127.0.0.14", epsA[0])
	p := s.newNode(t, "edge-p", "127.0.0.15", epsB[0]) // p.fleet: the test's reader of B

	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	log := &syncBuf{}
	exited := make(chan int, 1)
	go func() {
		exited <- cli.Run(ctx, deps, []string{"run", "--log-level", "debug", "--config", r.file}, log, log)
	}()
	waitLog := func(what string, n int) {
		t.Helper()
		eventually(t, 60*time.Second, fmt.Sprintf("%d log lines with %q", n, what), func() bool {
			select {
			case code := <-exited:
				t.Fatalf("the daemon exited (%d):\n%s", code, log.String())
			default:
			}
			return log.count(what) >= n
		})
	}
	hup := func() {
		t.Helper()
		if err := syscall.Kill(os.Getpid(), syscall.SIGHUP); err != nil {
			t.Fatal(err)
		}
	}
	defer func() {
		if t.Failed() {
			t.Logf("daemon log:\n%s", log.String())
		}
	}()
	waitLog(`msg="renewer daemon started"`, 1) // SIGHUP is caught from here on

	// edge-r obtains the first version on A and reports it.
	var first *store.Published
	eventually(t, 90*time.Second, "edge-r publishes on A and reports it", func() bool {
		first, _ = r.fleet.Latest(context.Background(), "www")
		rep := reportOf(t, r.fleet, "edge-r")
		return first != nil && rep != nil && rep.Serial == first.Serial && rep.Applied
	})

	// Bad change 1: endpoints that do not answer, and a new node name.
	src, _ := readAll(r.file)
	dead := testca.FreePortT(t)
	rewrite(t, r.file, fmt.Sprintf("%q", epsA[0]), fmt.Sprintf(`"http://127.0.0.1:%d"`, dead), `node     = "edge-r"`, `node     = "edge-r2"`)
	hup()
	waitLog("config reload refused", 1)
	if !strings.Contains(log.String(), fmt.Sprintf("etcd at http://127.0.0.1:%d does not answer", dead)) {
		t.Errorf("the refusal does not name the unreachable endpoints:\n%s", log.String())
	}

	// Bad change 2: a fleet key that does not open what the fleet holds.
	writeFile(t, r.file, src, 0o600)
	k, err := fleet.NewKey()
	if err != nil {
		t.Fatal(err)
	}
	wrongKey := filepath.Join(t.TempDir(), "wrong.key")
	writeFile(t, wrongKey, k.String()+"\n", 0o600)
	rewrite(t, r.file, fmt.Sprintf("key_file = %q", s.key), fmt.Sprintf("key_file = %q", wrongKey))
	hup()
	waitLog("config reload refused", 2)
	if !strings.Contains(log.String(), "fleet key does not open what the fleet holds") {
		t.Errorf("the refusal does not name the wrong fleet key:\n%s", log.String())
	}
	if n := log.count("config reloaded") + log.count("fleet block applied"); n != 0 {
		t.Fatalf("%d reloads applied; both changes should have been refused", n)
	}

	// The old block is in force: edge-o renews on A, the CA reaches edge-r,
	// which answers edge-o's token from A and applies edge-o's version.
	if res := o.pass(t, context.Background(), agent.PassOptions{}); res.Action != status.Synced || !res.OK() {
		t.Fatalf("edge-o's first pass: %+v", res)
	}
	res := o.pass(t, context.Background(), agent.PassOptions{Force: true, Names: []string{"www"}})
	if res.Action != status.Renewed || !res.OK() {
		t.Fatalf("edge-o's renewal on A after the refused reloads (token answered by edge-r): %+v", res)
	}
	eventually(t, applyLimit, "edge-r applies edge-o's version and reports it on A as edge-r", func() bool {
		rep := reportOf(t, r.fleet, "edge-r")
		return r.serial(t) == res.Serial && rep != nil && rep.Serial == res.Serial && rep.Applied
	})
	if rep := reportOf(t, r.fleet, "edge-r2"); rep != nil {
		t.Errorf("a refused node name reported on A: %+v", rep)
	}

	// The good change: cluster B, node edge-r2, lock TTL 3s.
	writeFile(t, r.file, src, 0o600)
	rewrite(t, r.file, fmt.Sprintf("%q", epsA[0]), fmt.Sprintf("%q", epsB[0]), `node     = "edge-r"`, `node     = "edge-r2"`,
		`lock_ttl = "2s"`, `lock_ttl = "3s"`)
	hup()
	waitLog("fleet block applied", 1)
	if !strings.Contains(log.String(), "node=edge-r2 was=edge-r") || !strings.Contains(log.String(), "lock_ttl=3s") {
		t.Errorf("the applied change is not logged with its node and lock TTL:\n%s", log.String())
	}
	eventually(t, 10*time.Second, "edge-r2 reports on B at once", func() bool {
		rep := reportOf(t, p.fleet, "edge-r2")
		return rep != nil && rep.Serial == res.Serial && rep.Applied
	})
	if rep := reportOf(t, r.fleet, "edge-r"); rep != nil {
		t.Errorf("edge-r's report stays on A after it left: %+v", rep)
	}

	// The daemon works against B: edge-p orders on B, edge-r2 answers its
	// token from B and applies its version through B's watch.
	res2 := p.pass(t, context.Background(), agent.PassOptions{Force: true, Names: []string{"www"}})
	if res2.Action != status.Obtained || !res2.OK() { // edge-p's first certificate
		t.Fatalf("edge-p's order on B (token answered by edge-r2): %+v", res2)
	}
	eventually(t, applyLimit, "edge-r2 applies edge-p's version from B and reports it", func() bool {
		rep := reportOf(t, p.fleet, "edge-r2")
		return r.serial(t) == res2.Serial && rep != nil && rep.Serial == res2.Serial && rep.Applied
	})
	if latestA, _ := r.fleet.Latest(context.Background(), "www"); latestA == nil || latestA.Serial != res.Serial {
		t.Errorf("cluster A's version changed after edge-r left it: %+v", latestA)
	}

	// Fleet mode off: the node leaves B and goes on alone.
	cur, err := readAll(r.file)
	if err != nil {
		t.Fatal(err)
	}
	start, end := strings.Index(cur, "fleet {"), strings.Index(cur, "acme {")
	if start < 0 || end < start {
		t.Fatalf("no fleet block before the acme block:\n%s", cur)
	}
	writeFile(t, r.file, cur[:start]+cur[end:], 0o600)
	hup()
	waitLog("fleet mode off", 1)
	waitLog("config reloaded", 2)
	if rep := reportOf(t, p.fleet, "edge-r2"); rep != nil {
		t.Errorf("edge-r2's report stays on B after fleet mode was turned off: %+v", rep)
	}

	cancel()
	select {
	case code := <-exited:
		if code != cli.ExitOK {
			t.Errorf("renewer run exited %d", code)
		}
	case <-time.After(60 * time.Second):
		t.Fatal("the daemon did not stop")
	}
	if n := log.count(`msg="renewer daemon started"`); n != 1 {
		t.Errorf("the daemon started %d times", n)
	}
}
