package fleet_test

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	clientv3 "go.etcd.io/etcd/client/v3"

	"github.com/renewer/renewer/internal/cli"
	"github.com/renewer/renewer/internal/config"
	"github.com/renewer/renewer/internal/fleet"
	"github.com/renewer/renewer/internal/store"
	"github.com/renewer/renewer/internal/testca"
)

func open(t *testing.T, eps []string, node string, key fleet.Key) *fleet.Backend {
	t.Helper()
	b, err := fleet.Open(fleet.Options{Endpoints: eps, Prefix: "/unit", Node: node, Key: key, LockTTL: 2 * time.Second, Log: logger(t, node)})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { b.Close() })
	return b
}

func newKey(t *testing.T) fleet.Key {
	k, err := fleet.NewKey()
	if err != nil {
		t.Fatal(err)
	}
	return k
}

const secretKey = "-----BEGIN EC PRIVATE KEY-----\nc2VjcmV0LWtleS1tYXRlcmlhbA==\n-----END EC PRIVATE KEY-----\n"

// Private keys are sealed in etcd: the raw value does not hold them, a node
// with another fleet key cannot read them, a sealed value moved to another
// certificate's key does not open, and a node without a key does not start.
func TestKeysSealedWithFleetKey(t *testing.T) {
	t.Parallel()
	eps := startCluster(t, 1)
	ctx := context.Background()
	k := newKey(t)
	n1, n2, other := open(t, eps, "n1", k), open(t, eps, "n2", k), open(t, eps, "x", newKey(t))

	c, ok, err := n1.Claim(ctx, "www")
	if err != nil || !ok {
		t.Fatalf("claim: %v %v", ok, err)
	}
	defer c.Release()
	pub := store.Published{Serial: "01", NotAfter: time.Now().Add(time.Hour), Bundle: store.Bundle{Cert: []byte("CERT"), Chain: []byte("CHAIN"), Key: []byte(secretKey)}}
	if err := c.Publish(ctx, pub); err != nil {
		t.Fatal(err)
	}
	raw, err := n1.Client().Get(ctx, n1.Key("certs", "www"))
	if err != nil || len(raw.Kvs) != 1 {
		t.Fatalf("raw get: %v", err)
	}
	val := raw.Kvs[0].Value
	if bytes.Contains(val, []byte("PRIVATE KEY")) || bytes.Contains(val, []byte("c2VjcmV0LWtleS1tYXRlcmlhbA")) {
		t.Fatalf("the private key is readable in etcd: %s", val)
	}
	got, err := n2.Latest(ctx, "www")
	if err != nil || got == nil || string(got.Bundle.Key) != secretKey || got.Serial != "01" || got.Node != "n1" {
		t.Fatalf("read with the fleet key: %+v, %v", got, err)
	}
	if _, err := other.Latest(ctx, "www"); !errors.Is(err, fleet.ErrWrongKey) {
		t.Fatalf("read with another fleet key: %v, want ErrWrongKey", err)
	}
	// The same bytes under another certificate's key do not open.
	if _, err := n1.Client().Put(ctx, n1.Key("certs", "api"), string(val)); err != nil {
		t.Fatal(err)
	}
	if _, err := n2.Latest(ctx, "api"); !errors.Is(err, fleet.ErrWrongKey) {
		t.Fatalf("a sealed key moved to another certificate: %v, want ErrWrongKey", err)
	}

	// No key, no fleet mode.
	if _, err := fleet.Open(fleet.Options{Endpoints: eps, Node: "n3"}); err == nil || !strings.Contains(err.Error(), "fleet key") {
		t.Errorf("open without a key: %v", err)
	}
	dir := t.TempDir()
	f := &config.Fleet{Node: "n3", KeyFile: filepath.Join(dir, "missing.key"), Etcd: config.Etcd{Endpoints: eps, Prefix: "/unit"},
		Range: hclRange("renewer.hcl", 12)}
	if _, err := fleet.OpenConfig(f, nil); err == nil || !strings.HasPrefix(err.Error(), "renewer.hcl:12: fleet key:") {
		t.Errorf("open with a missing key file: %v", err)
	}
	f.KeyFile = filepath.Join(dir, "open.key")
	writeFile(t, f.KeyFile, k.String(), 0o644)
	if _, err := fleet.OpenConfig(f, nil); err == nil || !strings.Contains(err.Error(), "chmod 0600") {
		t.Errorf("open with a key file others can read: %v", err)
	}
	if err := os.Chmod(f.KeyFile, 0o600); err != nil {
		t.Fatal(err)
	}
	b, err := fleet.OpenConfig(f, nil)
	if err != nil {
		t.Fatalf("open with the key file: %v", err)
	}
	defer b.Close()
	if got, err := b.Latest(ctx, "www"); err != nil || got == nil || string(got.Bundle.Key) != secretKey {
		t.Errorf("read through a config-opened backend: %v", err)
	}
}

// One lock per certificate: a second node cannot claim it while the first
// holds it; once the first node's lease is gone (it was cut off), another
// node claims it, and the first node's publish is refused (fenced).
func TestClaimIsExclusiveAndFenced(t *testing.T) {
	t.Parallel()
	eps := startCluster(t, 1)
	ctx := context.Background()
	k := newKey(t)
	n1, n2 := open(t, eps, "n1", k), open(t, eps, "n2", k)

	c1, ok, err := n1.Claim(ctx, "www")
	if err != nil || !ok {
		t.Fatalf("first claim: %v %v", ok, err)
	}
	if _, ok, err := n2.Claim(ctx, "www"); ok || err != nil {
		t.Fatalf("second claim while the first holds: ok=%v err=%v", ok, err)
	}
	if c, ok, err := n2.Claim(ctx, "api"); !ok || err != nil {
		t.Fatalf("claim of another certificate: ok=%v err=%v", ok, err)
	} else {
		c.Release()
	}
	// n1's lease ends as if it had been cut off past its TTL.
	locks, err := n1.Client().Get(ctx, n1.Key("locks", "certs", "www")+"/", clientv3.WithPrefix())
	if err != nil || len(locks.Kvs) != 1 {
		t.Fatalf("lock keys: %v", err)
	}
	if _, err := n1.Client().Revoke(ctx, clientv3.LeaseID(locks.Kvs[0].Lease)); err != nil {
		t.Fatal(err)
	}
	c2, ok, err := n2.Claim(ctx, "www")
	if err != nil || !ok {
		t.Fatalf("claim after the holder's lease ended: %v %v", ok, err)
	}
	defer c2.Release()
	bundle := store.Bundle{Cert: []byte("C"), Key: []byte(secretKey)}
	if err := c1.Publish(ctx, store.Published{Serial: "stale", Bundle: bundle}); !errors.Is(err, store.ErrClaimLost) {
		t.Fatalf("publish by the node that lost its lock: %v, want ErrClaimLost", err)
	}
	if p, err := n2.Latest(ctx, "www"); err != nil || p != nil {
		t.Fatalf("a fenced publish wrote %+v (%v)", p, err)
	}
	if err := c2.Publish(ctx, store.Published{Serial: "fresh", Bundle: bundle}); err != nil {
		t.Fatal(err)
	}
	c1.Release()
	if p, err := n1.Latest(ctx, "www"); err != nil || p == nil || p.Serial != "fresh" || p.Node != "n2" {
		t.Fatalf("after both: %+v, %v", p, err)
	}
}

// HTTP-01 tokens one node presents are answered by the others.
func TestTokensShared(t *testing.T) {
	t.Parallel()
	eps := startCluster(t, 1)
	ctx := context.Background()
	k := newKey(t)
	n1, n2 := open(t, eps, "n1", k), open(t, eps, "n2", k)
	n2.ServeTokens()
	if err := n1.PutToken(ctx, "tok1", "tok1.thumb"); err != nil {
		t.Fatal(err)
	}
	if ka, ok := n2.Token("tok1"); !ok || ka != "tok1.thumb" {
		t.Fatalf("token on another node: %q %v", ka, ok)
	}
	if err := n1.DeleteToken(ctx, "tok1"); err != nil {
		t.Fatal(err)
	}
	eventually(t, 5*time.Second, "a withdrawn token is no longer answered", func() bool {
		_, ok := n2.Token("tok1")
		return !ok
	})
	if _, ok := n2.Token("../certs/www"); ok {
		t.Error("a token path outside challenges/ was answered")
	}
}

// A node whose fleet key file is missing refuses to start in fleet mode,
// saying where the fleet block is and what is missing.
func TestNodeWithoutKeyRefusesToStart(t *testing.T) {
	t.Parallel()
	dir := t.TempDir()
	file := filepath.Join(dir, "renewer.hcl")
	writeFile(t, file, `storage { path = "state" }
acme { directory = "https://127.0.0.1:1/dir" }
fleet {
  node     = "edge-9"
  key_file = "fleet.key"
  etcd { endpoints = ["http://127.0.0.1:1"] }
}
`, 0o600)
	var out, errb bytes.Buffer
	code := cli.Run(context.Background(), deps, []string{"run", "--config", file}, &out, &errb)
	msg := errb.String()
	if code != cli.ExitFailure || !strings.Contains(msg, file+":3: fleet key:") || !strings.Contains(msg, "fleet.key") {
		t.Fatalf("run without the fleet key: exit %d\n%s%s", code, out.String(), msg)
	}
}

// With etcd unreachable, status still shows what this node serves, and
// says the fleet cannot be read (a warning: exit code 1).
func TestStatusWithEtcdDown(t *testing.T) {
	t.Parallel()
	dir := t.TempDir()
	writeFile(t, filepath.Join(dir, "fleet.key"), newKey(t).String(), 0o600)
	file := filepath.Join(dir, "renewer.hcl")
	writeFile(t, file, fmt.Sprintf(`storage { path = "state" }
acme { directory = "https://127.0.0.1:1/dir" }
fleet {
  node     = "edge-9"
  key_file = "fleet.key"
  etcd {
    endpoints    = ["http://127.0.0.1:%d"]
    dial_timeout = "1s"
  }
}
certificate "a" {
  domains = ["a.example.test"]
  challenge "http" { listen = ":80" }
}
certificate "b" {
  domains = ["b.example.test"]
  challenge "http" { listen = ":80" }
}
`, testca.FreePortT(t)), 0o600)
	var out, errb bytes.Buffer
	start := time.Now()
	code := cli.Run(context.Background(), deps, []string{"status", "--json", "--config", file}, &out, &errb)
	var rep cli.StatusReport
	if err := json.Unmarshal(out.Bytes(), &rep); err != nil || len(rep.Certificates) != 2 {
		t.Fatalf("status --json (exit %d): %v\n%s%s", code, err, out.String(), errb.String())
	}
	for _, c := range rep.Certificates {
		if c.FleetError == "" || c.Fleet != nil {
			t.Errorf("%s: fleet_error %q, fleet %+v", c.Name, c.FleetError, c.Fleet)
		}
	}
	if code == cli.ExitOK {
		t.Errorf("status with etcd down: exit %d", code)
	}
	if d := time.Since(start); d > 10*time.Second {
		t.Errorf("status with etcd down took %s: one timeout should do", d)
	}
}
