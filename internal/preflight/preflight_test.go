package preflight

import (
	"context"
	"net"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/miekg/dns"

	"github.com/renewer/renewer/internal/testca"
)

func caa(flag uint8, tag, value string) *dns.CAA {
	return &dns.CAA{Flag: flag, Tag: tag, Value: value}
}

// RFC 8659 §4: issue / issuewild, parameters after ';', an empty value
// forbidding every CA, unknown critical tags, no records permitting all.
func TestCAAPermits(t *testing.T) {
	le := []string{"letsencrypt.org"}
	for _, tc := range []struct {
		name  string
		recs  []*dns.CAA
		host  string
		ids   []string
		allow bool
	}{
		{"no records", nil, "a.test", le, true},
		{"issue names the CA", []*dns.CAA{caa(0, "issue", "letsencrypt.org")}, "a.test", le, true},
		{"case and parameters", []*dns.CAA{caa(0, "issue", "LetsEncrypt.org; accounturi=https://x/acct/1")}, "a.test", le, true},
		{"another CA", []*dns.CAA{caa(0, "issue", "sectigo.com")}, "a.test", le, false},
		{"empty issue forbids all", []*dns.CAA{caa(0, "issue", ";")}, "a.test", le, false},
		{"one of several", []*dns.CAA{caa(0, "issue", "sectigo.com"), caa(0, "issue", "letsencrypt.org")}, "a.test", le, true},
		{"iodef only", []*dns.CAA{caa(0, "iodef", "mailto:x@a.test")}, "a.test", le, true},
		{"issuewild rules wildcards", []*dns.CAA{caa(0, "issue", "letsencrypt.org"), caa(0, "issuewild", ";")}, "*.a.test", le, false},
		{"issuewild ignored for plain names", []*dns.CAA{caa(0, "issue", "letsencrypt.org"), caa(0, "issuewild", ";")}, "a.test", le, true},
		{"wildcard falls back to issue", []*dns.CAA{caa(0, "issue", "letsencrypt.org")}, "*.a.test", le, true},
		{"unknown critical tag", []*dns.CAA{caa(0, "issue", "letsencrypt.org"), caa(128, "tbs", "x")}, "a.test", le, false},
		{"unknown non-critical tag", []*dns.CAA{caa(0, "issue", "letsencrypt.org"), caa(0, "tbs", "x")}, "a.test", le, true},
		{"CA lists no identities", []*dns.CAA{caa(0, "issue", "letsencrypt.org")}, "a.test", nil, false},
	} {
		t.Run(tc.name, func(t *testing.T) {
			ok, why := CAASet{At: "a.test", Records: tc.recs}.Permits(tc.host, tc.ids)
			if ok != tc.allow {
				t.Errorf("Permits = %v (%s), want %v", ok, why, tc.allow)
			}
			if !ok && why == "" {
				t.Error("no reason given")
			}
		})
	}
}

func TestWritable(t *testing.T) {
	dir := t.TempDir()
	if err := Writable(filepath.Join(dir, "not", "yet")); err != nil {
		t.Errorf("missing directories under a writable one: %v", err)
	}
	if _, err := os.Stat(filepath.Join(dir, "not")); !os.IsNotExist(err) {
		t.Errorf("Writable created directories: %v", err)
	}
	if left, _ := os.ReadDir(dir); len(left) != 0 {
		t.Errorf("probe files left: %v", left)
	}
	file := filepath.Join(dir, "f")
	if err := os.WriteFile(file, nil, 0o600); err != nil {
		t.Fatal(err)
	}
	if err := Writable(filepath.Join(file, "sub")); err == nil || !strings.Contains(err.Error(), "not a directory") {
		t.Errorf("under a file: %v", err)
	}
	ro := testca.ReadOnlyDir(t)
	if err := Writable(filepath.Join(ro, "state")); err == nil {
		t.Error("a read-only directory is reported writable")
	}
}

func TestExecutable(t *testing.T) {
	dir := t.TempDir()
	script := filepath.Join(dir, "reload")
	if err := os.WriteFile(script, []byte("#!/bin/sh\n"), 0o644); err != nil {
		t.Fatal(err)
	}
	for _, tc := range []struct {
		argv0, want string
	}{
		{"sh", ""},
		{"/bin/sh", ""},
		{"no-such-program-renewer", "is not in $PATH"},
		{filepath.Join(dir, "missing"), "does not exist"},
		{script, "is not executable"},
		{dir, "is not executable"},
	} {
		err := Executable(tc.argv0)
		if (tc.want == "") != (err == nil) || (err != nil && !strings.Contains(err.Error(), tc.want)) {
			t.Errorf("Executable(%s) = %v, want %q", tc.argv0, err, tc.want)
		}
	}
}

// Against a real Knot: A and AAAA lookups, the DNS-01 zone found from a
// deep name, and the CAA set climbing to the parent (RFC 8659 §3) while a
// name's own set wins over its parent's.
func TestLookupsAgainstKnot(t *testing.T) {
	knot := testca.StartKnot(t, testca.KnotZone{Name: "example.test", Key: "k", Records: []string{
		`www A 127.0.0.1`,
		`www AAAA ::1`,
		`@ CAA 0 issue "ca.example.test"`,
		`own CAA 0 issue "other.test"`,
		`own A 127.0.0.1`,
	}})
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	rs := []string{knot.Addr}
	ips, err := LookupIP(ctx, rs, "www.example.test")
	if err != nil || len(ips) != 2 || !ips[0].Equal(net.IPv4(127, 0, 0, 1)) || !ips[1].Equal(net.IPv6loopback) {
		t.Errorf("www: %v %v", ips, err)
	}
	if ips, err := LookupIP(ctx, rs, "nothing.example.test"); err != nil || len(ips) != 0 {
		t.Errorf("nothing: %v %v", ips, err)
	}
	if zone, err := FindZone(ctx, rs, "_acme-challenge.a.b.example.test"); err != nil || zone != "example.test" {
		t.Errorf("zone %q %v", zone, err)
	}
	set, err := LookupCAA(ctx, rs, "*.deep.www.example.test")
	if err != nil || set.At != "example.test" || set.Summary() != `0 issue "ca.example.test"` {
		t.Errorf("climbed CAA: %+v %v", set, err)
	}
	set, err = LookupCAA(ctx, rs, "own.example.test")
	if err != nil || set.At != "own.example.test" {
		t.Errorf("own CAA: %+v %v", set, err)
	}
	if ok, _ := set.Permits("own.example.test", []string{"ca.example.test"}); ok {
		t.Error("the name's own CAA set should win over its parent's")
	}
}
