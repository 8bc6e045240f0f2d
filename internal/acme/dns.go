package acme

import (
	"fmt"
	"maps"
	"net/url"
	"slices"
	"strings"
	"sync"
	"time"

	"github.com/go-acme/lego/v4/challenge"
	"github.com/go-acme/lego/v4/challenge/dns01"
	"github.com/miekg/dns"

	"github.com/renewer/renewer/internal/dnsmeta"
	"github.com/renewer/renewer/internal/procenv"
)

// DNSProvider is what a lego DNS provider does: the method set of lego's
// challenge.Provider, so the binary's wiring can hand lego's providers over
// without naming a lego type.
type DNSProvider interface {
	Present(domain, token, keyAuth string) error
	CleanUp(domain, token, keyAuth string) error
}

// DNSProviderFunc builds the named provider from the process environment,
// as lego's providers/dns.NewDNSChallengeProviderByName does.
type DNSProviderFunc func(name string) (DNSProvider, error)

// DNSRequest is the dns-01 setting of one certificate.
type DNSRequest struct {
	// Providers builds a provider by name: the binary's wiring passes lego's
	// whole registry, or a lean build's few (cmd/renewer); tests pass the
	// few they use, so their binaries stay small. nil: none linked.
	Providers DNSProviderFunc
	Provider  string            // lego provider name
	Env       map[string]string // its variables, for this certificate only
	// Zero means the provider's own value, else lego's (60s, 2s).
	PropagationTimeout time.Duration
	PollingInterval    time.Duration
	// Resolvers, when set, are the only nameservers asked whether the
	// record is visible; when empty, lego's check runs (the system
	// resolvers, then the zone's authoritative nameservers on port 53).
	Resolvers []string
}

// CheckDNS builds the provider of r as an order would, without contacting
// any CA: it reports an unknown provider or missing credentials early.
func CheckDNS(r DNSRequest) error {
	_, err := newDNSProvider(r)
	return err
}

// newDNSProvider builds r's provider with r.Env set in the process
// environment, then restores the environment: lego's providers copy their
// settings when built, so the result holds this certificate's credentials
// only, and no other certificate's provider (built under the same lock)
// ever sees them.
func newDNSProvider(r DNSRequest) (*dnsProvider, error) {
	build := r.Providers
	meta, known := dnsmeta.Lookup(r.Provider)
	if build == nil {
		return nil, fmt.Errorf("dns provider %q: this program was built without DNS providers", r.Provider)
	}
	if !known {
		return nil, fmt.Errorf("dns provider %q: unknown; did you mean %s?", r.Provider, strings.Join(dnsmeta.Closest(r.Provider, 3), ", "))
	}
	scrub := newScrubber(r.Env)
	var inner DNSProvider
	err := procenv.With(r.Env, func() (err error) {
		inner, err = build(r.Provider)
		return err
	})
	if err != nil {
		return nil, credentialsError(r, meta, scrub.wrap(err))
	}
	if inner == nil {
		return nil, fmt.Errorf("dns provider %q: constructor returned nothing", r.Provider)
	}
	p := &dnsProvider{inner: inner, name: r.Provider, scrub: scrub, timeout: dns01.DefaultPropagationTimeout, interval: dns01.DefaultPollingInterval}
	if t, ok := inner.(challenge.ProviderTimeout); ok {
		p.timeout, p.interval = t.Timeout()
	}
	if r.PropagationTimeout > 0 {
		p.timeout = r.PropagationTimeout
	}
	if r.PollingInterval > 0 {
		p.interval = r.PollingInterval
	}
	return p, nil
}

// credentialsError explains a provider that would not build: lego's own
// message names what it missed; the metadata names everything it reads.
func credentialsError(r DNSRequest, meta dnsmeta.Provider, err error) error {
	var b strings.Builder
	fmt.Fprintf(&b, "dns provider %q: %v", r.Provider, err)
	if len(meta.Credentials) > 0 {
		var given, unset []string
		for _, v := range meta.Credentials {
			if _, ok := r.Env[v]; ok {
				given = append(given, v)
			} else {
				unset = append(unset, v)
			}
		}
		fmt.Fprintf(&b, "; its credentials are %s (some are alternatives or aliases of others)", strings.Join(meta.Credentials, ", "))
		if len(given) > 0 {
			fmt.Fprintf(&b, "; env sets %s", strings.Join(given, ", "))
		}
		if len(unset) > 0 {
			b.WriteString("; set the missing ones in the challenge's env, e.g. env = { " + unset[0] + ` = env("` + unset[0] + `") }`)
		}
	}
	return &CredentialsError{Provider: r.Provider, Variables: slices.Clone(meta.Credentials), msg: b.String(), err: err}
}

// CredentialsError is returned, before any ACME request, when a DNS
// provider cannot be built from the certificate's settings.
type CredentialsError struct {
	Provider  string
	Variables []string // the credentials lego lists for the provider
	msg       string
	err       error
}

func (e *CredentialsError) Error() string { return e.msg }
func (e *CredentialsError) Unwrap() error { return e.err }

// dnsProvider is a built provider with renewer's propagation settings. Its
// Present and CleanUp run while no certificate's variables are set, so a
// provider that reads the environment late (or starts a program, as exec
// does) never sees another certificate's credentials.
//
// Their errors are scrubbed of the certificate's credentials: a provider
// that sends its API key in a URL's query (dreamhost, duckdns...) returns
// net/http errors that quote the URL, and those end up in logs, state and
// notifications.
type dnsProvider struct {
	inner             DNSProvider
	name              string
	scrub             scrubber
	timeout, interval time.Duration
}

func (p *dnsProvider) Present(domain, token, keyAuth string) error {
	return p.scrub.wrap(procenv.Do(func() error { return p.inner.Present(domain, token, keyAuth) }))
}

func (p *dnsProvider) CleanUp(domain, token, keyAuth string) error {
	return p.scrub.wrap(procenv.Do(func() error { return p.inner.CleanUp(domain, token, keyAuth) }))
}

// scrubber replaces secret values, as written and URL-escaped, in error
// text with [redacted].
type scrubber struct{ r *strings.Replacer }

// newScrubber scrubs the values of env's credential variables
// (dnsmeta.IsSecret); values shorter than 4 bytes are left alone.
func newScrubber(env map[string]string) scrubber {
	var pairs []string
	for _, k := range slices.Sorted(maps.Keys(env)) {
		v := env[k]
		if !dnsmeta.IsSecret(k) || len(v) < 4 {
			continue
		}
		for _, f := range []string{v, url.QueryEscape(v), url.PathEscape(v)} {
			pairs = append(pairs, f, "[redacted]")
		}
	}
	if len(pairs) == 0 {
		return scrubber{}
	}
	return scrubber{strings.NewReplacer(pairs...)}
}

func (s scrubber) wrap(err error) error {
	if err == nil || s.r == nil {
		return err
	}
	msg := s.r.Replace(err.Error())
	if msg == err.Error() {
		return err
	}
	return &scrubbedError{msg: msg, err: err}
}

// scrubbedError is an error whose text had secrets in it. Unwrap keeps
// errors.Is and errors.As working; its own text is the scrubbed one.
type scrubbedError struct {
	msg string
	err error
}

func (e *scrubbedError) Error() string { return e.msg }
func (e *scrubbedError) Unwrap() error { return e.err }

func (p *dnsProvider) Timeout() (timeout, interval time.Duration) { return p.timeout, p.interval }

// sequentialDNSProvider keeps lego's one-authorization-at-a-time mode of
// providers that ask for it (exec, rfc2136...).
type sequentialDNSProvider struct {
	*dnsProvider
	seq interface{ Sequential() time.Duration }
}

func (p sequentialDNSProvider) Sequential() time.Duration { return p.seq.Sequential() }

// legoProvider is p as lego should see it.
func (p *dnsProvider) legoProvider() challenge.Provider {
	if s, ok := p.inner.(interface{ Sequential() time.Duration }); ok {
		return sequentialDNSProvider{p, s}
	}
	return p
}

// propagation checks that TXT records are visible before lego asks the CA
// to validate, per order (lego's own resolver settings are process-wide
// globals, so renewer never sets them), and remembers why a record was
// not seen, for the timeout message.
type propagation struct {
	resolvers []string // empty: lego's check

	mu   sync.Mutex
	last map[string]string // fqdn -> why it was not seen yet
	val  map[string]string // fqdn -> the value expected
}

func newPropagation(resolvers []string) *propagation {
	return &propagation{resolvers: dns01.ParseNameservers(resolvers), last: map[string]string{}, val: map[string]string{}}
}

func (p *propagation) option() dns01.ChallengeOption { return dns01.WrapPreCheck(p.check) }

func (p *propagation) check(domain, fqdn, value string, legoCheck dns01.PreCheckFunc) (bool, error) {
	var ok bool
	var err error
	if len(p.resolvers) == 0 {
		ok, err = legoCheck(fqdn, value)
	} else {
		ok, err = checkTXT(fqdn, value, p.resolvers)
	}
	p.mu.Lock()
	defer p.mu.Unlock()
	p.val[fqdn] = value
	switch {
	case ok:
		delete(p.last, fqdn)
	case err != nil:
		p.last[fqdn] = err.Error()
	default:
		p.last[fqdn] = "not visible yet"
	}
	return ok, err
}

// checkTXT asks every resolver for fqdn's TXT records; all must hold value.
func checkTXT(fqdn, value string, resolvers []string) (bool, error) {
	for _, ns := range resolvers {
		m := new(dns.Msg)
		m.SetQuestion(fqdn, dns.TypeTXT)
		m.RecursionDesired = true
		c := &dns.Client{Timeout: 5 * time.Second}
		r, _, err := c.Exchange(m, ns)
		if err == nil && r.Truncated {
			c.Net = "tcp"
			r, _, err = c.Exchange(m, ns)
		}
		if err != nil {
			return false, fmt.Errorf("resolver %s: %w", ns, err)
		}
		if r.Rcode != dns.RcodeSuccess {
			return false, fmt.Errorf("resolver %s answered %s", ns, dns.RcodeToString[r.Rcode])
		}
		var seen []string
		for _, rr := range r.Answer {
			if txt, ok := rr.(*dns.TXT); ok {
				seen = append(seen, strings.Join(txt.Txt, ""))
			}
		}
		if !slices.Contains(seen, value) {
			if len(seen) == 0 {
				return false, fmt.Errorf("resolver %s has no TXT record", ns)
			}
			return false, fmt.Errorf("resolver %s has other TXT values: %q", ns, seen)
		}
	}
	return true, nil
}

// PropagationError says which DNS records never became visible, where renewer
// looked, and for how long.
type PropagationError struct {
	Records   []string // "fqdn TXT value: last reason"
	Resolvers string
	Timeout   time.Duration
	err       error
}

func (e *PropagationError) Error() string {
	return fmt.Sprintf("DNS record not visible after %s (propagation_timeout) at %s: %s",
		e.Timeout, e.Resolvers, strings.Join(e.Records, "; "))
}

func (e *PropagationError) Unwrap() error { return e.err }

// explain turns lego's "propagation: time limit exceeded" into a
// PropagationError naming the records and resolvers.
func (p *propagation) explain(err error, timeout time.Duration) error {
	if err == nil || !strings.Contains(err.Error(), "propagation: time limit exceeded") {
		return err
	}
	p.mu.Lock()
	defer p.mu.Unlock()
	var recs []string
	for _, fqdn := range slices.Sorted(maps.Keys(p.last)) {
		recs = append(recs, fmt.Sprintf("%s TXT %q: %s", fqdn, p.val[fqdn], p.last[fqdn]))
	}
	if len(recs) == 0 {
		recs = []string{"(no check completed)"}
	}
	where := "resolvers " + strings.Join(p.resolvers, ", ")
	if len(p.resolvers) == 0 {
		where = "the system resolvers (" + strings.Join(systemResolvers(), ", ") + ") and the zone's authoritative nameservers"
	}
	return &PropagationError{Records: recs, Resolvers: where, Timeout: timeout, err: err}
}

func systemResolvers() []string {
	cfg, err := dns.ClientConfigFromFile("/etc/resolv.conf")
	if err != nil || len(cfg.Servers) == 0 {
		return []string{"none found in /etc/resolv.conf"}
	}
	return dns01.ParseNameservers(cfg.Servers)
}
