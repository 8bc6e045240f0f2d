package testca

import (
	"fmt"
	"strconv"
	"strings"
	"time"

	"github.com/miekg/dns"
)

// SetTXT replaces the TXT records of name (in zone, updated with key) by
// values, through an RFC 2136 update signed with key: what a domain owner
// does once to publish a dns-persist-01 record. No values removes them.
func (k *Knot) SetTXT(zone, key, name string, values ...string) error {
	m := new(dns.Msg)
	m.SetUpdate(dns.Fqdn(zone))
	fqdn := dns.Fqdn(name)
	m.RemoveRRset([]dns.RR{&dns.TXT{Hdr: dns.RR_Header{Name: fqdn, Rrtype: dns.TypeTXT, Class: dns.ClassINET}}})
	var rrs []dns.RR
	for _, v := range values {
		var parts []string
		for len(v) > 255 {
			parts, v = append(parts, strconv.Quote(v[:255])), v[255:]
		}
		parts = append(parts, strconv.Quote(v))
		rr, err := dns.NewRR(fmt.Sprintf("%s 5 IN TXT %s", fqdn, strings.Join(parts, " ")))
		if err != nil {
			return fmt.Errorf("testca: TXT %q: %w", v, err)
		}
		rrs = append(rrs, rr)
	}
	if len(rrs) > 0 {
		m.Insert(rrs)
	}
	keyName := dns.Fqdn(key)
	m.SetTsig(keyName, dns.HmacSHA256, 300, time.Now().Unix())
	c := &dns.Client{Timeout: 5 * time.Second, TsigSecret: map[string]string{keyName: k.Keys[key]}}
	r, _, err := c.Exchange(m, k.Addr)
	if err != nil {
		return fmt.Errorf("testca: update %s: %w", name, err)
	}
	if r.Rcode != dns.RcodeSuccess {
		return fmt.Errorf("testca: update %s: %s", name, dns.RcodeToString[r.Rcode])
	}
	return nil
}
