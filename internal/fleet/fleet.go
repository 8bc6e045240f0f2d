// Package fleet is the etcd backend of store.Shared: many nodes serving the
// same certificates share one renewal per certificate, the issued versions,
// their ACME account and pending HTTP-01 tokens through an etcd cluster.
//
// Keys under the prefix P:
//
//	P/certs/<name>                the published version: JSON with cert, chain and the sealed key
//	P/locks/certs/<name>/<lease>  renewal lock (concurrency.Mutex on the holder's lease)
//	P/locks/accounts/<acct>/<lease>  lock held while the ACME account is registered
//	P/accounts/<acct>             the ACME account: sealed JSON of key.pem and account.json
//	P/nodes/<name>/<node>         what each node serves of <name> (store.NodeReport JSON)
//	P/challenges/<token>          pending HTTP-01 key authorization, on a lease
//	P/holders/<name>              the node holding <name>'s renewal lock, on its lease (observe.go)
//
// Private keys are sealed with the fleet key (nacl/secretbox) before they
// leave the node; a node without the key can neither read nor write them.
// Every write of a certificate is fenced: a transaction that succeeds only
// while the writer's lock key still exists at its create revision, so a
// node whose lease expired (it was cut off or stalled) writes nothing.
//
// Only this package (and the binary's wiring) imports the etcd client.
package fleet

import (
	"context"
	"crypto/tls"
	"crypto/x509"
	"encoding/json"
	"errors"
	"fmt"
	"log/slog"
	"os"
	"regexp"
	"strings"
	"sync"
	"time"

	clientv3 "go.etcd.io/etcd/client/v3"
	"go.etcd.io/etcd/client/v3/concurrency"
	"go.uber.org/zap"
	"google.golang.org/grpc"

	"github.com/renewer/renewer/internal/certinfo"
	"github.com/renewer/renewer/internal/config"
	"github.com/renewer/renewer/internal/store"
)

// Every etcd request is bounded by the dial timeout (dial_timeout, default
// 5s), so a node cut off from etcd fails its fleet steps (and keeps
// serving what it has) instead of hanging.

// tokenTTL is the lease of a pending HTTP-01 token: it outlives any order.
const tokenTTL = 10 * 60

// Options open a Backend.
type Options struct {
	Endpoints   []string
	Prefix      string // e.g. "/renewer"
	Node        string // this node's name
	Key         Key    // the fleet key
	TLS         *tls.Config
	Username    string
	Password    string
	LockTTL     time.Duration // renewal lock lease; 0 means config.DefaultLockTTL
	DialTimeout time.Duration // 0 means config.DefaultDialTimeout
	Log         *slog.Logger
	Now         func() time.Time
}

// Backend is store.Shared on an etcd cluster. It is safe for concurrent use.
type Backend struct {
	cli    *clientv3.Client
	prefix string
	node   string
	key    Key
	ttl    int
	log    *slog.Logger
	now    func() time.Time
	opTime time.Duration   // bound of one request
	ctx    context.Context // ends at Close
	cancel context.CancelFunc

	tokensOnce sync.Once
	tokensMu   sync.Mutex
	tokens     map[string]string // watch-fed cache of P/challenges/

	errs *requestErrors // failed etcd requests (observe.go)

	auth *tokenAuth // username/password authentication (auth.go); nil without

}

var _ store.Shared = (*Backend)(nil)

// Open connects to etcd (without waiting for it: a node whose etcd is
// down still starts and serves what it has installed).
func Open(o Options) (*Backend, error) {
	if len(o.Endpoints) == 0 {
		return nil, errors.New("fleet: no etcd endpoints")
	}
	if o.Node == "" {
		return nil, errors.New("fleet: no node name")
	}
	if o.Key == (Key{}) {
		return nil, errors.New("fleet: no fleet key: fleet mode refuses to start without one")
	}
	if o.Prefix == "" {
		o.Prefix = config.DefaultFleetPrefix
	}
	if o.LockTTL <= 0 {
		o.LockTTL = config.DefaultLockTTL
	}
	if o.DialTimeout <= 0 {
		o.DialTimeout = config.DefaultDialTimeout
	}
	if o.Log == nil {
		o.Log = slog.New(slog.DiscardHandler)
	}
	if o.Now == nil {
		o.Now = time.Now
	}
	log := o.Log.With("node", o.Node)
	// The password is renewer's to present (auth.go): the client never
	// authenticates by itself. Its log goes to ours (etcderr.go).
	unary := []grpc.UnaryClientInterceptor{recordUnary}
	errs := &requestErrors{}
	dial := errs.dialOptions() // outermost: a request that succeeds after a new token is no failure
	var auth *tokenAuth
	if o.Username != "" {
		auth = newTokenAuth(o.Username, o.Password, o.DialTimeout, log)
		unary = []grpc.UnaryClientInterceptor{auth.unary, recordUnary}
		dial = append(dial, grpc.WithPerRPCCredentials(auth), grpc.WithChainStreamInterceptor(auth.stream))
	}
	dial = append(dial, grpc.WithChainUnaryInterceptor(unary...))
	cli, err := clientv3.New(clientv3.Config{
		Endpoints: o.Endpoints, DialTimeout: o.DialTimeout, TLS: o.TLS,
		DialKeepAliveTime: 5 * time.Second, DialKeepAliveTimeout: 5 * time.Second,
		DialOptions: dial,
		Logger:      zap.New(&slogCore{log: log.With("component", "etcd-client")}),
	})
	if err != nil {
		return nil, fmt.Errorf("fleet: etcd client: %w", err)
	}
	if auth != nil {
		auth.cli = cli
	}
	ctx, cancel := context.WithCancel(context.Background())
	return &Backend{
		cli: cli, prefix: strings.TrimSuffix(o.Prefix, "/"), node: o.Node, key: o.Key,
		ttl: max(1, int((o.LockTTL+time.Second-1)/time.Second)), log: log, now: o.Now,
		ctx: ctx, cancel: cancel, tokens: map[string]string{}, opTime: o.DialTimeout, auth: auth, errs: errs,
	}, nil
}

// OpenConfig opens the Backend a config's fleet block describes: it reads

// Opener is OpenConfig for the binary's wiring (cli.Deps.Fleet, set in cmd/renewer), which holds
// the backend as an interface: on error it returns a nil interface, not a
// typed nil that would look like a backend.
func Opener(f *config.Fleet, log *slog.Logger) (interface {
	store.Shared
	Close() error
}, error) {
	b, err := OpenConfig(f, log)
	if err != nil {
		return nil, err
	}
	return b, nil
}

// the fleet key, the etcd client certificate and the password file.
func OpenConfig(f *config.Fleet, log *slog.Logger) (*Backend, error) {
	at := fmt.Sprintf("%s:%d", f.Range.Filename, f.Range.Start.Line)
	if f.KeyFile == "" {
		return nil, fmt.Errorf("%s: fleet mode needs key_file: refusing to start without the fleet key", at)
	}
	key, err := LoadKey(f.KeyFile)
	if err != nil {
		return nil, fmt.Errorf("%s: %w", at, err)
	}
	o := Options{
		Endpoints: f.Etcd.Endpoints, Prefix: f.Etcd.Prefix, Node: f.Node, Key: key, Username: f.Etcd.Username,
		LockTTL: f.LockTTL, DialTimeout: f.Etcd.DialTimeout, Log: log,
	}
	if f.Etcd.PasswordFile != "" {
		pw, err := os.ReadFile(f.Etcd.PasswordFile)
		if err != nil {
			return nil, fmt.Errorf("%s: etcd password: %w", at, err)
		}
		o.Password = strings.TrimRight(string(pw), "\r\n")
	}
	if f.Etcd.CAFile != "" || f.Etcd.CertFile != "" {
		o.TLS = &tls.Config{MinVersion: tls.VersionTLS12}
		if f.Etcd.CAFile != "" {
			pemBytes, err := os.ReadFile(f.Etcd.CAFile)
			if err != nil {
				return nil, fmt.Errorf("%s: etcd ca_file: %w", at, err)
			}
			pool := x509.NewCertPool()
			if !pool.AppendCertsFromPEM(pemBytes) {
				return nil, fmt.Errorf("%s: etcd ca_file %s holds no certificate", at, f.Etcd.CAFile)
			}
			o.TLS.RootCAs = pool
		}
		if f.Etcd.CertFile != "" {
			pair, err := tls.LoadX509KeyPair(f.Etcd.CertFile, f.Etcd.KeyFile)
			if err != nil {
				return nil, fmt.Errorf("%s: etcd client certificate: %w", at, err)
			}
			o.TLS.Certificates = []tls.Certificate{pair}
		}
	}
	return Open(o)
}

// Close stops the watches and closes the etcd client. Locks still held
// expire with their leases.
func (b *Backend) Close() error {
	b.cancel()
	return b.cli.Close()
}

// Client is the etcd client (for tests and tools).
func (b *Backend) Client() *clientv3.Client { return b.cli }

// Node is this node's name.
func (b *Backend) Node() string { return b.node }

// Key is the etcd key of the given path elements under the prefix.
func (b *Backend) Key(elems ...string) string {
	return b.prefix + "/" + strings.Join(elems, "/")
}

// op bounds one request and keeps what gRPC said on the way (explain).
func (b *Backend) op(ctx context.Context) (context.Context, context.CancelFunc) {
	return context.WithTimeout(withLastErr(ctx), b.opTime)
}

// session grants a lease of the lock TTL and keeps it alive until the
// session is closed or the Backend is.
func (b *Backend) session(ctx context.Context) (*concurrency.Session, error) {
	octx, cancel := b.op(ctx)
	defer cancel()
	lease, err := b.cli.Grant(octx, int64(b.ttl))
	if err != nil {
		return nil, fmt.Errorf("fleet: etcd lease: %w", explain(octx, err))
	}
	s, err := concurrency.NewSession(b.cli, concurrency.WithLease(lease.ID), concurrency.WithContext(b.ctx))
	if err != nil {
		return nil, fmt.Errorf("fleet: etcd session: %w", err)
	}
	return s, nil
}

// Claim implements store.Shared.
func (b *Backend) Claim(ctx context.Context, name string) (store.Claim, bool, error) {
	s, err := b.session(ctx)
	if err != nil {
		return nil, false, fmt.Errorf("fleet: claim %s: %w", name, err)
	}
	m := concurrency.NewMutex(s, b.Key("locks", "certs", name))
	octx, cancel := b.op(ctx)
	defer cancel()
	switch err := m.TryLock(octx); {
	case errors.Is(err, concurrency.ErrLocked):
		_ = s.Close()
		return nil, false, nil
	case err != nil:
		_ = s.Close()
		return nil, false, fmt.Errorf("fleet: claim %s: %w", name, explain(octx, err))
	}
	b.markHolder(octx, s, name)
	b.log.Debug("renewal lock taken", "cert", name, "lock", m.Key())
	return &claim{b: b, s: s, m: m, name: name}, true, nil
}

type claim struct {
	b    *Backend
	s    *concurrency.Session
	m    *concurrency.Mutex
	name string
	once sync.Once
}

// record is P/certs/<name>.
type record struct {
	Name     string    `json:"name"`
	Serial   string    `json:"serial"`
	NotAfter time.Time `json:"not_after"`
	Node     string    `json:"node"`
	At       time.Time `json:"published_at"`
	CA       string    `json:"ca,omitempty"`
	Account  string    `json:"account,omitempty"`
	Cert     string    `json:"cert"`
	Chain    string    `json:"chain"`
	Key      []byte    `json:"key_sealed"` // seal(P/certs/<name>, key PEM)
}

// Publish implements store.Claim: a transaction that writes only while this
// node's lock key exists at its create revision.
func (c *claim) Publish(ctx context.Context, p store.Published) error {
	k := c.b.Key("certs", c.name)
	sealed, err := c.b.key.seal(k, p.Bundle.Key)
	if err != nil {
		return err
	}
	raw, err := json.Marshal(record{
		Name: c.name, Serial: p.Serial, NotAfter: p.NotAfter.UTC(), Node: c.b.node, At: c.b.now().UTC(),
		CA: p.Bundle.CA, Account: p.Bundle.Account, Cert: string(p.Bundle.Cert), Chain: string(p.Bundle.Chain), Key: sealed,
	})
	if err != nil {
		return fmt.Errorf("fleet: publish %s: %w", c.name, err)
	}
	octx, cancel := c.b.op(ctx)
	defer cancel()
	resp, err := c.b.cli.Txn(octx).If(c.m.IsOwner()).Then(clientv3.OpPut(k, string(raw))).Commit()
	if err != nil {
		return fmt.Errorf("fleet: publish %s: %w", c.name, explain(octx, err))
	}
	if !resp.Succeeded {
		return fmt.Errorf("fleet: publish %s: %w", c.name, store.ErrClaimLost)
	}
	c.b.log.Info("published to the fleet", "cert", c.name, "serial", p.Serial, "revision", resp.Header.Revision)
	return nil
}

// Release implements store.Claim.
func (c *claim) Release() {
	c.once.Do(func() {
		ctx, cancel := c.b.op(context.Background())
		defer cancel()
		if err := c.m.Unlock(ctx); err != nil {
			c.b.log.Debug("unlock failed; the lock expires with its lease", "cert", c.name, "err", err)
		}
		_ = c.s.Close()
	})
}

// Latest implements store.Shared.
func (b *Backend) Latest(ctx context.Context, name string) (*store.Published, error) {
	k := b.Key("certs", name)
	octx, cancel := b.op(ctx)
	defer cancel()
	resp, err := b.cli.Get(octx, k)
	if err != nil {
		return nil, fmt.Errorf("fleet: read %s: %w", name, explain(octx, err))
	}
	if len(resp.Kvs) == 0 {
		return nil, nil
	}
	var r record
	if err := json.Unmarshal(resp.Kvs[0].Value, &r); err != nil {
		return nil, fmt.Errorf("fleet: read %s: %w", k, err)
	}
	keyPEM, err := b.key.open(k, r.Key)
	if err != nil {
		return nil, fmt.Errorf("fleet: private key of %s: %w", name, err)
	}
	return &store.Published{
		Name: name, Serial: certinfo.NormalizeSerial(r.Serial), NotAfter: r.NotAfter, Node: r.Node, At: r.At,
		Bundle: store.Bundle{Cert: []byte(r.Cert), Chain: []byte(r.Chain), Key: keyPEM, CA: r.CA, Account: r.Account},
	}, nil
}

// Report implements store.Shared.
func (b *Backend) Report(ctx context.Context, name string, r store.NodeReport) error {
	r.Node = b.node
	if r.At.IsZero() {
		r.At = b.now().UTC()
	}
	raw, err := json.Marshal(r)
	if err != nil {
		return fmt.Errorf("fleet: report %s: %w", name, err)
	}
	octx, cancel := b.op(ctx)
	defer cancel()
	if _, err := b.cli.Put(octx, b.Key("nodes", name, b.node), string(raw)); err != nil {
		return fmt.Errorf("fleet: report %s: %w", name, explain(octx, err))
	}
	return nil
}

// Reports implements store.Shared.
func (b *Backend) Reports(ctx context.Context, name string) ([]store.NodeReport, error) {
	octx, cancel := b.op(ctx)
	defer cancel()
	resp, err := b.cli.Get(octx, b.Key("nodes", name)+"/", clientv3.WithPrefix(), clientv3.WithSort(clientv3.SortByKey, clientv3.SortAscend))
	if err != nil {
		return nil, fmt.Errorf("fleet: reports of %s: %w", name, explain(octx, err))
	}
	var out []store.NodeReport
	for _, kv := range resp.Kvs {
		var r store.NodeReport
		if err := json.Unmarshal(kv.Value, &r); err != nil {
			return nil, fmt.Errorf("fleet: report %s: %w", kv.Key, err)
		}
		r.Serial = certinfo.NormalizeSerial(r.Serial) // a node not yet upgraded writes the older form
		out = append(out, r)
	}
	return out, nil
}

// Changes implements store.Shared. The watch requires a leader, so a node
// whose member lost its quorum notices; when it is set up again (the node
// is back), a value is sent so the caller catches up. Failures back off
// (watch.go).
func (b *Backend) Changes(ctx context.Context) <-chan struct{} {
	out := make(chan struct{}, 1)
	kick := func() {
		select {
		case out <- struct{}{}:
		default:
		}
	}
	go func() {
		retry := &watchRetry{what: "certificates"}
		for ctx.Err() == nil && b.ctx.Err() == nil {
			wctx, cancel := context.WithCancel(clientv3.WithRequireLeader(withLastErr(ctx)))
			stop := context.AfterFunc(b.ctx, cancel)
			wch := b.cli.Watch(wctx, b.Key("certs")+"/", clientv3.WithPrefix(), clientv3.WithCreatedNotify())
			var werr error
			for resp := range wch {
				if werr = resp.Err(); werr != nil {
					break
				}
				retry.ok(b.log)
				kick() // created notification (a catch-up) or a new version
			}
			stop()
			cancel()
			if ctx.Err() != nil || b.ctx.Err() != nil {
				return
			}
			if werr == nil {
				werr = errors.New("watch closed")
			}
			if !b.sleep(ctx, b.watchFailed(wctx, retry, werr)) {
				return
			}
		}
	}()
	return out
}

// PutToken implements store.Shared (acme.TokenStore).
func (b *Backend) PutToken(ctx context.Context, token, keyAuth string) error {
	octx, cancel := b.op(ctx)
	defer cancel()
	lease, err := b.cli.Grant(octx, tokenTTL)
	if err != nil {
		return fmt.Errorf("fleet: token lease: %w", explain(octx, err))
	}
	if _, err := b.cli.Put(octx, b.Key("challenges", token), keyAuth, clientv3.WithLease(lease.ID)); err != nil {
		return fmt.Errorf("fleet: put token: %w", explain(octx, err))
	}
	return nil
}

// DeleteToken implements store.Shared (acme.TokenStore).
func (b *Backend) DeleteToken(ctx context.Context, token string) error {
	octx, cancel := b.op(ctx)
	defer cancel()
	resp, err := b.cli.Get(octx, b.Key("challenges", token))
	if err != nil {
		return fmt.Errorf("fleet: delete token: %w", explain(octx, err))
	}
	for _, kv := range resp.Kvs { // revoking the lease deletes the key
		if _, err := b.cli.Revoke(octx, clientv3.LeaseID(kv.Lease)); err != nil {
			return fmt.Errorf("fleet: delete token: %w", explain(octx, err))
		}
	}
	return nil
}

// tokenLookup bounds the direct read of a token the cache does not hold yet.
const tokenLookup = 2 * time.Second

// Token implements store.Shared (acme.TokenStore): from a cache fed by a
// watch on P/challenges/ (started by ServeTokens, which the daemon calls
// when it starts serving challenges; else by the first lookup), else (a
// token presented a moment ago) from etcd.
func (b *Backend) Token(token string) (string, bool) {
	if !tokenRE.MatchString(token) { // ACME tokens are base64url (RFC 8555 8.3)
		return "", false
	}
	b.tokensOnce.Do(func() { go b.watchTokens() })
	b.tokensMu.Lock()
	v, ok := b.tokens[token]
	b.tokensMu.Unlock()
	if ok {
		return v, true
	}
	ctx, cancel := context.WithTimeout(b.ctx, tokenLookup)
	defer cancel()
	resp, err := b.cli.Get(ctx, b.Key("challenges", token))
	if err != nil || len(resp.Kvs) == 0 {
		return "", false
	}
	return string(resp.Kvs[0].Value), true
}

// ServeTokens starts the token cache and its watch now rather than at the
// first lookup (agent.ServeChallenges calls it in the daemon).
func (b *Backend) ServeTokens() {
	b.tokensOnce.Do(func() { go b.watchTokens() })
}

func (b *Backend) watchTokens() {
	pfx := b.Key("challenges") + "/"
	retry := &watchRetry{what: "challenge tokens"}
	for b.ctx.Err() == nil {
		ctx, cancel := b.op(b.ctx)
		resp, err := b.cli.Get(ctx, pfx, clientv3.WithPrefix())
		cancel()
		if err == nil {
			fresh := map[string]string{}
			for _, kv := range resp.Kvs {
				fresh[strings.TrimPrefix(string(kv.Key), pfx)] = string(kv.Value)
			}
			b.tokensMu.Lock()
			b.tokens = fresh
			b.tokensMu.Unlock()
			retry.ok(b.log)
			wctx := withLastErr(b.ctx)
			for wr := range b.cli.Watch(wctx, pfx, clientv3.WithPrefix(), clientv3.WithRev(resp.Header.Revision+1)) {
				if err = wr.Err(); err != nil {
					break
				}
				b.tokensMu.Lock()
				for _, ev := range wr.Events {
					t := strings.TrimPrefix(string(ev.Kv.Key), pfx)
					if ev.Type == clientv3.EventTypeDelete {
						delete(b.tokens, t)
					} else {
						b.tokens[t] = string(ev.Kv.Value)
					}
				}
				b.tokensMu.Unlock()
			}
			ctx = wctx
		}
		if b.ctx.Err() != nil {
			return
		}
		if err == nil {
			err = errors.New("watch closed")
		}
		if !b.sleep(b.ctx, b.watchFailed(ctx, retry, err)) {
			return
		}
	}
}

var tokenRE = regexp.MustCompile(`^[A-Za-z0-9_-]{1,256}$`)
