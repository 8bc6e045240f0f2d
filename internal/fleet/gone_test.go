package fleet_test

import (
	"bytes"
	"context"
	"fmt"
	"path/filepath"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/renewer/renewer/internal/cli"
	"github.com/renewer/renewer/internal/fleet"
	"github.com/renewer/renewer/internal/status"
	"github.com/renewer/renewer/internal/store"
)

// A stopped node is gone after node_gone_after: its reports age while a
// live daemon's are refreshed by its heartbeat, even with nothing to
// renew. `renewer fleet forget NODE` refuses a live node (unless
// --force), removes a gone node's reports, and says so for a node that
// never reported.
func TestStoppedNodeGoneThenForgotten(t *testing.T) {
	t.Parallel()
	eps := startCluster(t, 1)
	ctx := context.Background()
	const goneAfter = 10 * time.Second
	k := newKey(t)
	openNode := func(node string) *fleet.Backend {
		b, err := fleet.Open(fleet.Options{Endpoints: eps, Prefix: "/gone", Node: node, Key: k, Log: logger(t, node)})
		if err != nil {
			t.Fatal(err)
		}
		t.Cleanup(func() { b.Close() })
		return b
	}
	live, stopped := openNode("edge-live"), openNode("edge-stopped")
	for _, b := range []*fleet.Backend{live, stopped} {
		for _, name := range []string{"www", "api"} {
			if err := b.Report(ctx, name, store.NodeReport{Serial: "0a", Applied: true}); err != nil {
				t.Fatal(err)
			}
		}
	}
	// The live node's daemon reports at least every quarter of
	// node_gone_after (its fleet round, agent.FleetRound; shown with real
	// daemons by TestFleetConvergence): here, the same writes by hand.
	beat, stopBeat := context.WithCancel(ctx)
	defer stopBeat()
	go func() {
		for {
			select {
			case <-beat.Done():
				return
			case <-time.After(goneAfter / 4):
			}
			for _, name := range []string{"www", "api"} {
				live.Report(beat, name, store.NodeReport{Serial: "0a", Applied: true})
			}
		}
	}()
	stopped.Close() // the node stops: no more reports

	gone := func() map[string]bool {
		reps, err := live.Reports(ctx, "www")
		if err != nil {
			t.Fatal(err)
		}
		out := map[string]bool{}
		for _, r := range reps {
			out[r.Node] = status.IsGone(r.At, time.Now(), goneAfter)
		}
		return out
	}
	if g := gone(); g["edge-live"] || g["edge-stopped"] {
		t.Fatalf("gone at once: %v", g)
	}
	eventually(t, goneAfter+5*time.Second, "the stopped node is gone after node_gone_after", func() bool {
		return gone()["edge-stopped"]
	})
	if g := gone(); g["edge-live"] {
		t.Fatalf("the live node (heartbeat every %s) is gone too: %v", goneAfter/4, g)
	}

	// renewer fleet forget, through the CLI as the binary runs it.
	dir := t.TempDir()
	keyFile, file := filepath.Join(dir, "fleet.key"), filepath.Join(dir, "renewer.hcl")
	writeFile(t, keyFile, k.String(), 0o600)
	writeFile(t, file, fmt.Sprintf(`
acme {}
fleet {
  node            = "edge-admin"
  key_file        = %q
  node_gone_after = "10s"
  etcd {
    endpoints = [%q]
    prefix    = "/gone"
  }
}
`, keyFile, eps[0]), 0o600)
	forget := func(args ...string) (int, string) {
		var out, errb bytes.Buffer
		code := cli.Run(ctx, deps, append([]string{"--config", file, "fleet", "forget"}, args...), &out, &errb)
		return code, out.String() + errb.String()
	}
	if code, out := forget("edge-live"); code != cli.ExitFailure || !strings.Contains(out, "it is alive") {
		t.Errorf("forget a live node: exit %d\n%s", code, out)
	}
	if code, out := forget("edge-nobody"); code != cli.ExitFailure || !strings.Contains(out, `no node "edge-nobody" has reported`) {
		t.Errorf("forget an unknown node: exit %d\n%s", code, out)
	}
	if code, out := forget("edge-stopped"); code != cli.ExitOK || !strings.Contains(out, "reports of api, www removed") {
		t.Errorf("forget the stopped node: exit %d\n%s", code, out)
	}
	for _, name := range []string{"www", "api"} {
		reps, err := live.Reports(ctx, name)
		if err != nil {
			t.Fatal(err)
		}
		var nodes []string
		for _, r := range reps {
			nodes = append(nodes, r.Node)
		}
		if !slices.Equal(nodes, []string{"edge-live"}) {
			t.Errorf("reports of %s after forgetting edge-stopped: %v", name, nodes)
		}
	}
	if code, out := forget("--force", "edge-live"); code != cli.ExitOK {
		t.Errorf("forget --force a live node: exit %d\n%s", code, out)
	}
}
