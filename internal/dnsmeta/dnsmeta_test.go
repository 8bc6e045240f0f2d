package dnsmeta

import (
	"slices"
	"testing"
)

func TestLookup(t *testing.T) {
	if Count() < 190 {
		t.Errorf("only %d providers in the table", Count())
	}
	for name, want := range map[string]string{"rfc2136": "DNSUPDATE_NAMESERVER", "dnsupdate": "DNSUPDATE_NAMESERVER", "exec": "EXEC_PATH", "cloudflare": "CF_DNS_API_TOKEN"} {
		p, ok := Lookup(name)
		if !ok || !slices.Contains(p.Credentials, want) {
			t.Errorf("Lookup(%q) = %+v, %v; want credentials with %s", name, p, ok, want)
		}
	}
	if p, _ := Lookup("dnsupdate"); p.Name() != "rfc2136" {
		t.Errorf("alias dnsupdate -> %q, want rfc2136", p.Name())
	}
	if _, ok := Lookup("nosuchprovider"); ok {
		t.Error("unknown name found")
	}
}

func TestClosest(t *testing.T) {
	for in, want := range map[string]string{"cloudfare": "cloudflare", "route35": "route53", "digitalocean": "digitalocean", "rfc2163": "rfc2136"} {
		got := Closest(in, 3)
		if len(got) == 0 || got[0] != want {
			t.Errorf("Closest(%q) = %v, want %q first", in, got, want)
		}
	}
	if got := Closest("qqqqqqqqqqqqqqqqqqqqqqq", 3); len(got) != 0 {
		t.Errorf("nonsense got suggestions %v", got)
	}
}
