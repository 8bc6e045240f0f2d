package testca

import (
	"context"
	"crypto/rand"
	"encoding/base64"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/miekg/dns"
)

// Knot is a real authoritative DNS server (Knot DNS from Debian) started for
// one test on a free loopback port, serving zones that accept RFC 2136
// updates signed with their own TSIG keys only.
type Knot struct {
	Addr string            // host:port it answers on (UDP and TCP)
	Keys map[string]string // TSIG key name -> base64 secret (hmac-sha256)
	Log  *syncBuffer
}

// KnotZone is one zone and the TSIG key allowed to update it.
type KnotZone struct {
	Name string // e.g. "example.test"
	Key  string // TSIG key name
	// Records are more zone-file lines, relative to the zone, e.g.
	// "* A 127.0.0.1" or `@ CAA 0 issue "pebble.letsencrypt.org"`. Without
	// them the zone holds its SOA, NS and 127.0.0.1 for the apex.
	Records []string
}

// NeedKnot returns knotd's path. Without it the test is skipped, loudly,
// unless $CI is set: there a missing package is a failure.
func NeedKnot(t testing.TB) string {
	t.Helper()
	path, err := exec.LookPath("knotd")
	if err != nil {
		for _, p := range []string{"/usr/sbin/knotd", "/sbin/knotd"} {
			if _, serr := os.Stat(p); serr == nil {
				return p
			}
		}
		msg := "knotd (Knot DNS) is not installed: `apt-get install knot` to run the RFC 2136 tests against a real DNS server"
		if os.Getenv("CI") != "" {
			t.Fatal(msg)
		}
		t.Skip("SKIPPED: " + msg)
	}
	return path
}

// StartKnot starts knotd with the zones, each updatable with its key only,
// and waits until it answers SOA queries. It is stopped by t.Cleanup.
func StartKnot(t testing.TB, zones ...KnotZone) *Knot {
	t.Helper()
	knotd := NeedKnot(t)
	dir := t.TempDir()
	k := &Knot{Keys: map[string]string{}, Log: &syncBuffer{}}
	var conf strings.Builder
	port, err := FreePort()
	if err != nil {
		t.Fatal(err)
	}
	k.Addr = "127.0.0.1:" + strconv.Itoa(port)
	fmt.Fprintf(&conf, "server:\n  rundir: %q\n  listen: 127.0.0.1@%d\n\n", dir, port)
	fmt.Fprintf(&conf, "database:\n  storage: %q\n\n", dir)
	fmt.Fprintf(&conf, "log:\n  - target: stderr\n    any: info\n\n")
	conf.WriteString("key:\n")
	for _, z := range zones {
		if _, ok := k.Keys[z.Key]; ok {
			continue
		}
		secret := make([]byte, 32)
		_, _ = rand.Read(secret)
		k.Keys[z.Key] = base64.StdEncoding.EncodeToString(secret)
		fmt.Fprintf(&conf, "  - id: %s\n    algorithm: hmac-sha256\n    secret: %s\n", z.Key, k.Keys[z.Key])
	}
	conf.WriteString("\nacl:\n")
	for _, z := range zones {
		fmt.Fprintf(&conf, "  - id: update-%s\n    key: %s\n    action: update\n", z.Name, z.Key)
	}
	conf.WriteString("\nzone:\n")
	for _, z := range zones {
		zoneFile := filepath.Join(dir, z.Name+".zone")
		soa := fmt.Sprintf("$ORIGIN %s.\n$TTL 5\n@ SOA ns1 hostmaster 1 3600 600 86400 5\n@ NS ns1\nns1 A 127.0.0.1\n@ A 127.0.0.1\n", z.Name)
		for _, r := range z.Records {
			soa += r + "\n"
		}
		if err := os.WriteFile(zoneFile, []byte(soa), 0o600); err != nil {
			t.Fatal(err)
		}
		fmt.Fprintf(&conf, "  - domain: %s\n    file: %q\n    acl: update-%s\n    zonefile-sync: -1\n", z.Name, zoneFile, z.Name)
	}
	confFile := filepath.Join(dir, "knot.conf")
	if err := os.WriteFile(confFile, []byte(conf.String()), 0o600); err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	cmd := exec.CommandContext(ctx, knotd, "-c", confFile)
	cmd.Stdout, cmd.Stderr = k.Log, k.Log
	if err := cmd.Start(); err != nil {
		cancel()
		t.Fatalf("start knotd: %v", err)
	}
	done := make(chan struct{})
	go func() { _ = cmd.Wait(); close(done) }()
	t.Cleanup(func() {
		_ = cmd.Process.Signal(os.Interrupt)
		select {
		case <-done:
		case <-time.After(5 * time.Second):
			cancel()
			<-done
		}
		cancel()
		if t.Failed() {
			t.Logf("knotd output:\n%s", k.Log.String())
		}
	})
	deadline := time.Now().Add(15 * time.Second)
	for {
		ok := true
		for _, z := range zones {
			m := new(dns.Msg)
			m.SetQuestion(dns.Fqdn(z.Name), dns.TypeSOA)
			r, _, err := (&dns.Client{Timeout: time.Second}).Exchange(m, k.Addr)
			if err != nil || r.Rcode != dns.RcodeSuccess || len(r.Answer) == 0 {
				ok = false
			}
		}
		if ok {
			return k
		}
		select {
		case <-done:
			t.Fatalf("knotd exited:\n%s", k.Log.String())
		default:
		}
		if time.Now().After(deadline) {
			t.Fatalf("knotd not answering on %s:\n%s", k.Addr, k.Log.String())
		}
		time.Sleep(50 * time.Millisecond)
	}
}

// TXT returns the TXT values of name as Knot serves them now.
func (k *Knot) TXT(name string) ([]string, error) {
	m := new(dns.Msg)
	m.SetQuestion(dns.Fqdn(name), dns.TypeTXT)
	r, _, err := (&dns.Client{Timeout: time.Second}).Exchange(m, k.Addr)
	if err != nil {
		return nil, err
	}
	var out []string
	for _, rr := range r.Answer {
		if txt, ok := rr.(*dns.TXT); ok {
			out = append(out, strings.Join(txt.Txt, ""))
		}
	}
	return out, nil
}
