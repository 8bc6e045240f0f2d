package fleet_test

import (
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net"
	"net/http"
	"net/url"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/hashicorp/hcl/v2"
	"go.etcd.io/etcd/server/v3/embed"
	"go.uber.org/zap"

	"github.com/renewer/renewer/internal/testca"
)

// startCluster starts an etcd cluster of n members on free loopback ports,
// each with its own data directory, and returns each member's client URL.
func startCluster(t *testing.T, n int) []string {
	t.Helper()
	for attempt := 0; ; attempt++ {
		eps, err := tryCluster(t, n)
		if err == nil {
			return eps
		}
		if attempt == 2 {
			t.Fatalf("etcd cluster: %v", err)
		}
		t.Logf("etcd cluster did not start (a port taken?): %v; retrying", err)
	}
}

func tryCluster(t *testing.T, n int) ([]string, error) {
	peers, clients := make([]url.URL, n), make([]url.URL, n)
	var initial []string
	for i := range n {
		pp, err := testca.FreePort()
		if err != nil {
			return nil, err
		}
		cp, err := testca.FreePort()
		if err != nil {
			return nil, err
		}
		peers[i] = url.URL{Scheme: "http", Host: fmt.Sprintf("127.0.0.1:%d", pp)}
		clients[i] = url.URL{Scheme: "http", Host: fmt.Sprintf("127.0.0.1:%d", cp)}
		initial = append(initial, fmt.Sprintf("m%d=%s", i, peers[i].String()))
	}
	token := fmt.Sprintf("renewer-test-%d", time.Now().UnixNano())
	members := make([]*embed.Etcd, n)
	var errs []error
	var wg sync.WaitGroup
	var mu sync.Mutex
	for i := range n {
		cfg := embed.NewConfig()
		cfg.Name = fmt.Sprintf("m%d", i)
		cfg.Dir = filepath.Join(t.TempDir(), cfg.Name)
		cfg.ListenPeerUrls, cfg.AdvertisePeerUrls = []url.URL{peers[i]}, []url.URL{peers[i]}
		cfg.ListenClientUrls, cfg.AdvertiseClientUrls = []url.URL{clients[i]}, []url.URL{clients[i]}
		cfg.InitialCluster = strings.Join(initial, ",")
		cfg.InitialClusterToken = token
		cfg.ClusterState = embed.ClusterStateFlagNew
		cfg.LogLevel = "error"
		cfg.ZapLoggerBuilder = embed.NewZapLoggerBuilder(zap.NewNop())
		cfg.UnsafeNoFsync = true // a test member on a shared disk: no fsync wait per write
		wg.Go(func() {
			e, err := embed.StartEtcd(cfg)
			mu.Lock()
			defer mu.Unlock()
			if err != nil {
				errs = append(errs, err)
				return
			}
			members[i] = e
		})
	}
	wg.Wait()
	stop := func() {
		for _, e := range members {
			if e != nil {
				e.Close()
			}
		}
	}
	if len(errs) > 0 {
		stop()
		return nil, errors.Join(errs...)
	}
	for _, e := range members {
		select {
		case <-e.Server.ReadyNotify():
		case err := <-e.Err():
			stop()
			return nil, err
		case <-time.After(30 * time.Second):
			stop()
			return nil, errors.New("etcd member not ready after 30s")
		}
	}
	t.Cleanup(stop)
	eps := make([]string, n)
	for i := range n {
		eps[i] = clients[i].String()
	}
	return eps, nil
}

// proxy forwards TCP connections to target until Cut, which closes the
// listener and every connection: the node behind it is cut off from etcd.
// Restore listens on the same address again.
type proxy struct {
	addr, target string
	mu           sync.Mutex
	ln           net.Listener
	conns        map[net.Conn]bool
}

func newProxy(t *testing.T, target string) *proxy {
	t.Helper()
	p := &proxy{target: target, conns: map[net.Conn]bool{}}
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	p.addr = ln.Addr().String()
	p.serve(ln)
	t.Cleanup(p.Cut)
	return p
}

func (p *proxy) serve(ln net.Listener) {
	p.mu.Lock()
	p.ln = ln
	p.mu.Unlock()
	go func() {
		for {
			c, err := ln.Accept()
			if err != nil {
				return
			}
			go p.pipe(c)
		}
	}()
}

func (p *proxy) pipe(c net.Conn) {
	u, err := net.Dial("tcp", p.target)
	if err != nil {
		c.Close()
		return
	}
	p.mu.Lock()
	if p.ln == nil { // cut meanwhile
		p.mu.Unlock()
		c.Close()
		u.Close()
		return
	}
	p.conns[c], p.conns[u] = true, true
	p.mu.Unlock()
	go func() { _, _ = io.Copy(u, c); u.Close(); c.Close() }()
	_, _ = io.Copy(c, u)
	c.Close()
	u.Close()
}

func (p *proxy) Cut() {
	p.mu.Lock()
	defer p.mu.Unlock()
	if p.ln != nil {
		p.ln.Close()
		p.ln = nil
	}
	for c := range p.conns {
		c.Close()
	}
	clear(p.conns)
}

func (p *proxy) Restore(t *testing.T) {
	t.Helper()
	ln, err := net.Listen("tcp", p.addr)
	if err != nil {
		t.Fatalf("proxy: listen again on %s: %v", p.addr, err)
	}
	p.serve(ln)
}

// issuances counts the orders Pebble received and the certificates it
// issued, from its log.
type issuances struct {
	mu     sync.Mutex
	n      int
	orders int
	log    strings.Builder
}

func (w *issuances) Write(p []byte) (int, error) {
	w.mu.Lock()
	defer w.mu.Unlock()
	w.n += strings.Count(string(p), "Issued certificate serial")
	w.orders += strings.Count(string(p), "Added order ")
	w.log.Write(p)
	return len(p), nil
}

// Orders is the number of ACME orders Pebble created.
func (w *issuances) Orders() int {
	w.mu.Lock()
	defer w.mu.Unlock()
	return w.orders
}

func (w *issuances) Count() int {
	w.mu.Lock()
	defer w.mu.Unlock()
	return w.n
}

// pointAt makes challtestsrv answer A queries for host with addr: Pebble
// validates HTTP-01 for host there.
func pointAt(t *testing.T, ca *testca.CA, host, addr string) {
	t.Helper()
	raw, _ := json.Marshal(map[string]any{"host": host, "addresses": []string{addr}})
	resp, err := http.Post(ca.ChallAPI+"/add-a", "application/json", strings.NewReader(string(raw)))
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	if resp.StatusCode != http.StatusOK {
		t.Fatalf("challtestsrv add-a: %s", resp.Status)
	}
}

// eventually polls cond every 100ms until it holds or limit passes.
func eventually(t *testing.T, limit time.Duration, what string, cond func() bool) {
	t.Helper()
	deadline := time.Now().Add(limit)
	for !cond() {
		if time.Now().After(deadline) {
			t.Fatalf("not within %s: %s", limit, what)
		}
		time.Sleep(100 * time.Millisecond)
	}
}

// testLog sends log lines to t.Log until the test's cleanup: an abandoned
// lego order (a node killed mid-order) may still log afterwards.
type testLog struct {
	t    *testing.T
	mu   sync.Mutex
	done bool
}

func (w *testLog) Write(p []byte) (int, error) {
	w.mu.Lock()
	defer w.mu.Unlock()
	if !w.done {
		w.t.Log(strings.TrimSpace(string(p)))
	}
	return len(p), nil
}

func logger(t *testing.T, node string) *slog.Logger {
	w := &testLog{t: t}
	t.Cleanup(func() {
		w.mu.Lock()
		w.done = true
		w.mu.Unlock()
	})
	return slog.New(slog.NewTextHandler(w, &slog.HandlerOptions{Level: slog.LevelDebug})).With("test_node", node)
}

func writeFile(t *testing.T, path, data string, mode os.FileMode) {
	t.Helper()
	if err := os.WriteFile(path, []byte(data), mode); err != nil {
		t.Fatal(err)
	}
}

func hclRange(file string, line int) hcl.Range {
	return hcl.Range{Filename: file, Start: hcl.Pos{Line: line, Column: 1}}
}

func readAll(path string) (string, error) {
	b, err := os.ReadFile(path)
	return string(b), err
}
