package fleet_test

import (
	"context"
	"fmt"
	"log/slog"
	"net/url"
	"path/filepath"
	"strings"
	"testing"
	"time"

	clientv3 "go.etcd.io/etcd/client/v3"
	"go.etcd.io/etcd/server/v3/embed"
	"go.uber.org/zap"

	"github.com/renewer/renewer/internal/agent"
	"github.com/renewer/renewer/internal/config"
	"github.com/renewer/renewer/internal/fleet"
	"github.com/renewer/renewer/internal/testca"
)

// Credentials rotated in place, applied with a reload: etcd with password
// authentication; the operator changes renewer's password in etcd and
// first writes a wrong one into password_file (the same path): the reload
// is refused, naming etcd's "authentication failed", and the node goes on
// as n1. Then the right password and a new node name: the reload is
// applied; n2 reports (the certificate's failure, as the CA is down) and
// n1's report is withdrawn.
func TestFleetReloadRotatedPassword(t *testing.T) {
	t.Parallel()
	dir := t.TempDir()
	cu := startPlainEtcd(t, dir)
	ctx := context.Background()
	admin, err := clientv3.New(clientv3.Config{Endpoints: []string{cu.String()}, DialTimeout: 5 * time.Second, Logger: zap.NewNop()})
	if err != nil {
		t.Fatal(err)
	}
	defer admin.Close()
	enableAuth(t, admin, "/cred", "s3cret")
	root, err := clientv3.New(clientv3.Config{Endpoints: []string{cu.String()}, DialTimeout: 5 * time.Second, Logger: zap.NewNop(),
		Username: "root", Password: "rootpw"})
	if err != nil {
		t.Fatal(err)
	}
	defer root.Close()
	reports := func() []string {
		resp, err := root.Get(ctx, "/cred/nodes/", clientv3.WithPrefix(), clientv3.WithKeysOnly())
		if err != nil {
			t.Fatal(err)
		}
		var keys []string
		for _, kv := range resp.Kvs {
			keys = append(keys, string(kv.Key))
		}
		return keys
	}

	k, err := fleet.NewKey()
	if err != nil {
		t.Fatal(err)
	}
	keyFile, pwFile, file := filepath.Join(dir, "fleet.key"), filepath.Join(dir, "etcd.password"), filepath.Join(dir, "renewer.hcl")
	writeFile(t, keyFile, k.String()+"\n", 0o600)
	writeFile(t, pwFile, "s3cret\n", 0o600)
	// The CA is down: the certificate fails, and its failure is what the
	// node reports.
	writeFile(t, file, fmt.Sprintf(`
storage { path = "state" }
fleet {
  node     = "n1"
  key_file = %q
  etcd {
    endpoints     = [%q]
    prefix        = "/cred"
    username      = "renewer"
    password_file = %q
    dial_timeout  = "10s"
  }
}
acme {
  directory    = "https://127.0.0.1:1/dir"
  email        = "ops@example.test"
  accept_terms = true
}
daemon {
  check  = "@every 1h"
  jitter = "0s"
}
certificate "www" {
  domains = ["cred.example.test"]
  ari     = false
  challenge "http" { listen = "127.0.0.1:%d" }
}
`, keyFile, cu.String(), pwFile, testca.FreePortT(t)), 0o600)
	cfg, err := config.Load(file)
	if err != nil {
		t.Fatal(err)
	}

	log := &syncBuf{}
	reload := make(chan struct{})
	dctx, cancel := context.WithCancel(ctx)
	done := make(chan error, 1)
	go func() {
		done <- agent.RunDaemon(dctx, cfg, agent.DaemonOptions{
			Options: agent.Options{Log: slog.New(slog.NewTextHandler(log, nil))},
			Load:    func() (*config.Config, error) { return config.Load(file) },
			Reload:  reload,
			OpenFleet: func(f *config.Fleet) (agent.FleetConn, error) {
				return fleet.Opener(f, nil)
			},
		})
	}()
	defer func() {
		cancel()
		if err := <-done; err != nil {
			t.Errorf("daemon: %v", err)
		}
		if t.Failed() {
			t.Logf("daemon log:\n%s", log.String())
		}
	}()
	eventually(t, 30*time.Second, "n1 reports its failing certificate", func() bool {
		return strings.Join(reports(), " ") == "/cred/nodes/www/n1"
	})

	// The password is changed in etcd; a wrong one is written to the file.
	if _, err := root.UserChangePassword(ctx, "renewer", "n3w"); err != nil {
		t.Fatal(err)
	}
	writeFile(t, pwFile, "wrong\n", 0o600)
	reload <- struct{}{}
	eventually(t, 30*time.Second, "the reload refused", func() bool { return log.count("config reload refused") == 1 })
	if !strings.Contains(log.String(), "authentication failed") {
		t.Errorf("the refusal does not give etcd's reason:\n%s", log.String())
	}
	if log.count("fleet block applied") != 0 || log.count("config reloaded") != 0 {
		t.Fatal("a reload with a wrong password was applied")
	}

	// The right password, and another node name.
	writeFile(t, pwFile, "n3w\n", 0o600)
	rewrite(t, file, `node     = "n1"`, `node     = "n2"`)
	reload <- struct{}{}
	eventually(t, 30*time.Second, "the reload applied", func() bool { return log.count("fleet block applied") == 1 })
	eventually(t, 10*time.Second, "n2 reports and n1's report is withdrawn", func() bool {
		return strings.Join(reports(), " ") == "/cred/nodes/www/n2"
	})
	resp, err := root.Get(ctx, "/cred/nodes/www/n2")
	if err != nil || len(resp.Kvs) != 1 || !strings.Contains(string(resp.Kvs[0].Value), `"error"`) {
		t.Errorf("n2's report: %v %v; want the certificate's failure", resp, err)
	}
}

// startPlainEtcd starts a one-member etcd without TLS on free loopback ports (again
// with other ports when one was taken meanwhile) and returns its client URL.
func startPlainEtcd(t *testing.T, dir string) url.URL {
	t.Helper()
	for attempt := 0; ; attempt++ {
		cu := url.URL{Scheme: "http", Host: fmt.Sprintf("127.0.0.1:%d", testca.FreePortT(t))}
		pu := url.URL{Scheme: "http", Host: fmt.Sprintf("127.0.0.1:%d", testca.FreePortT(t))}
		cfg := embed.NewConfig()
		cfg.Name, cfg.Dir = "auth", filepath.Join(dir, fmt.Sprintf("data%d", attempt))
		cfg.ListenClientUrls, cfg.AdvertiseClientUrls = []url.URL{cu}, []url.URL{cu}
		cfg.ListenPeerUrls, cfg.AdvertisePeerUrls = []url.URL{pu}, []url.URL{pu}
		cfg.InitialCluster = "auth=" + pu.String()
		cfg.LogLevel = "error"
		cfg.ZapLoggerBuilder = embed.NewZapLoggerBuilder(zap.NewNop())
		cfg.UnsafeNoFsync = true // a test member on a shared disk: no fsync wait per write
		cfg.BcryptCost = 4       // bcrypt's least: each authentication is quick, even under -race
		e, err := embed.StartEtcd(cfg)
		if err != nil {
			if attempt == 2 {
				t.Fatal(err)
			}
			t.Logf("etcd did not start (a port taken?): %v; retrying", err)
			continue
		}
		t.Cleanup(e.Close)
		select {
		case <-e.Server.ReadyNotify():
		case <-time.After(30 * time.Second):
			t.Fatal("etcd not ready")
		}
		return cu
	}
}
