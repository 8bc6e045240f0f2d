package preflight

import (
	"context"
	"errors"
	"fmt"
	"net"
	"strings"

	"github.com/miekg/dns"
)

// SystemResolvers are the nameservers of /etc/resolv.conf (host:port).
func SystemResolvers() ([]string, error) {
	cc, err := dns.ClientConfigFromFile("/etc/resolv.conf")
	if err != nil {
		return nil, fmt.Errorf("read /etc/resolv.conf: %w", err)
	}
	out := make([]string, 0, len(cc.Servers))
	for _, s := range cc.Servers {
		out = append(out, net.JoinHostPort(s, cc.Port))
	}
	if len(out) == 0 {
		return nil, errors.New("/etc/resolv.conf lists no nameserver")
	}
	return out, nil
}

// query asks the resolvers in turn (recursion desired) and returns the
// first answer that is not a server failure.
func query(ctx context.Context, resolvers []string, name string, qtype uint16) (*dns.Msg, error) {
	m := new(dns.Msg)
	m.SetQuestion(dns.Fqdn(name), qtype)
	m.RecursionDesired = true
	var errs []error
	for _, r := range resolvers {
		if !strings.Contains(r, ":") || strings.Count(r, ":") > 1 && !strings.HasPrefix(r, "[") {
			r = net.JoinHostPort(r, "53")
		}
		in, _, err := new(dns.Client).ExchangeContext(ctx, m, r)
		if err == nil && in.Truncated {
			in, _, err = (&dns.Client{Net: "tcp"}).ExchangeContext(ctx, m, r)
		}
		if err != nil {
			errs = append(errs, fmt.Errorf("%s: %w", r, err))
			continue
		}
		if in.Rcode == dns.RcodeServerFailure || in.Rcode == dns.RcodeRefused {
			errs = append(errs, fmt.Errorf("%s: %s", r, dns.RcodeToString[in.Rcode]))
			continue
		}
		return in, nil
	}
	return nil, errors.Join(errs...)
}

// LookupIP returns the A and AAAA addresses of name (none, with no error,
// when it has none).
func LookupIP(ctx context.Context, resolvers []string, name string) ([]net.IP, error) {
	var ips []net.IP
	for _, t := range []uint16{dns.TypeA, dns.TypeAAAA} {
		in, err := query(ctx, resolvers, name, t)
		if err != nil {
			return nil, err
		}
		for _, rr := range in.Answer {
			switch r := rr.(type) {
			case *dns.A:
				ips = append(ips, r.A)
			case *dns.AAAA:
				ips = append(ips, r.AAAA)
			}
		}
	}
	return ips, nil
}

// FindZone returns the zone that holds fqdn: the nearest name, climbing
// from fqdn to the root, that has an SOA record (as lego's DNS-01 does).
func FindZone(ctx context.Context, resolvers []string, fqdn string) (string, error) {
	name := dns.Fqdn(fqdn)
	for {
		in, err := query(ctx, resolvers, name, dns.TypeSOA)
		if err != nil {
			return "", err
		}
		for _, rr := range append(in.Answer, in.Ns...) {
			if soa, ok := rr.(*dns.SOA); ok && in.Rcode == dns.RcodeSuccess && len(in.Answer) > 0 {
				return strings.TrimSuffix(soa.Hdr.Name, "."), nil
			}
		}
		i := strings.Index(name, ".")
		if i < 0 || i == len(name)-1 {
			return "", fmt.Errorf("no SOA record above %s", fqdn)
		}
		name = name[i+1:]
	}
}

// CAASet is the relevant CAA record set of a name (RFC 8659 §3): that of
// the name itself or, when it has none, of its closest parent that has.
type CAASet struct {
	At      string     // the name the records are at; "" when there are none
	Records []*dns.CAA // empty: any CA may issue
}

// LookupCAA finds the relevant CAA set of name, climbing to its parents.
func LookupCAA(ctx context.Context, resolvers []string, name string) (CAASet, error) {
	n := strings.TrimSuffix(strings.TrimPrefix(name, "*."), ".")
	for n != "" {
		in, err := query(ctx, resolvers, n, dns.TypeCAA)
		if err != nil {
			return CAASet{}, err
		}
		var recs []*dns.CAA
		for _, rr := range in.Answer {
			if c, ok := rr.(*dns.CAA); ok {
				recs = append(recs, c)
			}
		}
		if len(recs) > 0 {
			return CAASet{At: n, Records: recs}, nil
		}
		i := strings.Index(n, ".")
		if i < 0 {
			break
		}
		n = n[i+1:]
	}
	return CAASet{}, nil
}

// Summary lists the set's records as written in a zone file.
func (s CAASet) Summary() string {
	parts := make([]string, 0, len(s.Records))
	for _, r := range s.Records {
		parts = append(parts, fmt.Sprintf("%d %s %q", r.Flag, r.Tag, r.Value))
	}
	return strings.Join(parts, ", ")
}

// Permits reports whether the set lets a CA with these CAA identities issue
// for name (a wildcard name reads "issuewild" first), and when not, why.
// With no records any CA may; with records, a CA that lists no identities
// is not known to be permitted.
func (s CAASet) Permits(name string, identities []string) (bool, string) {
	if len(s.Records) == 0 {
		return true, ""
	}
	var issue, wild []*dns.CAA
	for _, r := range s.Records {
		switch strings.ToLower(r.Tag) {
		case "issue":
			issue = append(issue, r)
		case "issuewild":
			wild = append(wild, r)
		case "iodef", "issuemail", "issuevmc", "contactemail", "contactphone":
		default:
			if r.Flag&128 != 0 {
				return false, fmt.Sprintf("critical unknown tag %q", r.Tag)
			}
		}
	}
	relevant := issue
	if strings.HasPrefix(name, "*.") && len(wild) > 0 {
		relevant = wild
	}
	if len(relevant) == 0 {
		return true, "" // only iodef and friends: no restriction on issuance
	}
	for _, r := range relevant {
		domain := strings.TrimSpace(strings.SplitN(r.Value, ";", 2)[0])
		for _, id := range identities {
			if domain != "" && strings.EqualFold(domain, id) {
				return true, ""
			}
		}
	}
	return false, "it permits only " + s.Summary()
}
