package config

import (
	"fmt"
	"maps"
	"net"
	"os"
	"slices"
	"strconv"
	"strings"
	"time"

	"github.com/hashicorp/hcl/v2"

	"github.com/renewer/renewer/internal/dnsmeta"
)

// Challenge types accepted as the label of a challenge block.
const (
	ChallengeHTTP    = "http"
	ChallengeDNS     = "dns"
	ChallengeTLSALPN = "tls-alpn"
	// ChallengeDNSPersist is dns-persist-01: a TXT record published once
	// names the CA and the account; no DNS provider (persist.go).
	ChallengeDNSPersist = "dns-persist"
)

// DefaultTLSListen is where tls-alpn-01 is answered when listen is not set.
const DefaultTLSListen = ":443"

// DNS is the setting of a challenge "dns" block.
type DNS struct {
	Provider string            // a lego DNS provider name, e.g. "cloudflare", "rfc2136", "exec"
	Env      map[string]string // the provider's settings and credentials, for this certificate only
	// Zero means the provider's own value (its *_PROPAGATION_TIMEOUT / *_POLLING_INTERVAL, else lego's 60s / 2s).
	PropagationTimeout time.Duration
	PollingInterval    time.Duration
	// Resolvers, when set, are the only nameservers asked whether the TXT
	// record is visible (host:port, port 53 by default); when empty, the
	// system resolvers and the zone's authoritative nameservers are asked.
	Resolvers []string
	Range     hcl.Range // the challenge block, for later error messages
}

func (d *decoder) challenge(b *hcl.Block) Challenge {
	switch typ := b.Labels[0]; typ {
	case ChallengeHTTP:
		return d.httpChallenge(b)
	case ChallengeDNS:
		return d.dnsChallenge(b)
	case ChallengeDNSPersist:
		return d.persistChallenge(b)
	case ChallengeTLSALPN:
		c := d.content(b.Body, []string{"listen"})
		ch := Challenge{Type: ChallengeTLSALPN, Listen: DefaultTLSListen}
		d.listen(c.Attributes["listen"], &ch.Listen, DefaultTLSListen)
		return ch
	default:
		d.errorAt(b.LabelRanges[0], "Unsupported challenge type", fmt.Sprintf(
			`%q is not a challenge type; use "http" (HTTP-01), "dns" (DNS-01), "dns-persist" (dns-persist-01) or "tls-alpn" (TLS-ALPN-01).`, typ))
		return Challenge{}
	}
}

// listen evaluates a host:port attribute into *dst.
func (d *decoder) listen(a *hcl.Attribute, dst *string, example string) {
	if !d.eval(a, dst) {
		return
	}
	_, port, err := net.SplitHostPort(*dst)
	if n, perr := strconv.Atoi(port); err != nil || perr != nil || n < 1 || n > 65535 {
		d.attrError(a, "Invalid listen address",
			fmt.Sprintf(`%q is not host:port with a port from 1 to 65535, e.g. %q.`, *dst, example))
	}
}

func (d *decoder) httpChallenge(b *hcl.Block) Challenge {
	c := d.content(b.Body, []string{"listen", "webroot"})
	listen, webroot := c.Attributes["listen"], c.Attributes["webroot"]
	ch := Challenge{Type: ChallengeHTTP}
	d.listen(listen, &ch.Listen, DefaultListen)
	if p, raw, ok := d.path(webroot); ok {
		ch.Webroot = p
		if fi, err := os.Stat(p); err != nil {
			d.attrError(webroot, "Invalid webroot", fmt.Sprintf("webroot %q: %s.", raw, reason(err)))
		} else if !fi.IsDir() {
			d.attrError(webroot, "Invalid webroot", fmt.Sprintf("webroot %q is not a directory.", raw))
		}
	}
	switch {
	case listen != nil && webroot != nil:
		d.attrError(webroot, "Conflicting challenge settings",
			"Set either listen (standalone server) or webroot, not both.")
	case listen == nil && webroot == nil:
		ch.Listen = DefaultListen
	}
	return ch
}

func (d *decoder) dnsChallenge(b *hcl.Block) Challenge {
	c := d.content(b.Body, []string{"provider", "env", "propagation_timeout", "polling_interval", "resolvers"})
	dns := &DNS{Range: b.DefRange}
	ch := Challenge{Type: ChallengeDNS, DNS: dns}
	provider := c.Attributes["provider"]
	if provider == nil {
		d.missing(b, "provider")
	}
	if d.eval(provider, &dns.Provider) {
		if _, ok := dnsmeta.Lookup(dns.Provider); !ok {
			hint := ""
			if near := dnsmeta.Closest(dns.Provider, 3); len(near) > 0 {
				hint = fmt.Sprintf(" Did you mean %s?", quoteOr(near))
			}
			d.attrError(provider, "Unknown DNS provider", fmt.Sprintf(
				"%q is not one of lego's %d DNS providers (lego %s; see https://go-acme.github.io/lego/dns/).%s",
				dns.Provider, dnsmeta.Count(), dnsmeta.LegoVersion, hint))
		}
	}
	d.noteSecretMap(`challenge "dns" env`, c.Attributes["env"], isCredentialName)
	if a := c.Attributes["env"]; d.eval(a, &dns.Env) {
		for _, k := range slices.Sorted(maps.Keys(dns.Env)) {
			if !envNameRE.MatchString(k) {
				d.errorAt(d.keyRange(a, k), "Invalid environment variable name", fmt.Sprintf(
					"%q is not a valid name: use letters, digits and '_', not starting with a digit.", k))
			}
		}
	}
	d.duration(c.Attributes["propagation_timeout"], &dns.PropagationTimeout, false)
	d.duration(c.Attributes["polling_interval"], &dns.PollingInterval, false)
	dns.Resolvers = d.resolvers(c.Attributes["resolvers"])
	return ch
}

// resolvers evaluates a list of nameserver addresses (host[:port], port
// 53 by default).
func (d *decoder) resolvers(a *hcl.Attribute) []string {
	var out []string
	if !d.eval(a, &out) {
		return nil
	}
	ranges := elementRanges(a.Expr, len(out))
	for i, r := range out {
		host, port, err := net.SplitHostPort(r)
		if err != nil { // no port: 53
			host, port = r, "53"
			out[i] = net.JoinHostPort(r, "53")
		}
		n, perr := strconv.Atoi(port)
		if host == "" || strings.ContainsAny(host, "/ ") || perr != nil || n < 1 || n > 65535 {
			d.errorAt(ranges[i], "Invalid resolver", fmt.Sprintf(
				`%q is not a nameserver address such as "192.0.2.53", "[2001:db8::53]:53" or "ns.example.com:5353".`, r))
		}
	}
	return out
}

// quoteOr formats names as `"a", "b" or "c"`.
func quoteOr(names []string) string {
	q := make([]string, len(names))
	for i, n := range names {
		q[i] = strconv.Quote(n)
	}
	if len(q) == 1 {
		return q[0]
	}
	return strings.Join(q[:len(q)-1], ", ") + " or " + q[len(q)-1]
}
