// Package agent runs renewer's job: for each certificate, inspect what is
// installed, plan, obtain, install, run hooks, and record the result. It is
// the only package that knows the order of those stages; one pass is what
// `renewer renew` runs.
package agent

import (
	"context"
	"fmt"
	"log/slog"
	"math/rand/v2"
	"os"
	"slices"
	"strings"
	"sync"
	"time"

	"github.com/renewer/renewer/internal/acme"
	"github.com/renewer/renewer/internal/config"
	"github.com/renewer/renewer/internal/schedule"
	"github.com/renewer/renewer/internal/status"
	"github.com/renewer/renewer/internal/store"
)

// Agent works on one configuration.
type Agent struct {
	cfg         *config.Config
	store       *store.Store
	log         *slog.Logger
	now         func() time.Time
	solver      *acme.HTTPSolver
	tlsSolver   *acme.TLSALPNSolver
	concurrency int
	version     string
	backoff     schedule.Backoff
	rnd         func() float64
	obs         Observer
	fleet       store.Shared // nil: a single node (fleet.go)
	closeFleet  bool

	issuerCA     Issuer // legoIssuer unless Options.Issuer
	dnsProviders acme.DNSProviderFunc

	mu      sync.Mutex
	clients map[string]*acme.Client // by directory URL

	stateMu sync.Mutex
	unsaved map[string]store.State // state that could not be written (a full disk), by certificate

	elsewhereMu sync.Mutex
	elsewhere   map[string]time.Time // fleet mode: another node renews it; do not wake for it before (fleet.go)

	ariRecheck time.Duration // Options.ARIRecheck
	reportMu   sync.Mutex
	reported   map[string]sentReport // fleet mode: the last report written, by certificate (fleetround.go)
	// account.go: records naming the account key, and their lookup (tests set them)
	keyRecordsFn func(config.CA, acme.RolloverKey) []KeyRecord
	lookupTXTFn  func(ctx context.Context, name string) ([]string, error)
}

// Options wire an Agent. Zero values get defaults.
type Options struct {
	Log         *slog.Logger
	Now         func() time.Time
	Concurrency int            // 0 means the config's daemon.concurrency
	Version     string         // for the ACME User-Agent
	Rand        func() float64 // in [0,1), for backoff jitter; nil means math/rand/v2

	// Observer is told of results and hook runs (metrics, notifications); nil: nobody.
	Observer Observer

	// Issuer obtains certificates and renewal windows; nil: the agent's
	// own, through internal/acme (issuer.go).
	Issuer Issuer

	// DNSProviders builds DNS providers by name for the dns challenge: the
	// binary passes what it links (cmd/renewer, by build tag); nil: none.
	DNSProviders acme.DNSProviderFunc

	// Fleet, when set, is the storage this node shares with the other
	// nodes of a fleet (internal/fleet); nil for a single node.
	Fleet store.Shared
	// CloseFleet makes Close close Fleet too (when it has a Close method):
	// for one-shot commands that own it. The daemon's agents share one.
	CloseFleet bool

	// ARIRecheck, when positive, is how long after each renewal-information
	// answer the CA is asked again, whatever its Retry-After says; zero
	// follows Retry-After, kept within [1h, 24h] (ari.go). For the
	// mass-revocation drill (internal/bench/drill), which cannot wait hours.
	ARIRecheck time.Duration
}

// New opens the configured storage. It contacts no CA.
func New(cfg *config.Config, o Options) (*Agent, error) {
	if o.Log == nil {
		o.Log = slog.New(slog.DiscardHandler)
	}
	if o.Now == nil {
		o.Now = time.Now
	}
	if o.Concurrency <= 0 {
		o.Concurrency = max(1, cfg.Daemon.Concurrency)
	}
	if o.Rand == nil {
		o.Rand = rand.Float64
	}
	st, err := store.Open(cfg.Storage.Path, cfg.Storage.KeepVersions)
	if err != nil {
		return nil, fmt.Errorf("open storage: %w", err)
	}
	a := &Agent{
		cfg: cfg, store: st, log: o.Log, now: o.Now, concurrency: o.Concurrency, version: o.Version, rnd: o.Rand,
		backoff:   schedule.Backoff{Min: cfg.Daemon.RetryMin, Max: cfg.Daemon.RetryMax},
		solver:    acme.NewHTTPSolver(o.Log),
		tlsSolver: acme.NewTLSALPNSolver(o.Log),
		clients:   map[string]*acme.Client{},
		unsaved:   map[string]store.State{},
		fleet:     o.Fleet, closeFleet: o.CloseFleet,
		ariRecheck: o.ARIRecheck,
	}
	a.issuerCA, a.dnsProviders = o.Issuer, o.DNSProviders
	if a.issuerCA == nil {
		a.issuerCA = legoIssuer{a}
	}
	if o.Fleet != nil {
		a.solver.SetShared(o.Fleet)
		a.shareTLSALPN() // fleetalpn.go
	}
	a.SetObserver(o.Observer)
	return a, nil
}

// Close releases listeners still open.
func (a *Agent) Close() {
	a.solver.Close()
	a.tlsSolver.Close()
	if c, ok := a.fleet.(interface{ Close() error }); ok && a.closeFleet {
		_ = c.Close()
	}
}

// Config is the configuration the agent works on.
func (a *Agent) Config() *config.Config { return a.cfg }

// Store is the storage the agent works on.
func (a *Agent) Store() *store.Store { return a.store }

// Select returns the certificates with the given names, in config order, or
// every certificate when names is empty. An unknown name is an error.
func (a *Agent) Select(names []string) ([]config.Certificate, error) {
	if len(names) == 0 {
		return a.cfg.Certificates, nil
	}
	var out []config.Certificate
	var unknown []string
	for _, n := range names {
		i := slices.IndexFunc(a.cfg.Certificates, func(c config.Certificate) bool { return c.Name == n })
		if i < 0 {
			unknown = append(unknown, n)
			continue
		}
		if !slices.ContainsFunc(out, func(c config.Certificate) bool { return c.Name == n }) {
			out = append(out, a.cfg.Certificates[i])
		}
	}
	if len(unknown) > 0 {
		where := a.cfg.File
		if len(a.cfg.ConfD) > 0 {
			where += " or its conf.d"
		}
		return nil, fmt.Errorf("no certificate named %s in %s", strings.Join(unknown, ", "), where)
	}
	return out, nil
}

func (a *Agent) obtain(ctx context.Context, c config.Certificate, dryRun bool, in status.View, mayReuse bool) (*acme.Certificate, error) {
	if err := a.preflightOrder(c); err != nil { // preflight.go: unwritable storage costs no order
		return nil, err
	}
	var clients []*acme.Client
	for _, ca := range a.orderCAs(dryRun) {
		client, err := a.client(ctx, ca)
		if err != nil {
			return nil, err
		}
		if a.fleet != nil && !dryRun { // another node may have rolled the key over (account.go)
			if err := a.syncFleetAccount(ctx, ca, client); err != nil {
				return nil, err
			}
		}
		clients = append(clients, client)
	}
	req := Request(c, a.dnsProviders)
	req.CAA = caaCheck(c) // fallback CAs the names' CAA records forbid are skipped (preflight.go)
	if c.ReuseKey && mayReuse && in.Facts != nil && in.Facts.KeyMatches && in.Facts.KeyType == c.KeyType && in.Live != nil {
		key, err := os.ReadFile(in.Live.Key)
		if err != nil {
			return nil, fmt.Errorf("reuse_key: %w", err)
		}
		req.ReuseKey = key
	}
	// Only the CA that issued the live certificate knows it, and it accepts
	// "replaces" only from the account that ordered it (not after the
	// e-mail, and so the account, changed).
	if issuer := a.issuer(in).Directory; !dryRun && in.Account == acme.AccountKey(issuer, a.cfg.ACME.Email) {
		req.Replaces, req.ReplacesAt = replaces(in), issuer
	}
	return acme.ObtainFrom(ctx, a.log.With("cert", c.Name), clients, req)
}

// orderCAs are the CAs an order tries, in order (the default, then each
// fallback), each directory once; staging: their staging twins, which
// `renew --dry-run` orders from.
func (a *Agent) orderCAs(staging bool) []config.CA {
	var out []config.CA
	seen := map[string]bool{}
	for _, ca := range a.cfg.ACME.CAs() {
		if staging {
			ca.Directory = ca.StagingDirectory
		}
		if !seen[ca.Directory] {
			seen[ca.Directory] = true
			out = append(out, ca)
		}
	}
	return out
}

// Request is the ACME request of certificate c (without a key to reuse);
// providers builds its DNS provider, for the dns challenge.
func Request(c config.Certificate, providers acme.DNSProviderFunc) acme.Request {
	req := acme.Request{Domains: c.Domains, KeyType: c.KeyType, Profile: c.Profile}
	switch c.Challenge.Type {
	case config.ChallengeTLSALPN:
		req.TLSListen = c.Challenge.Listen
	case config.ChallengeDNS:
		req.DNS = dnsRequest(c.Challenge.DNS, providers)
	case config.ChallengeDNSPersist:
		req.Persist = persistRequest(c.Challenge.Persist)
	default:
		req.Listen, req.Webroot = c.Challenge.Listen, c.Challenge.Webroot
	}
	return req
}

func dnsRequest(d *config.DNS, providers acme.DNSProviderFunc) *acme.DNSRequest {
	if d == nil {
		return &acme.DNSRequest{Providers: providers}
	}
	return &acme.DNSRequest{
		Providers: providers, Provider: d.Provider, Env: d.Env, Resolvers: d.Resolvers,
		PropagationTimeout: d.PropagationTimeout, PollingInterval: d.PollingInterval,
	}
}

// CheckCredentials builds the DNS provider of every certificate that uses
// the dns challenge, contacting no CA, and returns one error per
// certificate whose provider cannot be built (unknown, missing credentials),
// each starting with file:line:col of its challenge block. providers is
// what the binary links (Options.DNSProviders).
func CheckCredentials(cfg *config.Config, providers acme.DNSProviderFunc) []error {
	var errs []error
	for _, c := range cfg.Certificates {
		if c.Challenge.Type != config.ChallengeDNS || c.Challenge.DNS == nil {
			continue
		}
		if err := acme.CheckDNS(*dnsRequest(c.Challenge.DNS, providers)); err != nil {
			r := c.Challenge.DNS.Range
			errs = append(errs, fmt.Errorf("%s:%d:%d: certificate %q: %w", r.Filename, r.Start.Line, r.Start.Column, c.Name, err))
		}
	}
	return errs
}

// issuer is the configured CA that issued the live certificate (recorded in
// its meta.json), or the first CA when that is unknown.
func (a *Agent) issuer(in status.View) config.CA {
	cas := a.cfg.ACME.CAs()
	for _, ca := range cas {
		if in.CA != "" && ca.Directory == in.CA {
			return ca
		}
	}
	return cas[0]
}

// client returns the ACME client of one CA, made on first use.
func (a *Agent) client(ctx context.Context, ca config.CA) (*acme.Client, error) {
	a.mu.Lock()
	defer a.mu.Unlock()
	if c := a.clients[ca.Directory]; c != nil {
		return c, nil
	}
	accDir, err := a.store.AccountDir(acme.AccountKey(ca.Directory, a.cfg.ACME.Email))
	if err != nil {
		return nil, err
	}
	o := acme.Options{
		Directory:      ca.Directory,
		Email:          a.cfg.ACME.Email,
		AcceptTerms:    a.cfg.ACME.AcceptTerms,
		CABundle:       ca.CABundle,
		AccountDir:     accDir,
		UserAgent:      "renewer/" + a.version,
		Log:            a.log,
		Now:            a.now,
		PreferredChain: ca.PreferredChain,
		TLSSolver:      a.tlsSolver,
		WriteFile:      a.store.WriteFile,
	}
	if ca.EAB != nil {
		o.EAB = &acme.EAB{KID: ca.EAB.KID, HMAC: ca.EAB.HMAC}
	}
	c, err := acme.New(o, a.solver)
	if err != nil {
		return nil, err
	}
	if a.fleet != nil { // every node orders with the fleet's account, before it loads one
		if err := a.syncFleetAccount(ctx, ca, c); err != nil {
			return nil, err
		}
	}
	a.clients[ca.Directory] = c
	return c, nil
}

func plural(n int, word string) string {
	if n == 1 {
		return word
	}
	return word + "s"
}
