package acme

import (
	"context"
	"errors"
	"fmt"
	"net/http"
	"net/http/httptest"
	"os"
	"slices"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/renewer/renewer/internal/testca"
)

func rfc2136Env(k *testca.Knot, key string) map[string]string {
	return map[string]string{
		"DNSUPDATE_NAMESERVER":        k.Addr,
		"DNSUPDATE_TSIG_KEY":          key,
		"DNSUPDATE_TSIG_SECRET":       k.Keys[key],
		"DNSUPDATE_TSIG_ALGORITHM":    "hmac-sha256",
		"DNSUPDATE_SEQUENCE_INTERVAL": "1",
	}
}

// A wildcard and its base name through RFC 2136 updates to a real Knot DNS,
// which Pebble also asks for the TXT records.
func TestObtainRFC2136Wildcard(t *testing.T) {
	t.Parallel()
	knot := testca.StartKnot(t, testca.KnotZone{Name: "example.test", Key: "renewer-key"})
	ca := testca.StartT(t, testca.Options{DNSServer: knot.Addr})
	c := testClient(t, ca, nil)
	cert, err := c.Obtain(context.Background(), Request{
		Domains: []string{"*.example.test", "example.test"},
		DNS: &DNSRequest{Providers: testProviders,
			Provider: "rfc2136", Env: rfc2136Env(knot, "renewer-key"),
			PollingInterval: 200 * time.Millisecond, PropagationTimeout: 30 * time.Second,
			Resolvers: []string{knot.Addr},
		},
	})
	if err != nil {
		t.Fatal(err)
	}
	leaf := leafOf(t, cert)
	if fmt.Sprint(leaf.DNSNames) != "[*.example.test example.test]" {
		t.Errorf("names = %v", leaf.DNSNames)
	}
	if cert.Directory != ca.Directory {
		t.Errorf("Directory = %q, want %q", cert.Directory, ca.Directory)
	}
	// The challenge records were removed again.
	if txt, err := knot.TXT("_acme-challenge.example.test"); err != nil || len(txt) != 0 {
		t.Errorf("TXT left behind: %v %v", txt, err)
	}
	// The provider's variables were set only while it was built.
	if v, ok := os.LookupEnv("DNSUPDATE_TSIG_SECRET"); ok {
		t.Errorf("DNSUPDATE_TSIG_SECRET left in the environment: %q", v)
	}
}

// Two certificates with the same provider and different credentials,
// obtained at once: each zone accepts updates signed with its own TSIG key
// only, so either order would fail if it used the other's key.
func TestDNSCredentialsIsolatedRFC2136(t *testing.T) {
	t.Parallel()
	knot := testca.StartKnot(t, testca.KnotZone{Name: "alpha.test", Key: "key-alpha"}, testca.KnotZone{Name: "beta.test", Key: "key-beta"})
	ca := testca.StartT(t, testca.Options{DNSServer: knot.Addr})
	c := testClient(t, ca, nil)
	reqs := map[string]Request{}
	for _, z := range []string{"alpha", "beta"} {
		reqs[z] = Request{
			Domains: []string{"www." + z + ".test", z + ".test"},
			DNS: &DNSRequest{Providers: testProviders,
				Provider: "rfc2136", Env: rfc2136Env(knot, "key-"+z),
				PollingInterval: 200 * time.Millisecond, PropagationTimeout: 30 * time.Second, Resolvers: []string{knot.Addr},
			},
		}
	}
	var wg sync.WaitGroup
	errs := map[string]error{}
	var mu sync.Mutex
	for z, r := range reqs {
		wg.Go(func() {
			_, err := c.Obtain(context.Background(), r)
			mu.Lock()
			errs[z] = err
			mu.Unlock()
		})
	}
	wg.Wait()
	for z, err := range errs {
		if err != nil {
			t.Errorf("%s: %v", z, err)
		}
	}
	// A key used on the other zone is refused: the test above would notice a leak.
	wrong := reqs["alpha"]
	wrong.DNS = &DNSRequest{Providers: testProviders, Provider: "rfc2136", Env: rfc2136Env(knot, "key-beta"), PropagationTimeout: 5 * time.Second, Resolvers: []string{knot.Addr}}
	if _, err := c.Obtain(context.Background(), wrong); err == nil || !strings.Contains(err.Error(), "bad authentication") {
		t.Errorf("update of alpha.test signed with beta's key: err = %v, want bad authentication", err)
	}
}

// Many providers built at once, each with its own settings, each run its
// own program: no provider ever saw another's variables.
func TestDNSCredentialsIsolatedConcurrentBuild(t *testing.T) {
	t.Parallel()
	log := t.TempDir() + "/exec.log"
	const n = 40
	var wg sync.WaitGroup
	errs := make([]error, n)
	for i := range n {
		wg.Go(func() {
			id := fmt.Sprintf("cert%02d", i)
			p, err := newDNSProvider(DNSRequest{Providers: testProviders, Provider: "exec", Env: map[string]string{
				"EXEC_PATH": execScript(t, "none", id, log), "EXEC_SEQUENCE_INTERVAL": "1",
			}})
			if err == nil {
				err = p.Present(id+".example.test", "token", "keyauth")
			}
			errs[i] = err
		})
	}
	wg.Wait()
	if err := errors.Join(errs...); err != nil {
		t.Fatal(err)
	}
	raw, err := os.ReadFile(log)
	if err != nil {
		t.Fatal(err)
	}
	lines := strings.Split(strings.TrimSpace(string(raw)), "\n")
	if len(lines) != n {
		t.Fatalf("%d programs ran, want %d", len(lines), n)
	}
	for _, l := range lines {
		var id, action, fqdn string
		fmt.Sscan(l, &id, &action, &fqdn)
		if fqdn != "_acme-challenge."+id+".example.test." {
			t.Errorf("program of %s was asked about %s: a provider used another certificate's EXEC_PATH", id, fqdn)
		}
	}
	if _, ok := os.LookupEnv("EXEC_PATH"); ok {
		t.Error("EXEC_PATH left in the environment")
	}
}

// lego's exec provider runs a user program to publish the record.
func TestObtainExec(t *testing.T) {
	t.Parallel()
	ca := testca.StartT(t, testca.Options{})
	c := testClient(t, ca, nil)
	log := t.TempDir() + "/exec.log"
	cert, err := c.Obtain(context.Background(), Request{
		Domains: []string{"*.exec.example.test", "exec.example.test"},
		DNS: &DNSRequest{Providers: testProviders,
			Provider: "exec",
			Env:      map[string]string{"EXEC_PATH": execScript(t, ca.ChallAPI, "exec", log), "EXEC_SEQUENCE_INTERVAL": "1"},
			// challtestsrv answers TXT queries but not SOA: check at it directly.
			Resolvers: []string{ca.DNSAddr}, PollingInterval: 200 * time.Millisecond, PropagationTimeout: 20 * time.Second,
		},
	})
	if err != nil {
		t.Fatal(err)
	}
	if leaf := leafOf(t, cert); !slices.Equal(leaf.DNSNames, []string{"*.exec.example.test", "exec.example.test"}) {
		t.Errorf("names = %v", leaf.DNSNames)
	}
	raw, _ := os.ReadFile(log)
	if strings.Count(string(raw), "present") != 2 || strings.Count(string(raw), "cleanup") != 2 {
		t.Errorf("program calls:\n%s", raw)
	}
}

// Missing credentials are reported, naming the variables, before any
// request reaches the CA.
func TestDNSMissingCredentials(t *testing.T) {
	t.Parallel()
	var hits atomic.Int32
	srv := httptest.NewTLSServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) { hits.Add(1) }))
	defer srv.Close()
	c, err := New(Options{Directory: srv.URL + "/dir", AcceptTerms: true, AccountDir: t.TempDir()}, nil)
	if err != nil {
		t.Fatal(err)
	}
	_, err = c.Obtain(context.Background(), Request{Domains: []string{"x.example.test"}, DNS: &DNSRequest{Providers: testProviders, Provider: "rfc2136", Env: map[string]string{"DNSUPDATE_TSIG_KEY": "k"}}})
	var ce *CredentialsError
	if !errors.As(err, &ce) {
		t.Fatalf("err = %v, want *CredentialsError", err)
	}
	for _, want := range []string{"DNSUPDATE_NAMESERVER", `env = { DNSUPDATE_NAMESERVER = env("DNSUPDATE_NAMESERVER") }`} {
		if !strings.Contains(err.Error(), want) {
			t.Errorf("error does not mention %s: %v", want, err)
		}
	}
	if n := hits.Load(); n != 0 {
		t.Errorf("%d requests reached the CA", n)
	}
	if err := CheckDNS(DNSRequest{Providers: testProviders, Provider: "exec"}); err == nil || !strings.Contains(err.Error(), "EXEC_PATH") {
		t.Errorf("CheckDNS(exec without EXEC_PATH) = %v", err)
	}
}

// A record that never appears fails after propagation_timeout with the
// record and the resolvers named.
func TestDNSPropagationTimeout(t *testing.T) {
	t.Parallel()
	ca := testca.StartT(t, testca.Options{})
	c := testClient(t, ca, nil)
	start := time.Now()
	_, err := c.Obtain(context.Background(), Request{
		Domains: []string{"never.example.test"},
		DNS: &DNSRequest{Providers: testProviders,
			Provider: "exec", Env: map[string]string{"EXEC_PATH": execScript(t, "none", "never", t.TempDir()+"/log")},
			Resolvers: []string{ca.DNSAddr}, PollingInterval: 300 * time.Millisecond, PropagationTimeout: 2 * time.Second,
		},
	})
	var pe *PropagationError
	if !errors.As(err, &pe) {
		t.Fatalf("err = %v, want *PropagationError", err)
	}
	for _, want := range []string{"_acme-challenge.never.example.test.", ca.DNSAddr, "2s"} {
		if !strings.Contains(err.Error(), want) {
			t.Errorf("error does not name %s: %v", want, err)
		}
	}
	if took := time.Since(start); took > 30*time.Second {
		t.Errorf("took %s", took)
	}
	t.Log(err)
}
