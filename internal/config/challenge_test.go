package config

import (
	"reflect"
	"testing"
	"time"
)

func TestDNSAndCASettings(t *testing.T) {
	fakeEnv(t, map[string]string{"CF_TOKEN": "secret-a", "EAB_HMAC": "c2VjcmV0LWhtYWMta2V5"})
	src := `
acme {
  directory       = "https://ca-one.internal/dir"
  preferred_chain = "Root X1"
  eab {
    kid  = "kid-1"
    hmac = env("EAB_HMAC")
  }
  fallback {
    directory = "zerossl"
    eab {
      kid  = "kid-2"
      hmac = "zz-_"
    }
  }
  fallback { directory = "letsencrypt" }
}
defaults {
  profile   = "shortlived"
  reuse_key = true
}
certificate "wild" {
  domains = ["*.Example.com", "example.com"]
  challenge "dns" {
    provider            = "dnsupdate"
    env                 = { CF_DNS_API_TOKEN = env("CF_TOKEN") }
    propagation_timeout = "2m"
    polling_interval    = "5s"
    resolvers           = ["192.0.2.53", "[2001:db8::53]:5353"]
  }
}
certificate "alpn" {
  domains   = ["a.example.com", "192.0.2.1"]
  profile   = "classic"
  reuse_key = false
  challenge "tls-alpn" {}
}
`
	cfg, err := Parse("/etc/renewer/renewer.hcl", []byte(src))
	if err != nil {
		t.Fatal(err)
	}
	wild, alpn := cfg.Certificates[0], cfg.Certificates[1]
	dns := wild.Challenge.DNS
	if dns == nil {
		t.Fatal("no dns settings")
	}
	if dns.Range.Start.Line != 24 {
		t.Errorf("dns block range = %s, want line 24", dns.Range)
	}
	want := DNS{
		Provider:           "dnsupdate",
		Env:                map[string]string{"CF_DNS_API_TOKEN": "secret-a"},
		PropagationTimeout: 2 * time.Minute,
		PollingInterval:    5 * time.Second,
		Resolvers:          []string{"192.0.2.53:53", "[2001:db8::53]:5353"},
		Range:              dns.Range,
	}
	if !reflect.DeepEqual(*dns, want) {
		t.Errorf("dns = %+v, want %+v", *dns, want)
	}
	if wild.Domains[0] != "*.example.com" || !wild.ReuseKey || wild.Profile != "shortlived" {
		t.Errorf("wild = %+v", wild)
	}
	if alpn.Challenge.Type != ChallengeTLSALPN || alpn.Challenge.Listen != DefaultTLSListen || alpn.ReuseKey || alpn.Profile != "classic" {
		t.Errorf("alpn = %+v", alpn)
	}
	cas := cfg.ACME.CAs()
	wantCAs := []CA{
		{Directory: "https://ca-one.internal/dir", StagingDirectory: "https://ca-one.internal/dir", PreferredChain: "Root X1",
			EAB: &EAB{KID: "kid-1", HMAC: "c2VjcmV0LWhtYWMta2V5"}},
		{Directory: "https://acme.zerossl.com/v2/DV90", StagingDirectory: "https://acme.zerossl.com/v2/DV90", EAB: &EAB{KID: "kid-2", HMAC: "zz-_"}},
		{Directory: LetsEncrypt, StagingDirectory: LetsEncryptStaging},
	}
	if !reflect.DeepEqual(cas, wantCAs) {
		t.Errorf("CAs() =\n%+v\nwant\n%+v", cas, wantCAs)
	}
}
