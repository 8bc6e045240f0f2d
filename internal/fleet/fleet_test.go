package fleet_test

import (
	"bytes"
	"context"
	"encoding/json"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/renewer/renewer/internal/agent"
	"github.com/renewer/renewer/internal/cli"
	"github.com/renewer/renewer/internal/status"
	"github.com/renewer/renewer/internal/store"
	"github.com/renewer/renewer/internal/testca"
)

// applyLimit is how soon after a publication every node must serve it.
const applyLimit = 10 * time.Second

// Three edge servers, a three-member etcd cluster and one Pebble. All three
// daemons start together with nothing installed: exactly one orders, and
// every node installs, hooks and verifies that serial. Then a forced
// renewal on a node the CA does not reach (its DNS name points at another
// node, as behind a load balancer) succeeds because the other node answers
// the token from etcd; again exactly one order, and every node applies the
// new serial within 10 s through its watch. Both orderers use the same
// ACME account. `renewer status --json` on any node shows the fleet.
func TestFleetOneRenewalEveryNodeApplies(t *testing.T) {
	t.Parallel()
	issued := &issuances{}
	ca := testca.StartT(t, testca.Options{Log: issued})
	eps := startCluster(t, 3)
	const domain = "edge.example.test"
	pointAt(t, ca, domain, "127.0.0.3") // the "load balancer" sends the CA to edge-1
	s := newFleetSetup(t, ca, domain)
	nodes := []*node{
		s.newNode(t, "edge-0", "127.0.0.2", eps[0]),
		s.newNode(t, "edge-1", "127.0.0.3", eps[1]),
		s.newNode(t, "edge-2", "127.0.0.4", eps[2]),
	}
	for _, n := range nodes {
		n.daemon(t)
	}

	// First issuance: one order for the whole fleet.
	var first *store.Published
	eventually(t, 90*time.Second, "a version published", func() bool {
		p, err := nodes[0].fleet.Latest(context.Background(), "www")
		first = p
		return err == nil && p != nil
	})
	waitApplied(t, nodes, first)
	if n, o := issued.Count(), issued.Orders(); n != 1 || o != 1 {
		t.Fatalf("Pebble got %d orders and issued %d certificates for one renewal of a 3-node fleet, want 1 and 1", o, n)
	}

	// A forced renewal (`renewer renew --force` beside the daemon) on a
	// node that did not order the first time and that the CA does not reach.
	orderer := nodes[0]
	if first.Node == "edge-0" {
		orderer = nodes[2]
	}
	res := orderer.pass(t, context.Background(), agent.PassOptions{Force: true, Names: []string{"www"}})
	if res.Action != status.Renewed || !res.OK() {
		t.Fatalf("forced renewal on %s (challenge answered by edge-1): %+v", orderer.name, res)
	}
	second, err := nodes[1].fleet.Latest(context.Background(), "www")
	if err != nil || second == nil || second.Serial != res.Serial || second.Node != orderer.name {
		t.Fatalf("fleet's version after the renewal: %+v, %v; want serial %s from %s", second, err, res.Serial, orderer.name)
	}
	waitApplied(t, nodes, second)
	if n, o := issued.Count(), issued.Orders(); n != 2 || o != 2 {
		t.Fatalf("Pebble got %d orders and issued %d certificates for two renewals, want 2 and 2", o, n)
	}

	// One ACME account for the fleet: both orderers hold the same one.
	k1, a1 := nodeByName(nodes, first.Node).accountFiles(t)
	k2, a2 := orderer.accountFiles(t)
	if k1 == "" || k1 != k2 || a1 != a2 {
		t.Errorf("%s and %s use different ACME accounts:\n%s\n%s", first.Node, orderer.name, a1, a2)
	}

	// Status on any node shows every node's serial.
	var out, errb bytes.Buffer
	code := cli.Run(context.Background(), deps, []string{"status", "--json", "--config", nodes[2].file}, &out, &errb)
	var rep cli.StatusReport
	if err := json.Unmarshal(out.Bytes(), &rep); err != nil || len(rep.Certificates) != 1 {
		t.Fatalf("status --json (exit %d): %v\n%s\n%s", code, err, out.String(), errb.String())
	}
	cs := rep.Certificates[0]
	if cs.FleetSerial != second.Serial || len(cs.Fleet) != 3 || code != cli.ExitOK {
		t.Fatalf("status: exit %d, fleet serial %s, nodes %+v", code, cs.FleetSerial, cs.Fleet)
	}
	for _, fn := range cs.Fleet {
		if fn.Serial != second.Serial || fn.Behind || !fn.Applied || !fn.Verified {
			t.Errorf("status of %s: %+v", fn.Node, fn)
		}
	}
	out.Reset()
	cli.Run(context.Background(), deps, []string{"status", "--config", nodes[0].file}, &out, &errb)
	if !strings.Contains(out.String(), "FLEET (this node: edge-0)") || strings.Count(out.String(), second.Serial) < 3 {
		t.Errorf("status table:\n%s", out.String())
	}
}

// waitApplied waits until every node serves p (installed, hook run,
// verified on its own endpoint, reported to the fleet), at most applyLimit
// after p was published.
func waitApplied(t *testing.T, nodes []*node, p *store.Published) {
	t.Helper()
	limit := time.Until(p.At.Add(applyLimit))
	eventually(t, max(limit, 0), "every node applies serial "+p.Serial+" within 10s of its publication", func() bool {
		reps, err := nodes[0].fleet.Reports(context.Background(), "www")
		if err != nil || len(reps) != len(nodes) {
			return false
		}
		for _, r := range reps {
			if r.Serial != p.Serial || !r.Applied || !r.Verified {
				return false
			}
		}
		for _, n := range nodes {
			if n.serial(t) != p.Serial || !slices.Contains(n.deployed(), p.Serial) || !n.bundleServes(t) {
				return false
			}
		}
		return true
	})
	t.Logf("serial %s (from %s) applied on %d nodes %s after its publication", p.Serial, p.Node, len(nodes), time.Since(p.At).Round(time.Millisecond))
}

func nodeByName(nodes []*node, name string) *node {
	for _, n := range nodes {
		if n.name == name {
			return n
		}
	}
	return nodes[0]
}
