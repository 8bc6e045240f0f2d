package acme

import (
	"bytes"
	"context"
	"crypto"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"
	"slices"
	"strings"
	"sync"
	"time"

	legoacme "github.com/go-acme/lego/v4/acme"
	"github.com/go-acme/lego/v4/acme/api"
	"github.com/go-acme/lego/v4/certcrypto"
	"github.com/go-acme/lego/v4/certificate"
	"github.com/go-acme/lego/v4/challenge/dns01"
	"github.com/miekg/dns"
)

// PersistRequest is the dns-persist-01 setting of one certificate. lego v4
// does not know the challenge: renewer drives the order itself through
// lego's acme/api package (orders, authorizations, challenges, finalize).
type PersistRequest struct {
	Wildcard     bool      // policy=wildcard in the record (needed for wildcard names)
	PersistUntil time.Time // persistUntil in the record renewer prints; zero: none
	// Resolvers are asked for the records before ordering (host:port);
	// empty: the system's (/etc/resolv.conf).
	Resolvers []string
	// Timeout bounds the wait for the CA's validation; zero: 60 s.
	Timeout time.Duration
}

// PersistTXT is one record to publish.
type PersistTXT struct {
	Domains []string // the certificate's names it serves (a name and its wildcard share one)
	Name    string   // fully qualified, "_validation-persist.example.com."
	Value   string
	Zone    string // zone-file line
}

// PersistInfo is what a CA needs published for a certificate's names.
type PersistInfo struct {
	Directory    string
	AccountURI   string
	IssuerDomain string   // the one the records name (the CA's first)
	Issuers      []string // every issuer domain name the CA accepts
	Source       string   // where the issuer domain came from: "directory" or "authorization"
	Form         PersistForm
	Records      []PersistTXT
}

// persistTTL is the TTL of the zone-file lines renewer prints.
const persistTTL = 3600

// PersistRecords says which records the CA needs for domains, for this
// client's account (registered first if it is not yet). The issuer domain
// comes from the directory's caaIdentities; a CA that lists none is asked
// through a first authorization (an order for domains that is not pursued).
func (c *Client) PersistRecords(ctx context.Context, domains []string, r PersistRequest) (*PersistInfo, error) {
	return withContext(ctx, func() (*PersistInfo, error) {
		acc, err := c.account()
		if err != nil {
			return nil, err
		}
		info := &PersistInfo{Directory: c.opts.Directory, AccountURI: acc.Registration.URI, Form: PersistDraft01}
		m, err := c.meta()
		if err != nil {
			return nil, err
		}
		if info.Issuers = normalizeIssuers(m.CAAIdentities); len(info.Issuers) > 0 {
			info.Source = "directory"
		} else {
			core, capt, err := c.persistCore(acc)
			if err != nil {
				return nil, err
			}
			ch, err := firstPersistChallenge(core, capt, domains)
			if err != nil {
				return nil, err
			}
			info.Issuers, info.Form, info.Source = ch.Issuers, persistForm(ch), "authorization"
		}
		info.IssuerDomain = info.Issuers[0]
		info.Records, err = persistTXTs(domains, PersistSpec{Form: info.Form, IssuerDomain: info.IssuerDomain,
			AccountURI: info.AccountURI, AccountKey: publicKey(acc), Wildcard: r.Wildcard, PersistUntil: r.PersistUntil})
		if err != nil {
			return nil, err
		}
		return info, nil
	})
}

// CheckPersist looks up the records of domains through r's resolvers and
// says what is missing or wrong for the CA's issuer domains (issuers; none:
// any) and accountURI (a *PersistRecordError), or nil when every name has a
// record that would validate at now.
func CheckPersist(ctx context.Context, domains []string, issuers []string, accountURI string, r PersistRequest, now time.Time) error {
	resolvers, err := persistResolvers(r.Resolvers)
	if err != nil {
		return err
	}
	// A name and its wildcard share one record: judge it once, as the
	// wildcard needs it.
	var names []string
	judged := map[string]string{} // record name -> the domain it is judged for
	for _, d := range domains {
		n := PersistName(d)
		if _, ok := judged[n]; !ok {
			names = append(names, n)
			judged[n] = d
		} else if strings.HasPrefix(d, "*.") {
			judged[n] = d
		}
	}
	var probs []PersistProblem
	for _, n := range names {
		d := judged[n]
		want := persistWant{Issuers: normalizeIssuers(issuers), AccountURI: accountURI, Wildcard: strings.HasPrefix(d, "*.")}
		for _, ns := range resolvers {
			if ctx.Err() != nil {
				return ctx.Err()
			}
			txts, err := lookupTXT(ctx, PersistName(d), ns)
			if err != nil {
				probs = append(probs, PersistProblem{Domain: d, Name: PersistName(d), Kind: PersistLookupFailed, Detail: err.Error()})
				break
			}
			if p := judgePersist(d, txts, want, now); p != nil {
				p.Detail += " (resolver " + ns + ")"
				probs = append(probs, *p)
				break
			}
		}
	}
	if len(probs) == 0 {
		return nil
	}
	return &PersistRecordError{Problems: probs}
}

// persistResolvers are rs, else the system's.
func persistResolvers(rs []string) ([]string, error) {
	if len(rs) > 0 {
		return dns01.ParseNameservers(rs), nil
	}
	cfg, err := dns.ClientConfigFromFile("/etc/resolv.conf")
	if err != nil || len(cfg.Servers) == 0 {
		return nil, errors.New("dns-persist: no resolvers configured and none in /etc/resolv.conf: set resolvers in the challenge block")
	}
	return dns01.ParseNameservers(cfg.Servers), nil
}

// lookupTXT asks ns (recursively) for name's TXT values; a name that does
// not exist has none.
func lookupTXT(ctx context.Context, name, ns string) ([]string, error) {
	m := new(dns.Msg)
	m.SetQuestion(dns.Fqdn(name), dns.TypeTXT)
	m.RecursionDesired = true
	c := &dns.Client{Timeout: 5 * time.Second}
	r, _, err := c.ExchangeContext(ctx, m, ns)
	if err == nil && r.Truncated {
		c.Net = "tcp"
		r, _, err = c.ExchangeContext(ctx, m, ns)
	}
	if err != nil {
		return nil, fmt.Errorf("resolver %s: %w", ns, err)
	}
	switch r.Rcode {
	case dns.RcodeSuccess, dns.RcodeNameError:
	default:
		return nil, fmt.Errorf("resolver %s answered %s for %s", ns, dns.RcodeToString[r.Rcode], name)
	}
	var out []string
	for _, rr := range r.Answer {
		if txt, ok := rr.(*dns.TXT); ok {
			out = append(out, strings.Join(txt.Txt, ""))
		}
	}
	return out, nil
}

func normalizeIssuers(in []string) []string {
	var out []string
	for _, s := range in {
		if n := normalizeIssuer(s); n != "" && !slices.Contains(out, n) {
			out = append(out, n)
		}
	}
	return out
}

// persistTXTs builds one record per distinct record name of domains.
func persistTXTs(domains []string, spec PersistSpec) ([]PersistTXT, error) {
	value, err := spec.Value()
	if err != nil {
		return nil, err
	}
	var out []PersistTXT
	for _, d := range domains {
		name := PersistName(d)
		if i := slices.IndexFunc(out, func(t PersistTXT) bool { return t.Name == name }); i >= 0 {
			out[i].Domains = append(out[i].Domains, d)
			continue
		}
		out = append(out, PersistTXT{Domains: []string{d}, Name: name, Value: value, Zone: PersistZoneLine(d, value, persistTTL)})
	}
	return out, nil
}

func publicKey(acc *account) crypto.PublicKey {
	if k, ok := acc.key.(crypto.Signer); ok {
		return k.Public()
	}
	return nil
}

// persistChallenge is the part of a dns-persist-01 challenge object renewer
// reads (lego's Challenge type has no issuer-domain-names).
type persistChallenge struct {
	URL        string
	Status     string
	Issuers    []string
	AccountURI string // Pebble names the account it expects; optional
}

// persistForm is the record form a challenge asks for. Every CA that offers
// dns-persist-01 today validates the draft -01 form; a later form is chosen
// here from what its challenge object carries.
func persistForm(persistChallenge) PersistForm { return PersistDraft01 }

// rawCapture keeps the last JSON body answered for each URL, so that fields
// lego's types drop (issuer-domain-names) can be read.
type rawCapture struct {
	base http.RoundTripper
	mu   sync.Mutex
	body map[string][]byte
}

func (t *rawCapture) RoundTrip(req *http.Request) (*http.Response, error) {
	resp, err := t.base.RoundTrip(req)
	if err != nil || !strings.HasPrefix(resp.Header.Get("Content-Type"), "application/json") {
		return resp, err
	}
	body, err := io.ReadAll(io.LimitReader(resp.Body, 1<<20))
	resp.Body.Close()
	if err != nil {
		return nil, err
	}
	resp.Body = io.NopCloser(bytes.NewReader(body))
	t.mu.Lock()
	if t.body == nil {
		t.body = map[string][]byte{}
	}
	t.body[req.URL.String()] = body
	t.mu.Unlock()
	return resp, nil
}

// persistChallengeOf reads the dns-persist-01 challenge of the
// authorization last fetched from authzURL.
func (t *rawCapture) persistChallengeOf(authzURL string) (persistChallenge, []string, error) {
	t.mu.Lock()
	body := t.body[authzURL]
	t.mu.Unlock()
	var authz struct {
		Challenges []struct {
			Type       string   `json:"type"`
			URL        string   `json:"url"`
			Status     string   `json:"status"`
			Issuers    []string `json:"issuer-domain-names"`
			AccountURI string   `json:"accounturi"`
		} `json:"challenges"`
	}
	if err := json.Unmarshal(body, &authz); err != nil {
		return persistChallenge{}, nil, fmt.Errorf("authorization %s: %w", authzURL, err)
	}
	var offered []string
	for _, ch := range authz.Challenges {
		offered = append(offered, ch.Type)
		if ch.Type != ChallengeDNSPersist01 {
			continue
		}
		// The draft: a client MUST reject a challenge with no or more than
		// 10 issuer domain names.
		if len(ch.Issuers) == 0 || len(ch.Issuers) > 10 {
			return persistChallenge{}, offered, fmt.Errorf("the CA's dns-persist-01 challenge %s is malformed: %d issuer-domain-names (1 to 10 allowed)", ch.URL, len(ch.Issuers))
		}
		return persistChallenge{URL: ch.URL, Status: ch.Status, Issuers: normalizeIssuers(ch.Issuers), AccountURI: ch.AccountURI}, offered, nil
	}
	return persistChallenge{}, offered, nil
}

// persistCore is a lego acme/api client signed with acc's key, whose
// answers are captured.
func (c *Client) persistCore(acc *account) (*api.Core, *rawCapture, error) {
	capt := &rawCapture{base: c.transport}
	hc := &http.Client{Timeout: 30 * time.Second, Transport: newChallengePoll(capt, c.opts.Now)}
	core, err := api.New(hc, c.opts.UserAgent, c.opts.Directory, acc.Registration.URI, acc.key)
	if err != nil {
		return nil, nil, directoryError(c.opts.Directory, err)
	}
	return core, capt, nil
}

// firstPersistChallenge places an order for domains and returns the
// dns-persist-01 challenge of its first pending authorization, without
// answering it (the order is left to expire).
func firstPersistChallenge(core *api.Core, capt *rawCapture, domains []string) (persistChallenge, error) {
	order, err := core.Orders.New(domains)
	if err != nil {
		return persistChallenge{}, fmt.Errorf("acme: order to learn the CA's issuer domain: %w", err)
	}
	for _, u := range order.Authorizations {
		if _, err := core.Authorizations.Get(u); err != nil {
			return persistChallenge{}, err
		}
		ch, offered, err := capt.persistChallengeOf(u)
		if err != nil {
			return persistChallenge{}, err
		}
		if ch.URL != "" {
			return ch, nil
		}
		return persistChallenge{}, fmt.Errorf("acme: the CA does not offer dns-persist-01 (it offers %s)", strings.Join(offered, ", "))
	}
	return persistChallenge{}, errors.New("acme: the CA's order has no authorization to learn its issuer domain from")
}

// orderPersist obtains req's certificate with dns-persist-01. The records
// are looked up first: when one is missing or wrong, no order is placed.
func (c *Client) orderPersist(acc *account, req Request, keyType certcrypto.KeyType) (*certificate.Resource, error) {
	p := *req.Persist
	if req.Profile != "" {
		if err := c.checkProfile(req.Profile); err != nil {
			return nil, err
		}
	}
	core, capt, err := c.persistCore(acc)
	if err != nil {
		return nil, err
	}
	accountURI := acc.Registration.URI
	issuers := normalizeIssuers(core.GetDirectory().Meta.CaaIdentities)
	ctx := context.Background() // lego's calls cannot be cancelled either; Obtain bounds the caller's wait
	if err := CheckPersist(ctx, req.Domains, issuers, accountURI, p, c.opts.Now()); err != nil {
		return nil, fmt.Errorf("%w; no order was placed", c.withWanted(err, req.Domains, issuers, acc, p))
	}
	opts := &api.OrderOptions{Profile: req.Profile, ReplacesCertID: req.Replaces}
	order, err := core.Orders.NewWithOptions(req.Domains, opts)
	if err != nil && opts.ReplacesCertID != "" && c.refusedNewOrder(err) {
		c.opts.Log.Warn("the CA refused an order naming the certificate it replaces; ordering without \"replaces\"", "err", err)
		opts.ReplacesCertID = ""
		order, err = core.Orders.NewWithOptions(req.Domains, opts)
	}
	if err != nil {
		return nil, err
	}
	for _, u := range order.Authorizations {
		if err := c.authorizePersist(ctx, core, capt, u, accountURI, p); err != nil {
			return nil, err
		}
	}
	return c.finalize(core, order, req, keyType)
}

// withWanted adds the record this account needs to a PersistRecordError.
func (c *Client) withWanted(err error, domains, issuers []string, acc *account, p PersistRequest) error {
	var pe *PersistRecordError
	if !errors.As(err, &pe) || len(issuers) == 0 {
		return err
	}
	recs, rerr := persistTXTs(domains, PersistSpec{Form: PersistDraft01, IssuerDomain: issuers[0], AccountURI: acc.Registration.URI,
		AccountKey: publicKey(acc), Wildcard: p.Wildcard, PersistUntil: p.PersistUntil})
	if rerr != nil {
		return err
	}
	for _, r := range recs {
		pe.Want = append(pe.Want, fmt.Sprintf("%s TXT %q", r.Name, r.Value))
	}
	return pe
}

// authorizePersist answers one authorization with its dns-persist-01
// challenge and waits until the CA has validated it.
func (c *Client) authorizePersist(ctx context.Context, core *api.Core, capt *rawCapture, authzURL, accountURI string, p PersistRequest) error {
	authz, err := core.Authorizations.Get(authzURL)
	if err != nil {
		return err
	}
	if authz.Status == legoacme.StatusValid {
		return nil
	}
	domain := authz.Identifier.Value
	if authz.Wildcard {
		domain = "*." + domain
	}
	ch, offered, err := capt.persistChallengeOf(authzURL)
	if err != nil {
		return fmt.Errorf("acme: %s: %w", domain, err)
	}
	if ch.URL == "" {
		return fmt.Errorf("acme: %s: the CA does not offer dns-persist-01 for this name (it offers %s)", domain, strings.Join(offered, ", "))
	}
	if ch.AccountURI != "" && ch.AccountURI != accountURI {
		return fmt.Errorf("acme: %s: the CA's challenge names the account %s, but this account is %s", domain, ch.AccountURI, accountURI)
	}
	if form := persistForm(ch); form != PersistDraft01 {
		return fmt.Errorf("acme: %s: the CA asks for the %s record, which this version of renewer cannot build", domain, form)
	}
	// The challenge's issuer domain names are the CA's final word: check
	// the record against them before asking the CA to validate.
	if err := CheckPersist(ctx, []string{domain}, ch.Issuers, accountURI, p, c.opts.Now()); err != nil {
		return err
	}
	if ch.Status != legoacme.StatusValid {
		if _, err := core.Challenges.New(ch.URL); err != nil {
			return err
		}
	}
	timeout := p.Timeout
	if timeout <= 0 {
		timeout = 60 * time.Second
	}
	deadline := c.opts.Now().Add(timeout)
	wait := time.Second
	for {
		authz, err := core.Authorizations.Get(authzURL)
		if err != nil {
			var ce *ChallengeError
			if errors.As(err, &ce) {
				return fmt.Errorf("acme: %w", ce)
			}
			return err
		}
		switch authz.Status {
		case legoacme.StatusValid:
			return nil
		case legoacme.StatusInvalid:
			for _, chl := range authz.Challenges {
				if chl.Type == ChallengeDNSPersist01 && chl.Error != nil {
					return fmt.Errorf("acme: %w", &ChallengeError{Identifier: domain, Challenge: ChallengeDNSPersist01, Status: chl.Status,
						Type: chl.Error.Type, Detail: chl.Error.Detail})
				}
			}
			return fmt.Errorf("acme: %s: the CA found the authorization invalid", domain)
		}
		if c.opts.Now().After(deadline) {
			return fmt.Errorf("acme: %s: the CA did not validate dns-persist-01 within %s (authorization %s)", domain, timeout, authz.Status)
		}
		time.Sleep(wait)
		wait = min(2*wait, 5*time.Second)
	}
}

// finalize sends the CSR of a ready order and downloads the certificate,
// with the preferred chain when the CA offers it.
func (c *Client) finalize(core *api.Core, order legoacme.ExtendedOrder, req Request, keyType certcrypto.KeyType) (*certificate.Resource, error) {
	var key any
	var keyPEM []byte
	var err error
	if len(req.ReuseKey) > 0 {
		if key, err = certcrypto.ParsePEMPrivateKey(req.ReuseKey); err != nil {
			return nil, fmt.Errorf("acme: key to reuse: %w", err)
		}
		keyPEM = req.ReuseKey
	} else {
		if key, err = certcrypto.GeneratePrivateKey(keyType); err != nil {
			return nil, err
		}
		keyPEM = certcrypto.PEMEncode(key)
	}
	cn := ""
	if len(req.Domains[0]) <= 64 {
		cn = req.Domains[0]
	}
	csr, err := certcrypto.CreateCSR(key, certcrypto.CSROptions{Domain: cn, SAN: req.Domains})
	if err != nil {
		return nil, err
	}
	ord, err := core.Orders.UpdateForCSR(order.Finalize, csr)
	if err != nil {
		return nil, err
	}
	deadline := c.opts.Now().Add(30 * time.Second)
	for ord.Status != legoacme.StatusValid {
		if ord.Status == legoacme.StatusInvalid {
			return nil, fmt.Errorf("acme: invalid order: %w", ord.Err())
		}
		if c.opts.Now().After(deadline) {
			return nil, fmt.Errorf("acme: the CA did not issue within 30s (order %s)", ord.Status)
		}
		time.Sleep(time.Second)
		if ord, err = core.Orders.Get(order.Location); err != nil {
			return nil, err
		}
	}
	certs, err := core.Certificates.GetAll(ord.Certificate, false)
	if err != nil {
		return nil, err
	}
	chosen := certs[ord.Certificate]
	if pc := c.opts.PreferredChain; pc != "" {
		for _, link := range slicesSortedKeys(certs) {
			if ok, _ := topIssuerIs(certs[link].Issuer, pc); ok {
				chosen = certs[link]
				break
			}
		}
	}
	if chosen == nil {
		return nil, errors.New("acme: the CA returned no certificate")
	}
	return &certificate.Resource{Domain: req.Domains[0], Certificate: chosen.Cert, IssuerCertificate: chosen.Issuer, PrivateKey: keyPEM}, nil
}

func slicesSortedKeys(m map[string]*legoacme.RawCertificate) []string {
	keys := make([]string, 0, len(m))
	for k := range m {
		keys = append(keys, k)
	}
	slices.Sort(keys)
	return keys
}

// topIssuerIs reports whether the chain's last certificate is issued by cn
// (lego's rule for the preferred chain).
func topIssuerIs(chain []byte, cn string) (bool, error) {
	certs, err := certcrypto.ParsePEMBundle(chain)
	if err != nil || len(certs) == 0 {
		return false, err
	}
	return certs[len(certs)-1].Issuer.CommonName == cn, nil
}
