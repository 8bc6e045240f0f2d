package fleet_test

import (
	"context"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"

	clientv3 "go.etcd.io/etcd/client/v3"
	"go.uber.org/zap"

	"github.com/renewer/renewer/internal/agent"
	"github.com/renewer/renewer/internal/status"
	"github.com/renewer/renewer/internal/store"
	"github.com/renewer/renewer/internal/testca"
)

// debianTokenTTL is the etcd servers' --auth-token-ttl in the Debian test:
// short, so that the test outlives it several times in a few seconds (the
// servers drop a token idle this long, checking once a second).
const debianTokenTTL = 4 * time.Second

// debianEtcd is the etcd server binary of Debian's etcd-server package
// (3.4.23 in bookworm). Without it the test skips, loudly, unless CI is
// set (.ci/run installs the package).
func debianEtcd(t *testing.T) string {
	t.Helper()
	bin, err := exec.LookPath("etcd")
	if err != nil {
		if os.Getenv("CI") != "" {
			t.Fatalf("CI is set but the etcd server is missing (apt-get install etcd-server): %v", err)
		}
		t.Skip("SKIPPED: Debian's etcd server is not installed (apt-get install etcd-server); " +
			"the test of password authentication past the token's expiry against etcd 3.4 did not run")
	}
	out, err := exec.Command(bin, "--version").CombinedOutput()
	if err != nil {
		t.Fatalf("%s --version: %v\n%s", bin, err, out)
	}
	t.Logf("%s: %s", bin, strings.SplitN(string(out), "\n", 2)[0])
	return bin
}

// startDebianCluster starts a 3-member cluster of bin on loopback with
// auth tokens that live ttl, and returns the client URLs and the members'
// log files.
func startDebianCluster(t *testing.T, bin string, ttl time.Duration) (eps, logs []string) {
	t.Helper()
	const n = 3
	var peers, initial []string
	for i := range n {
		cp, pp := testca.FreePortT(t), testca.FreePortT(t)
		eps = append(eps, fmt.Sprintf("http://127.0.0.1:%d", cp))
		peers = append(peers, fmt.Sprintf("http://127.0.0.1:%d", pp))
		initial = append(initial, fmt.Sprintf("m%d=%s", i, peers[i]))
	}
	dir := t.TempDir()
	token := fmt.Sprintf("renewer-debian-%d", time.Now().UnixNano())
	for i := range n {
		logFile := filepath.Join(dir, fmt.Sprintf("m%d.log", i))
		f, err := os.Create(logFile)
		if err != nil {
			t.Fatal(err)
		}
		cmd := exec.Command(bin,
			"--name", fmt.Sprintf("m%d", i), "--data-dir", filepath.Join(dir, fmt.Sprintf("m%d", i)),
			"--listen-client-urls", eps[i], "--advertise-client-urls", eps[i],
			"--listen-peer-urls", peers[i], "--initial-advertise-peer-urls", peers[i],
			"--initial-cluster", strings.Join(initial, ","), "--initial-cluster-state", "new",
			"--initial-cluster-token", token,
			"--auth-token", "simple", "--auth-token-ttl", fmt.Sprint(int(ttl/time.Second)))
		cmd.Stdout, cmd.Stderr = f, f
		if err := cmd.Start(); err != nil {
			t.Fatalf("start %s: %v", bin, err)
		}
		t.Cleanup(func() {
			_ = cmd.Process.Kill()
			_ = cmd.Wait()
			f.Close()
		})
		logs = append(logs, logFile)
	}
	cli, err := clientv3.New(clientv3.Config{Endpoints: eps, DialTimeout: 5 * time.Second, Logger: zap.NewNop()})
	if err != nil {
		t.Fatal(err)
	}
	defer cli.Close()
	deadline := time.Now().Add(30 * time.Second)
	for {
		ctx, cancel := context.WithTimeout(context.Background(), time.Second)
		_, err := cli.Put(ctx, "/ready", "1")
		cancel()
		if err == nil {
			return eps, logs
		}
		if time.Now().After(deadline) {
			b, _ := os.ReadFile(logs[0])
			t.Fatalf("Debian's etcd cluster does not answer after 30 s: %v\n%s", err, b)
		}
		time.Sleep(100 * time.Millisecond)
	}
}

// Against Debian's etcd server (3.4) with username/password
// authentication and a 4-second token lifetime, a 3-node fleet keeps
// renewing for several lifetimes: between renewals every node is idle for
// longer than the token lives, so each renewal (the lock, the account, the
// challenge token, the publication) and each node's apply and report run
// on an expired token. Each renewal is ordered by a node the CA does not
// reach, so another node answers its HTTP-01 token from etcd. One order
// per renewal, every node applies it, and the servers see only a few
// "invalid auth token" refusals (one per expiry and node), not a loop.
func TestFleetDebianEtcdPasswordPastTokenExpiry(t *testing.T) {
	t.Parallel()
	bin := debianEtcd(t)
	eps, logs := startDebianCluster(t, bin, debianTokenTTL)
	issued := &issuances{}
	ca := testca.StartT(t, testca.Options{Log: issued})
	const domain = "debian.example.test"
	pointAt(t, ca, domain, "127.0.0.3") // the CA reaches edge-1 only
	s := newFleetSetup(t, ca, domain)
	admin, err := clientv3.New(clientv3.Config{Endpoints: eps, DialTimeout: 5 * time.Second, Logger: zap.NewNop()})
	if err != nil {
		t.Fatal(err)
	}
	enableAuth(t, admin, s.prefix, "s3cret")
	admin.Close()
	pw := filepath.Join(t.TempDir(), "etcd.password")
	writeFile(t, pw, "s3cret\n", 0o600)
	s.etcd = fmt.Sprintf("    username = \"renewer\"\n    password_file = %q", pw)
	nodes := []*node{
		s.newNode(t, "edge-0", "127.0.0.2", eps[0]),
		s.newNode(t, "edge-1", "127.0.0.3", eps[1]),
		s.newNode(t, "edge-2", "127.0.0.4", eps[2]),
	}
	for _, n := range nodes {
		n.daemon(t)
	}
	start := time.Now()
	first := waitPublished(t, nodes[0], "", 90*time.Second)
	waitApplied(t, nodes, first)

	// Three rounds, each after an idle spell longer than the tokens live
	// (and a second for the servers' once-a-second expiry check): at least
	// four token lifetimes in all.
	prev := first
	orderers := []*node{nodes[0], nodes[2], nodes[0]}
	for round, orderer := range orderers {
		time.Sleep(debianTokenTTL + 2*time.Second)
		res := orderer.pass(t, context.Background(), agent.PassOptions{Force: true, Names: []string{"www"}})
		if res.Action != status.Renewed || !res.OK() {
			t.Fatalf("round %d: forced renewal on %s after the tokens expired: %+v", round, orderer.name, res)
		}
		next := waitPublished(t, nodes[1], prev.Serial, 10*time.Second)
		if next.Serial != res.Serial {
			t.Fatalf("round %d: the fleet's version %s, want %s", round, next.Serial, res.Serial)
		}
		waitApplied(t, nodes, next)
		prev = next
	}
	if d := time.Since(start); d < 4*debianTokenTTL {
		t.Fatalf("the fleet ran %s, less than 4 token lifetimes", d)
	}
	if n, o := issued.Count(), issued.Orders(); n != 1+len(orderers) || o != 1+len(orderers) {
		t.Errorf("Pebble got %d orders and issued %d certificates, want %d and %d", o, n, 1+len(orderers), 1+len(orderers))
	}
	refusals := 0
	for _, l := range logs {
		b, _ := os.ReadFile(l)
		refusals += strings.Count(string(b), "invalid auth token")
	}
	t.Logf("the servers refused an expired token %d times in %s", refusals, time.Since(start).Round(time.Second))
	if limit := 3 * len(nodes) * (1 + len(orderers)) * 4; refusals > limit {
		t.Errorf("the servers refused expired tokens %d times (more than %d): re-authentication loops", refusals, limit)
	}
}

// waitPublished waits until the fleet's version of www is another serial
// than prev ("" for any).
func waitPublished(t *testing.T, n *node, prev string, limit time.Duration) *store.Published {
	t.Helper()
	var p *store.Published
	eventually(t, limit, "a new version published", func() bool {
		got, err := n.fleet.Latest(context.Background(), "www")
		p = got
		return err == nil && got != nil && got.Serial != prev
	})
	return p
}
