package fleet

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"sync"
	"time"

	"go.etcd.io/etcd/api/v3/v3rpc/rpctypes"
	clientv3 "go.etcd.io/etcd/client/v3"
	"google.golang.org/grpc"
)

// Username/password authentication is renewer's, not the etcd client's.
//
// The v3.7.3 client re-authenticates after the server's token expired
// (--auth-token-ttl, 300 s by default) while still sending the expired
// token with the Authenticate request. etcd 3.4 checks that token even on
// Authenticate and refuses it, so the client loops on "invalid auth token"
// until each request's deadline, for good (etcd-io/etcd#12549 worked
// around it by clearing the token first; the current client no longer
// does). So the client gets no username or password here: tokenAuth
// attaches the token to each request itself, authenticates without one,
// and on "invalid auth token", "user name is empty" or "revision of auth
// store is old" authenticates again and repeats the request once. That
// works against 3.4 and every later server alike.

// noToken marks a request context whose requests carry no auth token (the
// Authenticate request itself).
type noToken struct{}

const authenticateMethod = "/etcdserverpb.Auth/Authenticate"

// tokenAuth is grpc per-RPC credentials plus the interceptors that keep
// the token fresh.
type tokenAuth struct {
	user, password string
	timeout        time.Duration // bound of one Authenticate
	log            *slog.Logger
	cli            *clientv3.Client // set once the client exists

	mu       sync.Mutex
	token    string
	disabled bool // the server said authentication is not enabled: send requests without a token

	sem chan struct{} // one authentication at a time
}

func newTokenAuth(user, password string, timeout time.Duration, log *slog.Logger) *tokenAuth {
	return &tokenAuth{user: user, password: password, timeout: timeout, log: log, sem: make(chan struct{}, 1)}
}

func (a *tokenAuth) current() string {
	a.mu.Lock()
	defer a.mu.Unlock()
	return a.token
}

// needed reports whether a request must wait for a token first.
func (a *tokenAuth) needed() bool {
	a.mu.Lock()
	defer a.mu.Unlock()
	return a.token == "" && !a.disabled
}

// GetRequestMetadata implements credentials.PerRPCCredentials.
func (a *tokenAuth) GetRequestMetadata(ctx context.Context, _ ...string) (map[string]string, error) {
	if ctx.Value(noToken{}) != nil {
		return nil, nil
	}
	if t := a.current(); t != "" {
		return map[string]string{rpctypes.TokenFieldNameGRPC: t}, nil
	}
	return nil, nil
}

// RequireTransportSecurity implements credentials.PerRPCCredentials: etcd
// accepts passwords over plaintext connections too (the operator chose).
func (a *tokenAuth) RequireTransportSecurity() bool { return false }

// ErrAuth wraps an authentication etcd refused (a wrong username or
// password, or a user without a role).
var ErrAuth = errors.New("etcd refused the username or password")

// authenticate gets a new token unless the one in use is no longer stale
// (another request renewed it meanwhile), or the server has no
// authentication enabled (unless force: it refused a request since).
func (a *tokenAuth) authenticate(ctx context.Context, stale string, force bool) error {
	select {
	case a.sem <- struct{}{}:
	case <-ctx.Done():
		return ctx.Err()
	}
	defer func() { <-a.sem }()
	a.mu.Lock()
	cur, off := a.token, a.disabled
	a.mu.Unlock()
	if cur != stale || (off && stale == "" && !force) {
		return nil
	}
	actx, cancel := context.WithTimeout(context.WithValue(ctx, noToken{}, true), a.timeout)
	defer cancel()
	resp, err := a.cli.Auth.Authenticate(actx, a.user, a.password)
	switch {
	case errors.Is(err, rpctypes.ErrAuthNotEnabled):
		a.mu.Lock()
		a.token, a.disabled = "", true
		a.mu.Unlock()
		return nil
	case errors.Is(err, rpctypes.ErrAuthFailed):
		return fmt.Errorf("%w (user %q): %v", ErrAuth, a.user, err)
	case err != nil:
		return fmt.Errorf("etcd authentication as %q: %w", a.user, err)
	}
	a.set(resp.Token)
	a.log.Debug("etcd: authenticated", "user", a.user)
	return nil
}

func (a *tokenAuth) set(t string) {
	a.mu.Lock()
	a.token, a.disabled = t, false
	a.mu.Unlock()
}

// refused reports whether err says the request's token was not accepted.
func refused(err error) bool {
	e := rpctypes.Error(err)
	return errors.Is(e, rpctypes.ErrInvalidAuthToken) || errors.Is(e, rpctypes.ErrUserEmpty) || errors.Is(e, rpctypes.ErrAuthOldRevision)
}

// unary authenticates before a request when there is no token yet, and
// once more when the server refuses the token, then repeats the request.
func (a *tokenAuth) unary(ctx context.Context, method string, req, reply any, cc *grpc.ClientConn, invoker grpc.UnaryInvoker, opts ...grpc.CallOption) error {
	if method == authenticateMethod || ctx.Value(noToken{}) != nil {
		return invoker(ctx, method, req, reply, cc, opts...)
	}
	if a.needed() {
		if err := a.authenticate(ctx, "", false); err != nil {
			return err
		}
	}
	tok := a.current()
	err := invoker(ctx, method, req, reply, cc, opts...)
	if !refused(err) {
		return err
	}
	a.log.Debug("etcd refused the auth token; authenticating again", "method", method, "err", err)
	if aerr := a.authenticate(ctx, tok, true); aerr != nil {
		return aerr
	}
	return invoker(ctx, method, req, reply, cc, opts...)
}

// stream authenticates before a stream (a watch, lease keep-alives) opens
// when there is no token yet: the stream carries the token it opened with.
func (a *tokenAuth) stream(ctx context.Context, desc *grpc.StreamDesc, cc *grpc.ClientConn, method string, streamer grpc.Streamer, opts ...grpc.CallOption) (grpc.ClientStream, error) {
	if a.needed() {
		if err := a.authenticate(ctx, "", false); err != nil {
			return nil, err
		}
	}
	return streamer(ctx, desc, cc, method, opts...)
}

// renew drops the token in use when it is still stale, so the next request
// or stream authenticates again (a watch refused on an expired token).
func (a *tokenAuth) renew(ctx context.Context) error {
	return a.authenticate(ctx, a.current(), true)
}
