package watch_test

import (
	"context"
	"net"
	"strings"
	"testing"
	"time"

	"github.com/renewer/renewer/internal/certinfo/certtest"
	"github.com/renewer/renewer/internal/config"
	"github.com/renewer/renewer/internal/plan"
	"github.com/renewer/renewer/internal/watch"
	"github.com/renewer/renewer/internal/watch/watchtest"
)

const day = 24 * time.Hour

func watchOf(srv *watchtest.Server, serverName string) config.Watch {
	return config.Watch{Name: "w", Endpoint: srv.Endpoint, ServerName: serverName,
		WarnBefore: 21 * day, CriticalBefore: 7 * day, CABundle: srv.CAFile}
}

// Each check talks real TLS to a server on loopback and judges what it
// presents against warn_before and critical_before.
func TestCheckOne(t *testing.T) {
	now := time.Now()
	valid := func(left time.Duration) certtest.Options {
		return certtest.Options{Names: []string{"cdn.example.net"}, NotBefore: now.Add(left - 90*day), NotAfter: now.Add(left)}
	}
	for _, tc := range []struct {
		name    string
		opts    certtest.Options
		sni     string
		trusted bool
		health  plan.Health
		problem string // substring; "" means none at all
	}{
		{"fresh", valid(60 * day), "cdn.example.net", true, plan.OK, ""},
		{"within warn_before", valid(15 * day), "cdn.example.net", true, plan.Warning, "expires in 15.0 days"},
		{"within critical_before", valid(5 * day), "cdn.example.net", true, plan.Critical, "expires in 5.0 days"},
		{"expired", valid(-2 * day), "cdn.example.net", true, plan.Critical, "expired 2.0 days ago"},
		{"wrong name", valid(60 * day), "other.example.net", true, plan.Warning, "does not verify: x509: certificate is valid for cdn.example.net, not other.example.net"},
		{"untrusted issuer", valid(60 * day), "cdn.example.net", false, plan.Warning, "does not verify: x509: certificate signed by unknown authority"},
		{"critical and untrusted", valid(3 * day), "cdn.example.net", false, plan.Critical, "expires in 3.0 days; does not verify"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			srv := watchtest.Serve(t, tc.opts)
			w := watchOf(srv, tc.sni)
			if !tc.trusted {
				w.CABundle = ""
			}
			r := (&watch.Checker{Now: func() time.Time { return now }}).CheckOne(context.Background(), w)
			if r.Err != nil {
				t.Fatal(r.Err)
			}
			if r.Health != tc.health {
				t.Errorf("health %s, want %s (%s)", r.Health, tc.health, r.Problem)
			}
			if tc.problem == "" && r.Problem != "" || !strings.Contains(r.Problem, tc.problem) {
				t.Errorf("problem %q, want %q", r.Problem, tc.problem)
			}
			if !r.Facts.NotAfter.Equal(tc.opts.NotAfter.Truncate(time.Second)) || r.Facts.Names[0] != "cdn.example.net" {
				t.Errorf("facts: not after %s names %v, want %s", r.Facts.NotAfter, r.Facts.Names, tc.opts.NotAfter)
			}
			if len(r.Facts.Chain) != 1 || r.Facts.Issuer != "watchtest CA" {
				t.Errorf("chain of %d, issuer %q", len(r.Facts.Chain), r.Facts.Issuer)
			}
		})
	}
}

// The server name goes out as SNI: a server with several certificates
// presents the one for that name.
func TestCheckSendsSNI(t *testing.T) {
	now := time.Now()
	srv := watchtest.Serve(t,
		certtest.Options{Names: []string{"a.example.net"}, NotAfter: now.Add(80 * day)},
		certtest.Options{Names: []string{"b.example.net"}, NotAfter: now.Add(4 * day)})
	for name, wantLeft := range map[string]time.Duration{"a.example.net": 80 * day, "b.example.net": 4 * day} {
		f, err := watch.Check(context.Background(), srv.Endpoint, name)
		if err != nil {
			t.Fatal(err)
		}
		if f.Names[0] != name || f.NotAfter.Sub(now).Round(day) != wantLeft {
			t.Errorf("SNI %s: got %v expiring %s", name, f.Names, f.NotAfter)
		}
	}
}

// An endpoint that cannot be reached is a warning that says why; CheckAll
// keeps going with the others and keeps their order.
func TestCheckAllUnreachable(t *testing.T) {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	closed := ln.Addr().String()
	ln.Close()
	srv := watchtest.Serve(t, certtest.Options{Names: []string{"ok.example.net"}})
	ws := []config.Watch{
		{Name: "down", Endpoint: closed, ServerName: "down.example.net", WarnBefore: 21 * day, CriticalBefore: 7 * day},
		watchOf(srv, "ok.example.net"),
	}
	rs := (&watch.Checker{}).CheckAll(context.Background(), ws)
	if len(rs) != 2 || rs[0].Watch.Name != "down" || rs[1].Watch.Endpoint != srv.Endpoint {
		t.Fatalf("results out of order: %+v", rs)
	}
	if rs[0].Err == nil || rs[0].Health != plan.Warning || !strings.Contains(rs[0].Problem, "cannot check: dial tcp "+closed) {
		t.Errorf("down: %s %q (%v)", rs[0].Health, rs[0].Problem, rs[0].Err)
	}
	if rs[1].Health != plan.OK || rs[1].Err != nil || rs[1].Checked.IsZero() {
		t.Errorf("ok: %s %q (%v)", rs[1].Health, rs[1].Problem, rs[1].Err)
	}
}

// A server that accepts the connection but never answers the handshake is
// given up on when the context ends, not waited for forever.
func TestCheckHonoursContext(t *testing.T) {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer ln.Close()
	go func() {
		for {
			c, err := ln.Accept()
			if err != nil {
				return
			}
			defer c.Close()
		}
	}()
	ctx, cancel := context.WithTimeout(context.Background(), 200*time.Millisecond)
	defer cancel()
	start := time.Now()
	_, err = watch.Check(ctx, ln.Addr().String(), "silent.example.net")
	if err == nil || time.Since(start) > 5*time.Second {
		t.Errorf("Check = %v after %s", err, time.Since(start))
	}
}
