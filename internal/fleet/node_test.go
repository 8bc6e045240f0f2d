package fleet_test

import (
	"context"
	"crypto/tls"
	"fmt"
	"math/rand/v2"
	"net"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/renewer/renewer/internal/agent"
	"github.com/renewer/renewer/internal/certinfo"
	"github.com/renewer/renewer/internal/config"
	"github.com/renewer/renewer/internal/fleet"
	"github.com/renewer/renewer/internal/status"
	"github.com/renewer/renewer/internal/store"
	"github.com/renewer/renewer/internal/testca"
)

// node is one edge server of a test fleet: its own config, local store,
// install directory, hook and TLS endpoint (serving what is installed, so
// its verify step checks its own endpoint), and its own etcd connection.
type node struct {
	name     string
	file     string // config file
	cfg      *config.Config
	fleet    *fleet.Backend
	hookFile string // the hook appends each serial it deployed
	bundle   string // HAProxy bundle install target
	stop     func() // stops the daemon, when one runs
}

type fleetSetup struct {
	ca     *testca.CA
	domain string
	prefix string
	key    string // key file
	etcd   string // more attributes of the etcd block (username, password_file)
}

func newFleetSetup(t *testing.T, ca *testca.CA, domain string) *fleetSetup {
	k, err := fleet.NewKey()
	if err != nil {
		t.Fatal(err)
	}
	keyFile := filepath.Join(t.TempDir(), "fleet.key")
	writeFile(t, keyFile, k.String()+"\n", 0o600)
	return &fleetSetup{ca: ca, domain: domain, prefix: "/renewer-test", key: keyFile}
}

// newNode writes node name's config (HTTP-01 on ip:HTTPPort, etcd at
// endpoint) and opens its fleet backend.
func (s *fleetSetup) newNode(t *testing.T, name, ip, endpoint string) *node {
	t.Helper()
	dir := t.TempDir()
	n := &node{name: name, file: filepath.Join(dir, "renewer.hcl"), hookFile: filepath.Join(dir, "deployed"),
		bundle: filepath.Join(dir, "haproxy", "www.pem")}
	installDir := filepath.Join(dir, "installed")
	src := fmt.Sprintf(`
storage { path = "state" }
fleet {
  node     = %q
  key_file = %q
  lock_ttl = "2s"
  etcd {
    endpoints    = [%q]
    prefix       = %q
    dial_timeout = "2s"
%s
  }
}
acme {
  directory    = %q
  email        = "ops@example.test"
  accept_terms = true
  ca_bundle    = %q
}
daemon {
  check  = "@every 1h"
  jitter = "0s"
}
certificate "www" {
  domains = [%q]
  ari     = false
  challenge "http" { listen = "%s:%d" }
  install {
    dir            = %q
    haproxy_bundle = %q
  }
  hook "record" {
    command = ["/bin/sh", "-c", "echo \"$RENEWER_SERIAL\" >> \"$OUT\""]
    env     = { OUT = %q }
  }
  verify {
    endpoint    = %q
    server_name = %q
  }
}
`, name, s.key, endpoint, s.prefix, s.etcd, s.ca.Directory, s.ca.CABundle, s.domain, ip, s.ca.HTTPPort, installDir, n.bundle, n.hookFile,
		serveInstalled(t, installDir), s.domain)
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
	t.Cleanup(func() { b.Close() })
	n.fleet = b
	return n
}

// serveInstalled is the node's "nginx": a TLS endpoint serving the
// certificate in dir, read at each handshake.
func serveInstalled(t *testing.T, dir string) string {
	t.Helper()
	ln, err := tls.Listen("tcp", "127.0.0.1:0", &tls.Config{
		GetCertificate: func(*tls.ClientHelloInfo) (*tls.Certificate, error) {
			c, err := tls.LoadX509KeyPair(filepath.Join(dir, "fullchain.pem"), filepath.Join(dir, "privkey.pem"))
			return &c, err
		},
	})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { ln.Close() })
	go func() {
		for {
			c, err := ln.Accept()
			if err != nil {
				return
			}
			go func(c net.Conn) {
				defer c.Close()
				_ = c.(*tls.Conn).Handshake()
			}(c)
		}
	}()
	return ln.Addr().String()
}

// agent is a one-shot agent of the node (what `renewer renew` runs).
func (n *node) agent(t *testing.T) *agent.Agent {
	t.Helper()
	a, err := agent.New(n.cfg, agent.Options{Log: logger(t, n.name), Fleet: n.fleet})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(a.Close)
	return a
}

// pass runs one pass of a one-shot agent and returns the result of "www".
func (n *node) pass(t *testing.T, ctx context.Context, o agent.PassOptions) status.Result {
	t.Helper()
	a := n.agent(t)
	res, err := a.RunOnce(ctx, o)
	if err != nil {
		t.Fatal(err)
	}
	a.Close()
	return res[0]
}

// daemon runs `renewer run` for the node until the test ends.
func (n *node) daemon(t *testing.T) {
	t.Helper()
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() {
		done <- agent.RunDaemon(ctx, n.cfg, agent.DaemonOptions{
			Options: agent.Options{Log: logger(t, n.name), Fleet: n.fleet},
			Load:    func() (*config.Config, error) { return n.cfg, nil },
			Rand:    rand.New(rand.NewPCG(1, 2)),
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

// serial is the serial of the node's live certificate ("" when none).
func (n *node) serial(t *testing.T) string {
	t.Helper()
	st, err := store.Open(n.cfg.Storage.Path, n.cfg.Storage.KeepVersions)
	if err != nil {
		t.Fatal(err)
	}
	v, err := st.Live("www")
	if err != nil {
		return ""
	}
	f, err := certinfo.Load(v.Fullchain, v.Key)
	if err != nil {
		return ""
	}
	return f.Serial
}

// bundleServes reports whether the node's HAProxy bundle holds its live
// certificate (and a key).
func (n *node) bundleServes(t *testing.T) bool {
	t.Helper()
	st, err := store.Open(n.cfg.Storage.Path, n.cfg.Storage.KeepVersions)
	if err != nil {
		t.Fatal(err)
	}
	v, err := st.Live("www")
	if err != nil {
		return false
	}
	cert, err1 := os.ReadFile(v.Cert)
	b, err2 := os.ReadFile(n.bundle)
	return err1 == nil && err2 == nil && strings.HasPrefix(string(b), string(cert)) && strings.Contains(string(b), "PRIVATE KEY")
}

// deployed lists the serials the node's hook ran for, in order.
func (n *node) deployed() []string {
	raw, _ := os.ReadFile(n.hookFile)
	return strings.Fields(string(raw))
}

// accountFiles returns the node's ACME account key and registration.
func (n *node) accountFiles(t *testing.T) (key, acct string) {
	t.Helper()
	dirs, _ := filepath.Glob(filepath.Join(n.cfg.Storage.Path, "accounts", "*"))
	if len(dirs) != 1 {
		return "", ""
	}
	k, _ := os.ReadFile(filepath.Join(dirs[0], "key.pem"))
	a, _ := os.ReadFile(filepath.Join(dirs[0], "account.json"))
	return string(k), string(a)
}
