package fleet_test

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"math/rand/v2"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/renewer/renewer/internal/agent"
	"github.com/renewer/renewer/internal/cli"
	"github.com/renewer/renewer/internal/config"
	"github.com/renewer/renewer/internal/fleet"
	"github.com/renewer/renewer/internal/metrics"
	"github.com/renewer/renewer/internal/metrics/metricstest"
	"github.com/renewer/renewer/internal/report"
	"github.com/renewer/renewer/internal/status"
	"github.com/renewer/renewer/internal/store"
	"github.com/renewer/renewer/internal/testca"
)

// convNode is an edge server whose "nginx" serves what its reload step
// last loaded (as nginx does): the reload copies the installed files into
// the directory its endpoint serves, and fails while the node's broken
// file exists, so the endpoint keeps serving the old certificate.
type convNode struct {
	*node
	broken  string // while this file exists, the reload fails
	stale   string // while this file exists, the reload succeeds but loads nothing new
	metrics *metrics.Metrics
}

const goneAfter = 3 * time.Second

func (s *fleetSetup) newConvNode(t *testing.T, name, ip, endpoint string) *convNode {
	t.Helper()
	dir := t.TempDir()
	n := &convNode{node: &node{name: name, file: filepath.Join(dir, "renewer.hcl"), hookFile: filepath.Join(dir, "deployed")},
		broken: filepath.Join(dir, "broken"), stale: filepath.Join(dir, "stale"), metrics: metrics.New("test")}
	installDir, servedDir := filepath.Join(dir, "installed"), filepath.Join(dir, "served")
	if err := os.MkdirAll(servedDir, 0o700); err != nil {
		t.Fatal(err)
	}
	src := fmt.Sprintf(`
storage { path = "state" }
fleet {
  node            = %q
  key_file        = %q
  lock_ttl        = "2s"
  node_gone_after = %q
  etcd {
    endpoints    = [%q]
    prefix       = %q
    dial_timeout = "2s"
  }
}
acme {
  directory    = %q
  email        = "ops@example.test"
  accept_terms = true
  ca_bundle    = %q
}
daemon {
  check     = "@every 1h"
  jitter    = "0s"
  retry_min = "1s"
  retry_max = "2s"
}
reload "web" {
  command = ["/bin/sh", "-c", "if [ -e \"$BROKEN\" ]; then echo 'nginx: [emerg] cannot load certificate' >&2; exit 1; fi; if [ -e \"$STALE\" ]; then exit 0; fi; cp \"$SRC/fullchain.pem\" \"$SRC/privkey.pem\" \"$DST/\""]
  env     = { BROKEN = %q, STALE = %q, SRC = %q, DST = %q }
}
certificate "www" {
  domains = [%q]
  ari     = false
  challenge "http" { listen = "%s:%d" }
  install { dir = %q }
  reload = ["web"]
  verify {
    endpoint    = %q
    server_name = %q
    timeout     = "3s"
  }
}
`, name, s.key, goneAfter, endpoint, s.prefix, s.ca.Directory, s.ca.CABundle, n.broken, n.stale, installDir, servedDir,
		s.domain, ip, s.ca.HTTPPort, installDir, serveInstalled(t, servedDir), s.domain)
	writeFile(t, n.file, src, 0o600)
	cfg, err := config.Load(n.file)
	if err != nil {
		t.Fatalf("config of %s: %v\n%s", name, err, src)
	}
	n.cfg = cfg
	b, err := fleet.OpenConfig(cfg.Fleet, logger(t, name))
	if err != nil {
		t.Fatal(err)
	}
	b.SetRequestErrorHook(n.metrics.EtcdRequestError)
	t.Cleanup(func() { b.Close() })
	n.fleet = b
	return n
}

// daemon runs `renewer run` for the node, with its reporter (metrics and
// logs) and a fleet round every 200ms, until the test ends or stop.
func (n *convNode) daemon(t *testing.T) {
	t.Helper()
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	log := logger(t, n.name)
	go func() {
		done <- agent.RunDaemon(ctx, n.cfg, agent.DaemonOptions{
			Options: agent.Options{Log: log, Fleet: n.fleet},
			Load:    func() (*config.Config, error) { return n.cfg, nil },
			Rand:    rand.New(rand.NewPCG(1, 2)),
			NewReporter: func(c *config.Config, st *store.Store) (agent.PassReporter, error) {
				return report.New(c, report.Options{Log: log, Metrics: n.metrics})
			},
			FleetEvery: 200 * time.Millisecond,
		})
	}()
	n.stop = func() {
		cancel()
		if err := <-done; err != nil {
			t.Errorf("daemon of %s: %v", n.name, err)
		}
		n.stop = func() {}
	}
	t.Cleanup(func() { n.stop() })
}

// statusOf runs `renewer status --json` on the node and returns the exit
// code and certificate "www".
func (n *convNode) statusOf(t *testing.T) (int, cli.CertStatus) {
	t.Helper()
	var out, errb bytes.Buffer
	code := cli.Run(context.Background(), deps, []string{"status", "--json", "--config", n.file}, &out, &errb)
	var rep cli.StatusReport
	if err := json.Unmarshal(out.Bytes(), &rep); err != nil || len(rep.Certificates) != 1 {
		t.Fatalf("status --json on %s (exit %d): %v\n%s\n%s", n.name, code, err, out.String(), errb.String())
	}
	return code, rep.Certificates[0]
}

// statusTable is `renewer status` on the node.
func (n *convNode) statusTable(t *testing.T) string {
	var out, errb bytes.Buffer
	cli.Run(context.Background(), deps, []string{"status", "--config", n.file}, &out, &errb)
	return out.String()
}

func fleetNode(cs cli.CertStatus, name string) (cli.FleetNode, bool) {
	for _, n := range cs.Fleet {
		if n.Node == name {
			return n, true
		}
	}
	return cli.FleetNode{}, false
}

// Three edge servers converge on each version. Then one node's reload
// breaks and a new version is published: that node keeps serving the old
// certificate, and `status` (JSON and table) on another node shows the
// certificate unconverged since the publication, naming the node, the
// serial its endpoint serves and its reload error; the not-converged
// metric rises. Once the reload is fixed, the node's retried deploy
// converges the fleet, status says so and the metric returns to 0. Then a
// stopped node is named gone once node_gone_after has passed, not before.
func TestFleetConvergence(t *testing.T) {
	t.Parallel()
	ca := testca.StartT(t, testca.Options{})
	eps := startCluster(t, 3)
	const domain = "conv.example.test"
	pointAt(t, ca, domain, "127.0.0.5")
	s := newFleetSetup(t, ca, domain)
	nodes := []*convNode{
		s.newConvNode(t, "edge-0", "127.0.0.5", eps[0]),
		s.newConvNode(t, "edge-1", "127.0.0.6", eps[1]),
		s.newConvNode(t, "edge-2", "127.0.0.7", eps[2]),
	}
	for _, n := range nodes {
		n.daemon(t)
	}
	watcher := nodes[0]
	reg := watcher.metrics.Registry()
	converged := func(serial string) func() bool {
		return func() bool {
			c, ok := metricstest.Value(t, reg, "renewer_fleet_converged", map[string]string{"name": "www"})
			u, _ := metricstest.Value(t, reg, "renewer_fleet_unconverged_seconds", map[string]string{"name": "www"})
			k, err := watcher.agent(t).FleetCondition(context.Background(), "www")
			return ok && c == 1 && u == 0 && err == nil && k.Converged && k.Serial == serial && k.Live == 3
		}
	}

	// The first version: every node converges on it.
	var first *store.Published
	eventually(t, 90*time.Second, "a version published", func() bool {
		p, err := watcher.fleet.Latest(context.Background(), "www")
		first = p
		return err == nil && p != nil
	})
	eventually(t, 30*time.Second, "the fleet converged on "+first.Serial, converged(first.Serial))
	if code, cs := watcher.statusOf(t); code != cli.ExitOK || cs.FleetConverged == nil || !*cs.FleetConverged ||
		!cs.FleetUnconvergedSince.IsZero() || cs.FleetSerial != first.Serial {
		t.Fatalf("status after the first version: exit %d, %+v", code, cs)
	}

	// edge-2's reload breaks; a forced renewal on edge-0 publishes a new version.
	writeFile(t, nodes[2].broken, "", 0o600)
	a := watcher.agent(t)
	res, err := a.RunOnce(context.Background(), agent.PassOptions{Force: true, Names: []string{"www"}})
	if err != nil || len(res) != 1 || res[0].Action != status.Renewed || !res[0].OK() {
		t.Fatalf("forced renewal on edge-0: %+v, %v", res, err)
	}
	second := res[0].Serial
	var cs cli.CertStatus
	var code int
	eventually(t, 20*time.Second, "status shows edge-2 behind with its reload error, the others current", func() bool {
		code, cs = watcher.statusOf(t)
		n, ok := fleetNode(cs, "edge-2")
		n0, _ := fleetNode(cs, "edge-0")
		n1, _ := fleetNode(cs, "edge-1")
		return ok && n.State == string(status.NodeBehind) && strings.Contains(n.Error, "cannot load certificate") &&
			n.Serial == second && n.ServedSerial == first.Serial &&
			n0.State == string(status.NodeCurrent) && n1.State == string(status.NodeCurrent)
	})
	if cs.FleetConverged == nil || *cs.FleetConverged || cs.FleetSerial != second || cs.FleetUnconvergedSince.IsZero() ||
		code != cli.ExitFailure || len(cs.FleetProblems) == 0 || !strings.Contains(cs.FleetProblems[0], "fleet_not_converged") ||
		!strings.Contains(cs.FleetProblems[0], "edge-2") {
		t.Fatalf("status with edge-2's reload failing: exit %d, converged %v since %v, serial %s (want %s), problems %q",
			code, cs.FleetConverged, cs.FleetUnconvergedSince, cs.FleetSerial, second, cs.FleetProblems)
	}
	for _, other := range []string{"edge-0", "edge-1"} {
		if n, _ := fleetNode(cs, other); n.State != string(status.NodeCurrent) || n.ServedSerial != second {
			t.Errorf("%s while edge-2 is broken: %+v", other, n)
		}
	}
	table := watcher.statusTable(t)
	for _, want := range []string{"NO, since", "behind: edge-2", "BEHIND: ", "cannot load certificate", second} {
		if !strings.Contains(table, want) {
			t.Errorf("status table lacks %q:\n%s", want, table)
		}
	}
	var u1 float64
	eventually(t, 10*time.Second, "renewer_fleet_unconverged_seconds above 0", func() bool {
		u1, _ = metricstest.Value(t, reg, "renewer_fleet_unconverged_seconds", map[string]string{"name": "www"})
		return u1 > 0
	})
	time.Sleep(1100 * time.Millisecond)
	u2, _ := metricstest.Value(t, reg, "renewer_fleet_unconverged_seconds", map[string]string{"name": "www"})
	cur, ok := metricstest.Value(t, reg, "renewer_fleet_node_current", map[string]string{"name": "www", "node": "edge-2"})
	conv, _ := metricstest.Value(t, reg, "renewer_fleet_converged", map[string]string{"name": "www"})
	if u2 < u1+1 || !ok || cur != 0 || conv != 0 {
		t.Errorf("metrics while unconverged: unconverged_seconds %v then %v (want it to rise by 1s), edge-2 current %v (%v), converged %v",
			u1, u2, cur, ok, conv)
	}
	t.Logf("unconverged: %v s, then %v s", u1, u2)

	// Fixed: edge-2's retried deploy loads the new certificate.
	if err := os.Remove(nodes[2].broken); err != nil {
		t.Fatal(err)
	}
	eventually(t, 30*time.Second, "the fleet converged on "+second, converged(second))
	code, cs = watcher.statusOf(t)
	n2, _ := fleetNode(cs, "edge-2")
	if code != cli.ExitOK || cs.FleetConverged == nil || !*cs.FleetConverged || n2.State != string(status.NodeCurrent) ||
		n2.ServedSerial != second || n2.Error != "" || len(cs.FleetProblems) != 0 {
		t.Fatalf("status once edge-2 is fixed: exit %d, converged %v, edge-2 %+v, problems %q", code, cs.FleetConverged, n2, cs.FleetProblems)
	}
	if na, ok := metricstest.Value(t, reg, "renewer_fleet_served_not_after_timestamp_seconds", map[string]string{"name": "www", "node": "edge-2"}); !ok ||
		int64(na) != res[0].NotAfter.Unix() {
		t.Errorf("edge-2's served not-after %v (%v), want %d", na, ok, res[0].NotAfter.Unix())
	}
	t.Logf("status once converged:\n%s", watcher.statusTable(t))

	// edge-2's reload now succeeds without loading anything (its server
	// points elsewhere): its endpoint keeps serving the old certificate,
	// which its own verification finds.
	writeFile(t, nodes[2].stale, "", 0o600)
	res, err = watcher.agent(t).RunOnce(context.Background(), agent.PassOptions{Force: true, Names: []string{"www"}})
	if err != nil || len(res) != 1 || res[0].Action != status.Renewed || !res[0].OK() {
		t.Fatalf("second forced renewal on edge-0: %+v, %v", res, err)
	}
	third := res[0].Serial
	eventually(t, 20*time.Second, "status shows edge-2 behind, its endpoint serving the old serial", func() bool {
		code, cs = watcher.statusOf(t)
		n, _ := fleetNode(cs, "edge-2")
		return cs.FleetSerial == third && n.State == string(status.NodeBehind) && n.Serial == third && n.ServedSerial == second &&
			strings.Contains(n.Error, "serves serial "+second)
	})
	if code != cli.ExitFailure || cs.FleetConverged == nil || *cs.FleetConverged {
		t.Errorf("status with edge-2 serving the old certificate: exit %d, converged %v", code, cs.FleetConverged)
	}
	t.Logf("status with edge-2 serving the old certificate:\n%s", watcher.statusTable(t))
	if err := os.Remove(nodes[2].stale); err != nil {
		t.Fatal(err)
	}
	eventually(t, 30*time.Second, "the fleet converged on "+third, converged(third))

	// edge-1 stops: named gone once node_gone_after has passed since its
	// last report, not before.
	nodes[1].stop()
	stopped := time.Now()
	var last time.Time
	reps, err := watcher.fleet.Reports(context.Background(), "www")
	for _, r := range reps {
		if r.Node == "edge-1" {
			last = r.At
		}
	}
	if err != nil || last.IsZero() {
		t.Fatalf("edge-1's last report: %v, %v", reps, err)
	}
	if _, cs := watcher.statusOf(t); func() bool { n, _ := fleetNode(cs, "edge-1"); return n.State == string(status.NodeGone) }() {
		t.Fatalf("edge-1 named gone at once: %+v", cs.Fleet)
	}
	eventually(t, goneAfter+5*time.Second, "edge-1 named gone", func() bool {
		code, cs = watcher.statusOf(t)
		n, _ := fleetNode(cs, "edge-1")
		return n.State == string(status.NodeGone)
	})
	took := time.Since(stopped)
	if silent := time.Since(last); silent < goneAfter {
		t.Errorf("edge-1 named gone %s after its last report; node_gone_after is %s", silent, goneAfter)
	}
	if code != cli.ExitFailure || cs.FleetConverged == nil || !*cs.FleetConverged ||
		!strings.Contains(strings.Join(cs.FleetProblems, "\n"), "fleet_node_gone: Node edge-1") {
		t.Errorf("status with edge-1 gone: exit %d, converged %v, problems %q", code, cs.FleetConverged, cs.FleetProblems)
	}
	eventually(t, 5*time.Second, "metrics name edge-1 gone", func() bool {
		g, ok := metricstest.Value(t, reg, "renewer_fleet_node_gone", map[string]string{"node": "edge-1"})
		live, _ := metricstest.Value(t, reg, "renewer_fleet_nodes", map[string]string{"state": "live"})
		gone, _ := metricstest.Value(t, reg, "renewer_fleet_nodes", map[string]string{"state": "gone"})
		return ok && g == 1 && live == 2 && gone == 1
	})
	if table := watcher.statusTable(t); !strings.Contains(table, "GONE: no report for") {
		t.Errorf("status table with edge-1 gone:\n%s", table)
	}
	t.Logf("edge-1 named gone %s after it stopped (node_gone_after %s)", took.Round(time.Millisecond), goneAfter)
}
