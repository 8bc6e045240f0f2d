// Package acme obtains certificates from an ACME CA. It is the only package
// that knows lego: everything it takes and returns is plain Go, and every call
// takes a context, so a later move to lego v5 touches this package alone.
package acme

import (
	"context"
	"crypto/tls"
	"crypto/x509"
	"errors"
	"fmt"
	"log/slog"
	"net/http"
	"net/url"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"time"

	legoacme "github.com/go-acme/lego/v4/acme"
	"github.com/go-acme/lego/v4/certcrypto"
	"github.com/go-acme/lego/v4/certificate"
	"github.com/go-acme/lego/v4/lego"
	legolog "github.com/go-acme/lego/v4/log"
	"github.com/go-acme/lego/v4/registration"
)

// Options describe one CA and the account used with it.
type Options struct {
	Directory   string // ACME directory URL
	Email       string
	AcceptTerms bool
	CABundle    string // optional PEM file of extra roots for the CA's TLS
	AccountDir  string // where the account key and registration are kept
	UserAgent   string
	Log         *slog.Logger
	Now         func() time.Time // for the account's creation time; nil means time.Now
	// Optional, for CAs that need them:
	EAB            *EAB           // external account binding used to register
	PreferredChain string         // issuer CN of the alternate chain to prefer
	TLSSolver      *TLSALPNSolver // answers tls-alpn-01 (Request.TLSListen); may be shared
	WriteFile      WriteFileFunc  // writes the account files; nil: renameio
}

// EAB is an external account binding: key identifier and base64url HMAC key.
type EAB struct {
	KID  string
	HMAC string
}

// Request is one certificate to obtain.
type Request struct {
	Domains []string
	KeyType string // ec256, ec384, rsa2048, rsa3072, rsa4096
	// Exactly one way to answer a challenge:
	Listen    string          // HTTP-01 standalone: served by the client's HTTPSolver on this address
	Webroot   string          // HTTP-01: files written under <Webroot>/.well-known/acme-challenge/
	TLSListen string          // TLS-ALPN-01: served by Options.TLSSolver on this address
	DNS       *DNSRequest     // DNS-01 through a lego DNS provider
	Persist   *PersistRequest // dns-persist-01: a record published once, no DNS provider (persistorder.go)

	Profile  string // ACME profile; must be one the CA's directory lists
	ReuseKey []byte // PEM private key to certify again; nil means a new key
	// Replaces is the ARI identifier of the certificate this order renews
	// (RFC 9773 "replaces"); empty for none. lego leaves it out when the
	// CA does not offer ARI.
	Replaces   string
	ReplacesAt string // the directory of the CA that issued it: other CAs get no Replaces
	// CAA, when set, says why the names' CAA records forbid a CA with
	// these CAA identities (nil: permitted). ObtainFrom skips a fallback
	// CA it forbids instead of ordering there.
	CAA func(ctx context.Context, identities []string) error
}

// Certificate is what the CA issued, all PEM.
type Certificate struct {
	Cert  []byte // leaf
	Chain []byte // issuer certificates
	Key   []byte // private key
	// Directory is the ACME directory that issued it, and Account the
	// account (AccountKey) that ordered it.
	Directory string
	Account   string
}

// Client obtains certificates from one CA with one account. It is safe for
// concurrent use; the account is loaded or registered once.
type Client struct {
	opts      Options
	transport http.RoundTripper
	solve     *HTTPSolver

	mu     sync.Mutex
	acc    *account
	stamp  accountStamp              // of the account files acc was loaded from
	ari    *lego.Client              // for renewal information, made once
	orders map[orderKey]*lego.Client // see orderClient
}

// orderKey says which orders may share a lego client: lego keeps the key
// type and the challenge providers per client.
type orderKey struct {
	keyType                    certcrypto.KeyType
	listen, webroot, tlsListen string
}

var legoLogOnce sync.Once

// New prepares a client; it does not contact the CA yet. solver answers
// standalone HTTP-01 challenges and may be shared by several clients.
func New(o Options, solver *HTTPSolver) (*Client, error) {
	if o.Log == nil {
		o.Log = slog.New(slog.DiscardHandler)
	}
	if o.Now == nil {
		o.Now = time.Now
	}
	if o.UserAgent == "" {
		o.UserAgent = "renewer"
	}
	if o.AccountDir == "" {
		return nil, errors.New("acme: no account directory")
	}
	pool, err := x509.SystemCertPool()
	if err != nil {
		pool = x509.NewCertPool()
	}
	if o.CABundle != "" {
		pemBytes, err := os.ReadFile(o.CABundle)
		if err != nil {
			return nil, fmt.Errorf("acme: read ca_bundle: %w", err)
		}
		if !pool.AppendCertsFromPEM(pemBytes) {
			return nil, fmt.Errorf("acme: ca_bundle %s holds no certificate", o.CABundle)
		}
	}
	// lego logs through a process-wide logger; send it to ours at debug level.
	legoLogOnce.Do(func() { legolog.Logger = slog.NewLogLogger(o.Log.Handler(), slog.LevelDebug) })
	return &Client{
		opts:  o,
		solve: solver,
		transport: caTransport{&http.Transport{
			Proxy:               http.ProxyFromEnvironment,
			TLSClientConfig:     &tls.Config{RootCAs: pool},
			TLSHandshakeTimeout: 15 * time.Second,
			MaxIdleConnsPerHost: 32, // above the ARI and obtain concurrency: no TLS handshake churn
		}},
	}, nil
}

// Obtain runs one ACME order for req and returns the issued certificate. lego
// cannot be cancelled mid-order: when ctx ends first, Obtain returns ctx's
// error at once and the abandoned order finishes (or fails) on its own.
func (c *Client) Obtain(ctx context.Context, req Request) (*Certificate, error) {
	return withContext(ctx, func() (*Certificate, error) { return c.obtain(req) })
}

func (c *Client) obtain(req Request) (*Certificate, error) {
	keyType, err := legoKeyType(req.KeyType)
	if err != nil {
		return nil, err
	}
	// The DNS provider is built first: missing credentials are reported
	// before any request reaches the CA.
	var dnsp *dnsProvider
	if req.DNS != nil {
		if dnsp, err = newDNSProvider(*req.DNS); err != nil {
			return nil, err
		}
	}
	acc, err := c.account()
	if err != nil {
		return nil, err
	}
	res, err := c.order(acc, req, keyType, dnsp)
	var prob *legoacme.ProblemDetails
	if errors.As(err, &prob) && prob.Type == "urn:ietf:params:acme:error:accountDoesNotExist" {
		// The CA forgot the stored account (a test CA restarted, an account
		// deactivated elsewhere): register again once and retry.
		c.opts.Log.Warn("the CA no longer knows the stored account; registering again", "directory", c.opts.Directory)
		if acc, err = c.register(true); err != nil {
			return nil, err
		}
		res, err = c.order(acc, req, keyType, dnsp)
	}
	if err != nil {
		return nil, err
	}
	return &Certificate{
		Cert: res.Certificate, Chain: res.IssuerCertificate, Key: res.PrivateKey,
		Directory: c.opts.Directory, Account: filepath.Base(c.opts.AccountDir),
	}, nil
}

func (c *Client) order(acc *account, req Request, keyType certcrypto.KeyType, dnsp *dnsProvider) (*certificate.Resource, error) {
	if req.Persist != nil {
		return c.orderPersist(acc, req, keyType)
	}
	var lc *lego.Client
	var prop *propagation
	var err error
	if req.DNS != nil {
		// A DNS provider carries one certificate's credentials: its own client.
		if lc, err = c.lego(acc, keyType); err != nil {
			return nil, err
		}
		prop = newPropagation(req.DNS.Resolvers)
		if err := lc.Challenge.SetDNS01Provider(dnsp.legoProvider(), prop.option()); err != nil {
			return nil, err
		}
	} else if lc, err = c.orderClient(acc, req, keyType); err != nil {
		return nil, err
	}
	if req.Profile != "" {
		if err := c.checkProfile(req.Profile); err != nil {
			return nil, err
		}
	}
	or := certificate.ObtainRequest{Domains: req.Domains, Bundle: false, Profile: req.Profile, PreferredChain: c.opts.PreferredChain,
		ReplacesCertID: req.Replaces}
	if len(req.ReuseKey) > 0 {
		if or.PrivateKey, err = certcrypto.ParsePEMPrivateKey(req.ReuseKey); err != nil {
			return nil, fmt.Errorf("acme: key to reuse: %w", err)
		}
	}
	res, err := lc.Certificate.Obtain(or)
	if err != nil && or.ReplacesCertID != "" && c.refusedNewOrder(err) {
		// A CA that refuses the order because of "replaces" (Pebble
		// v2.10.1 cannot find a certificate whose serial has its top bit
		// set) would refuse it at every retry: order without it instead.
		c.opts.Log.Warn("the CA refused an order naming the certificate it replaces; ordering without \"replaces\"", "err", err)
		or.ReplacesCertID = ""
		res, err = lc.Certificate.Obtain(or)
	}
	if err != nil {
		var ce *ChallengeError
		if errors.As(err, &ce) {
			// The CA's own words, without lego's wrapping of the request.
			if ce.Identifier == "" {
				return nil, fmt.Errorf("acme: %s: %w", strings.Join(req.Domains, ", "), ce)
			}
			return nil, fmt.Errorf("acme: %w", ce)
		}
		if prop != nil {
			return nil, prop.explain(err, dnsp.timeout)
		}
		return nil, err
	}
	if len(req.ReuseKey) > 0 && len(res.PrivateKey) == 0 {
		res.PrivateKey = req.ReuseKey
	}
	return res, nil
}

// lego builds a lego client; that GETs the CA's directory.
func (c *Client) lego(acc *account, keyType certcrypto.KeyType) (*lego.Client, error) {
	// Built by hand, not with lego.NewConfig, which reads LEGO_CA_CERTIFICATES
	// and panics when that path is unreadable.
	cfg := &lego.Config{
		CADirURL:  c.opts.Directory,
		User:      acc,
		UserAgent: c.opts.UserAgent,
		// lego wraps the client's Transport in place: give it a client of its own.
		HTTPClient:  &http.Client{Timeout: 30 * time.Second, Transport: newChallengePoll(c.transport, nil)},
		Certificate: lego.CertificateConfig{KeyType: keyType, Timeout: 30 * time.Second},
	}
	lc, err := lego.NewClient(cfg)
	if err != nil {
		return nil, directoryError(c.opts.Directory, err)
	}
	return lc, nil
}

// directoryError says that the CA's directory could not be read, naming
// its URL once: lego's "get directory at 'URL'" and net/http's `Get
// "URL"` around the cause are taken off (the cause stays wrapped).
func directoryError(dir string, err error) error {
	if inner := errors.Unwrap(err); inner != nil && strings.HasPrefix(err.Error(), "get directory at ") {
		err = inner
	}
	var ue *url.Error
	if errors.As(err, &ue) && ue.URL == dir {
		err = ue.Err
	}
	return fmt.Errorf("acme directory %s: %w%s", dir, err, tlsHint(err))
}

// tlsHint explains a CA whose TLS certificate does not verify. The ACME
// connection is always verified (against the system roots and the
// configured ca_bundle); there is no switch to turn that off.
func tlsHint(err error) string {
	var ua x509.UnknownAuthorityError
	var ci x509.CertificateInvalidError
	var hn x509.HostnameError
	switch {
	case errors.As(err, &ua):
		return " (the CA's TLS certificate is signed by an authority this machine does not trust: for a private CA, set ca_bundle in the acme block to its root)"
	case errors.As(err, &hn):
		return " (the CA's TLS certificate is not valid for this host name)"
	case errors.As(err, &ci):
		return " (the CA's TLS certificate is not valid: " + ci.Error() + ")"
	}
	return ""
}

// Register loads the account from AccountDir and registers it at the CA
// unless it is registered already (fleet mode shares the result).
func (c *Client) Register(ctx context.Context) error {
	_, err := withContext(ctx, func() (*account, error) { return c.account() })
	return err
}

// account returns the registered account, registering it on first use.
func (c *Client) account() (*account, error) {
	return c.register(false)
}

func (c *Client) register(again bool) (*account, error) {
	c.mu.Lock()
	defer c.mu.Unlock()
	if err := c.loadAccountLocked(); err != nil {
		return nil, err
	}
	if c.acc.Registration != nil && !again {
		return c.acc, nil
	}
	if !c.opts.AcceptTerms {
		return nil, fmt.Errorf("acme: registering an account at %s needs accept_terms = true in the acme block", c.opts.Directory)
	}
	c.acc.Registration = nil
	lc, err := c.lego(c.acc, certcrypto.EC256)
	if err != nil {
		return nil, err
	}
	var reg *registration.Resource
	if e := c.opts.EAB; e != nil {
		reg, err = lc.Registration.RegisterWithExternalAccountBinding(registration.RegisterEABOptions{
			TermsOfServiceAgreed: true, Kid: e.KID, HmacEncoded: e.HMAC,
		})
	} else {
		if lc.GetExternalAccountRequired() {
			return nil, fmt.Errorf("acme: %s requires external account binding: add an eab { kid, hmac } block for it", c.opts.Directory)
		}
		reg, err = lc.Registration.Register(registration.RegisterOptions{TermsOfServiceAgreed: true})
	}
	if err != nil {
		return nil, fmt.Errorf("acme: register account at %s: %w", c.opts.Directory, err)
	}
	c.acc.Registration = reg
	c.orders = nil // their requests name the old account
	if err := c.acc.save(c.opts.AccountDir, c.opts.WriteFile); err != nil {
		return nil, err
	}
	c.stamp = stampAccount(c.opts.AccountDir) // our own write: nothing to load again
	c.opts.Log.Info("registered ACME account", "directory", c.opts.Directory, "account", reg.URI)
	return c.acc, nil
}

// orderClient returns the lego client for HTTP-01 and TLS-ALPN-01 orders
// like req, made on first use and shared by the orders after it (lego's
// clients are safe for concurrent orders). A client per order would GET the
// directory and HEAD a fresh nonce each time; a shared one fetched the
// directory once and reuses the nonces of earlier answers, so an order costs
// no more requests than lego's own CLI sends.
func (c *Client) orderClient(acc *account, req Request, keyType certcrypto.KeyType) (*lego.Client, error) {
	key := orderKey{keyType: keyType, listen: req.Listen, webroot: req.Webroot, tlsListen: req.TLSListen}
	c.mu.Lock()
	defer c.mu.Unlock()
	if lc := c.orders[key]; lc != nil {
		return lc, nil
	}
	lc, err := c.lego(acc, keyType)
	if err != nil {
		return nil, err
	}
	switch {
	case req.TLSListen != "":
		if c.opts.TLSSolver == nil {
			return nil, errors.New("acme: tls-alpn-01 needs a TLSALPNSolver")
		}
		if err := lc.Challenge.SetTLSALPN01Provider(c.opts.TLSSolver.Provider(req.TLSListen)); err != nil {
			return nil, err
		}
	case req.Webroot != "":
		p, err := newWebrootProvider(req.Webroot)
		if err != nil {
			return nil, fmt.Errorf("webroot %s: %w", req.Webroot, err)
		}
		if err := lc.Challenge.SetHTTP01Provider(p); err != nil {
			return nil, err
		}
	case req.Listen != "":
		if c.solve == nil {
			return nil, errors.New("acme: standalone HTTP-01 needs an HTTPSolver")
		}
		if err := lc.Challenge.SetHTTP01Provider(c.solve.Provider(req.Listen)); err != nil {
			return nil, err
		}
	default:
		return nil, errors.New("acme: request has no challenge (listen, webroot, tls listen or dns)")
	}
	if acc != c.acc { // the account was loaded again meanwhile (a key rollover): do not keep the old key's client
		return lc, nil
	}
	if c.orders == nil {
		c.orders = map[orderKey]*lego.Client{}
	}
	c.orders[key] = lc
	return lc, nil
}

// loadAccountLocked reads (or creates) the account key; c.mu is held.
func (c *Client) loadAccountLocked() error {
	if c.acc != nil {
		if c.stamp.same(stampAccount(c.opts.AccountDir)) {
			return nil
		}
		// Another process changed the account (a key rollover, the fleet's
		// account imported): load it again; lego clients sign with the old.
		c.opts.Log.Info("the account files changed on disk; loading them again", "dir", c.opts.AccountDir)
		c.acc, c.orders = nil, nil
	}
	acc, err := loadAccount(c.opts.AccountDir, c.opts.Directory, c.opts.Email, c.opts.Now(), c.opts.WriteFile)
	if err != nil {
		return fmt.Errorf("acme account in %s: %w", c.opts.AccountDir, err)
	}
	c.acc = acc
	c.stamp = stampAccount(c.opts.AccountDir)
	if c.stamp[1] != nil { // a key rollover left unsettled (rollover.go)
		c.stamp = stampAccount(c.opts.AccountDir)
		if err := c.resolvePendingLocked(); err != nil {
			c.opts.Log.Warn("an unfinished account key rollover could not be settled; using the old key", "err", err)
			c.stamp = accountStamp{} // load and ask again at the next use
		} else {
			c.stamp = stampAccount(c.opts.AccountDir)
		}
	}
	return nil
}

func legoKeyType(s string) (certcrypto.KeyType, error) {
	switch s {
	case "", "ec256":
		return certcrypto.EC256, nil
	case "ec384":
		return certcrypto.EC384, nil
	case "rsa2048":
		return certcrypto.RSA2048, nil
	case "rsa3072":
		return certcrypto.RSA3072, nil
	case "rsa4096":
		return certcrypto.RSA4096, nil
	}
	return "", fmt.Errorf("acme: unsupported key type %q", s)
}
