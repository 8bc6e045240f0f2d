package config

import (
	"reflect"
	"strings"
	"testing"
	"time"
)

func TestDNSPersistChallenge(t *testing.T) {
	src := `
acme { email = "ops@example.com" }
certificate "wild" {
  domains = ["*.example.com", "example.com"]
  challenge "dns-persist" {
    policy        = "wildcard"
    persist_until = "2027-06-30"
    resolvers     = ["192.0.2.53"]
  }
}
certificate "plain" {
  domains = ["www.example.com"]
  challenge "dns-persist" {
    persist_until = "2027-01-02T03:04:05+01:00"
  }
}
`
	cfg, err := Parse("/etc/renewer/renewer.hcl", []byte(src))
	if err != nil {
		t.Fatal(err)
	}
	w, p := cfg.Certificates[0].Challenge, cfg.Certificates[1].Challenge
	if w.Type != ChallengeDNSPersist || w.Persist == nil || w.DNS != nil {
		t.Fatalf("challenge = %+v", w)
	}
	want := &DNSPersist{Wildcard: true, PersistUntil: time.Date(2027, 6, 30, 0, 0, 0, 0, time.UTC), Resolvers: []string{"192.0.2.53:53"}, Range: w.Persist.Range}
	if !reflect.DeepEqual(w.Persist, want) {
		t.Errorf("persist = %+v, want %+v", w.Persist, want)
	}
	if w.Persist.Range.Start.Line != 5 {
		t.Errorf("range = %s", w.Persist.Range)
	}
	if p.Persist.Wildcard || !p.Persist.PersistUntil.Equal(time.Date(2027, 1, 2, 2, 4, 5, 0, time.UTC)) || p.Persist.Resolvers != nil {
		t.Errorf("plain = %+v", p.Persist)
	}
}

func TestDNSPersistErrors(t *testing.T) {
	for _, tc := range []struct{ src, want string }{
		{`certificate "w" {
  domains = ["*.example.com"]
  challenge "dns-persist" {}
}`, `renewer.hcl:3:3: Wildcard needs policy = "wildcard"; "*.example.com" is a wildcard`},
		{`certificate "w" {
  domains = ["example.com"]
  challenge "dns-persist" { policy = "subdomains" }
}`, `renewer.hcl:3:38: Invalid policy; "subdomains" is not a dns-persist policy`},
		{`certificate "w" {
  domains = ["example.com"]
  challenge "dns-persist" { persist_until = "next year" }
}`, `renewer.hcl:3:45: Invalid persist_until; "next year" is not a date`},
		{`certificate "w" {
  domains = ["192.0.2.1"]
  challenge "dns-persist" {}
}`, `IP addresses (RFC 8738) cannot be validated with the dns-persist challenge`},
		{`certificate "w" {
  domains = ["example.com"]
  challenge "dns-persist" { provider = "rfc2136" }
}`, `Unsupported argument`},
	} {
		_, err := Parse("/etc/renewer/renewer.hcl", []byte(tc.src+"\nacme { email = \"ops@example.com\" }\n"))
		if err == nil || !strings.Contains(err.Error(), tc.want) {
			t.Errorf("error = %v\nwant %q", err, tc.want)
		}
	}
}
