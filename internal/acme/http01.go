package acme

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"net/http"
	"strings"
	"sync"
	"syscall"
	"time"

	"github.com/go-acme/lego/v4/challenge"
	"github.com/go-acme/lego/v4/challenge/http01"
)

// HTTPSolver answers HTTP-01 challenges for the whole process. lego's own
// standalone server binds its port for every challenge, so two obtains at
// once fail with "address already in use"; here every pending token of every
// obtain lives in one map, served by one listener per address. A listener is
// opened when its first token arrives and closed when its last one is gone,
// so the port is held only while a challenge is pending.
type HTTPSolver struct {
	log    *slog.Logger
	shared TokenStore // fleet mode: tokens of every node; nil for one node

	mu      sync.Mutex
	tokens  map[string]string // token -> key authorization
	servers map[string]*listener
	closed  bool // after Close, an order abandoned mid-flight opens nothing

	readHeaderTimeout time.Duration // 0: httpReadHeaderTimeout (tests shorten it)
}

// TokenStore shares pending HTTP-01 tokens between the nodes of a fleet
// (store.Shared implements it): behind a load balancer the CA may reach any
// node, so each one answers the tokens any of them presented.
type TokenStore interface {
	PutToken(ctx context.Context, token, keyAuth string) error
	DeleteToken(ctx context.Context, token string) error
	Token(token string) (keyAuth string, ok bool)
}

// tokenTimeout bounds publishing and withdrawing a shared token.
const tokenTimeout = 10 * time.Second

// SetShared makes the solver publish its tokens to ts and answer the tokens
// found there as well as its own. Call it before the first challenge.
func (h *HTTPSolver) SetShared(ts TokenStore) {
	h.mu.Lock()
	defer h.mu.Unlock()
	h.shared = ts
}

// Keep opens a listener on addr now and keeps it open until Close, so that
// the node answers tokens presented by other nodes of a fleet.
func (h *HTTPSolver) Keep(addr string) error {
	h.mu.Lock()
	defer h.mu.Unlock()
	return h.listenLocked(addr)
}

type listener struct {
	srv     *http.Server
	addr    net.Addr // where it listens (the port, when addr asked for :0)
	pending int
}

// Limits of the standalone HTTP-01 server. It faces the internet on port
// 80, so a client that sends its request slowly (slowloris), sends huge
// headers or keeps idle connections open is cut off; a validator's request
// is one small GET.
const (
	httpReadHeaderTimeout = 5 * time.Second
	httpReadTimeout       = 10 * time.Second
	httpWriteTimeout      = 10 * time.Second
	httpIdleTimeout       = 30 * time.Second
	httpMaxHeaderBytes    = 8 << 10
)

// newChallengeServer is the standalone server with its limits; tests
// shorten readHeader.
func (h *HTTPSolver) newChallengeServer() *http.Server {
	readHeader := h.readHeaderTimeout
	if readHeader <= 0 {
		readHeader = httpReadHeaderTimeout
	}
	return &http.Server{
		Handler:           h,
		ReadHeaderTimeout: readHeader,
		ReadTimeout:       httpReadTimeout,
		WriteTimeout:      httpWriteTimeout,
		IdleTimeout:       httpIdleTimeout,
		MaxHeaderBytes:    httpMaxHeaderBytes,
		ErrorLog:          slog.NewLogLogger(h.log.Handler(), slog.LevelDebug),
	}
}

// validToken reports whether token can be an ACME challenge token: RFC 8555
// §8.1 tokens are base64url without padding. Anything else (a path with "/"
// or "..", an empty name) is never a pending token and never a file name.
func validToken(token string) bool {
	if token == "" || len(token) > 256 {
		return false
	}
	for _, c := range []byte(token) {
		if !(c >= 'a' && c <= 'z' || c >= 'A' && c <= 'Z' || c >= '0' && c <= '9' || c == '-' || c == '_') {
			return false
		}
	}
	return true
}

// NewHTTPSolver returns a solver with no listener open yet.
func NewHTTPSolver(log *slog.Logger) *HTTPSolver {
	if log == nil {
		log = slog.New(slog.DiscardHandler)
	}
	return &HTTPSolver{log: log, tokens: map[string]string{}, servers: map[string]*listener{}}
}

// ServeHTTP answers GET (and HEAD) /.well-known/acme-challenge/<token> for
// pending tokens, with the token's key authorization; anything else gets a
// plain 404 that repeats nothing of the request: no other path, no listing,
// no file system. The path is matched as sent (escaped), so only the exact
// path of a pending token is answered. It is also usable behind another
// server (a reverse proxy on port 80).
func (h *HTTPSolver) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	token, ok := strings.CutPrefix(r.URL.EscapedPath(), http01.PathPrefix)
	if !ok || !validToken(token) || (r.Method != http.MethodGet && r.Method != http.MethodHead) {
		http.NotFound(w, r)
		return
	}
	h.mu.Lock()
	keyAuth, ok := h.tokens[token]
	shared := h.shared
	h.mu.Unlock()
	if !ok && shared != nil {
		keyAuth, ok = shared.Token(token)
	}
	if !ok {
		http.NotFound(w, r)
		return
	}
	w.Header().Set("Content-Type", "text/plain")
	_, _ = w.Write([]byte(keyAuth))
}

// Provider returns a lego challenge provider that publishes tokens here and
// makes sure a listener runs on addr.
func (h *HTTPSolver) Provider(addr string) challenge.Provider {
	return &httpProvider{solver: h, addr: addr}
}

type httpProvider struct {
	solver *HTTPSolver
	addr   string
}

func (p *httpProvider) Present(domain, token, keyAuth string) error {
	return p.solver.add(p.addr, token, keyAuth)
}

func (p *httpProvider) CleanUp(domain, token, keyAuth string) error {
	p.solver.remove(p.addr, token)
	return nil
}

func (h *HTTPSolver) add(addr, token, keyAuth string) error {
	if !validToken(token) {
		return fmt.Errorf("http-01: invalid token %q from the CA", token)
	}
	h.mu.Lock()
	shared := h.shared
	h.mu.Unlock()
	if shared != nil {
		ctx, cancel := context.WithTimeout(context.Background(), tokenTimeout)
		defer cancel()
		if err := shared.PutToken(ctx, token, keyAuth); err != nil {
			return fmt.Errorf("http-01: share token with the fleet: %w", err)
		}
	}
	h.mu.Lock()
	defer h.mu.Unlock()
	if err := h.listenLocked(addr); err != nil {
		if shared == nil || !errors.Is(err, syscall.EADDRINUSE) {
			return err
		}
		// Fleet mode: the daemon on this node holds the port (a `renew`
		// beside it) and answers from the fleet's tokens, as every node does.
		h.log.Debug("http-01 port in use; the token is answered from the fleet", "listen", addr)
	}
	h.tokens[token] = keyAuth
	return nil
}

// listenLocked makes sure a listener runs on addr and counts one more user
// of it; h.mu is held.
func (h *HTTPSolver) listenLocked(addr string) error {
	if h.closed {
		return errors.New("http-01 solver is shut down")
	}
	l := h.servers[addr]
	if l == nil {
		ln, err := net.Listen("tcp", addr)
		if err != nil {
			return fmt.Errorf("http-01 standalone server: %w", err)
		}
		l = &listener{srv: h.newChallengeServer(), addr: ln.Addr()}
		h.servers[addr] = l
		go func() {
			if err := l.srv.Serve(ln); err != nil && !errors.Is(err, http.ErrServerClosed) {
				h.log.Error("http-01 server stopped", "listen", addr, "err", err)
			}
		}()
		h.log.Debug("http-01 server listening", "listen", ln.Addr().String())
	}
	l.pending++
	return nil
}

func (h *HTTPSolver) remove(addr, token string) {
	h.mu.Lock()
	shared := h.shared
	h.mu.Unlock()
	if shared != nil {
		ctx, cancel := context.WithTimeout(context.Background(), tokenTimeout)
		defer cancel()
		if err := shared.DeleteToken(ctx, token); err != nil {
			h.log.Warn("http-01: could not withdraw a shared token (it expires with its lease)", "err", err)
		}
	}
	h.mu.Lock()
	defer h.mu.Unlock()
	delete(h.tokens, token)
	l := h.servers[addr]
	if l == nil {
		return
	}
	if l.pending--; l.pending <= 0 {
		delete(h.servers, addr)
		ctx, cancel := context.WithTimeout(context.Background(), 2*time.Second)
		defer cancel()
		_ = l.srv.Shutdown(ctx)
	}
}

// Close stops every listener still open; the solver answers no more tokens.
func (h *HTTPSolver) Close() {
	h.mu.Lock()
	defer h.mu.Unlock()
	h.closed = true
	for addr, l := range h.servers {
		_ = l.srv.Close()
		delete(h.servers, addr)
	}
	clear(h.tokens)
}
