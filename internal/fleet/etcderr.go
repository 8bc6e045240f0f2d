package fleet

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"slices"
	"strings"
	"sync"

	"go.etcd.io/etcd/api/v3/v3rpc/rpctypes"
	"go.uber.org/zap/zapcore"
	"google.golang.org/grpc"
)

// Why an etcd request failed. The etcd client turns every request that
// ends with its deadline into the bare context error, whatever gRPC saw on
// the way (a refused TLS handshake, a plaintext server, no leader): the
// innermost interceptor keeps the last such error of each request, and
// explain adds what it means to the error the caller logs and reports.

type lastErrKey struct{}

// lastErr is the last error gRPC returned for one of our requests.
type lastErr struct {
	mu  sync.Mutex
	err error
}

func withLastErr(ctx context.Context) context.Context {
	return context.WithValue(ctx, lastErrKey{}, &lastErr{})
}

func lastOf(ctx context.Context) error {
	if s, ok := ctx.Value(lastErrKey{}).(*lastErr); ok {
		s.mu.Lock()
		defer s.mu.Unlock()
		return s.err
	}
	return nil
}

// recordUnary is the innermost unary interceptor: it keeps each attempt's
// error in the request's context.
func recordUnary(ctx context.Context, method string, req, reply any, cc *grpc.ClientConn, invoker grpc.UnaryInvoker, opts ...grpc.CallOption) error {
	err := invoker(ctx, method, req, reply, cc, opts...)
	if err != nil {
		if s, ok := ctx.Value(lastErrKey{}).(*lastErr); ok {
			s.mu.Lock()
			s.err = err
			s.mu.Unlock()
		}
	}
	return err
}

// explain adds to err (from a request made with ctx) what etcd or the
// connection said, in words an operator can act on. It keeps err's chain.
func explain(ctx context.Context, err error) error {
	if err == nil {
		return nil
	}
	if h := diagnose(err, lastOf(ctx)); h != "" {
		return fmt.Errorf("%w (%s)", err, h)
	}
	return err
}

// diagnose names the cause of err; raw is the last error gRPC returned on
// the way (nil when unknown). "" when err says it all.
func diagnose(err, raw error) string {
	if errors.Is(err, ErrAuth) {
		return "check username and password_file"
	}
	text := err.Error()
	if raw != nil {
		text += " " + raw.Error()
	}
	for _, e := range []error{err, raw} {
		switch e := rpctypes.Error(e); {
		case e == nil:
		case errors.Is(e, rpctypes.ErrPermissionDenied):
			return "the etcd user may not use this prefix: grant its role readwrite on it"
		case errors.Is(e, rpctypes.ErrNoLeader), errors.Is(e, rpctypes.ErrTimeout), errors.Is(e, rpctypes.ErrTimeoutDueToLeaderFail),
			errors.Is(e, rpctypes.ErrTimeoutDueToConnectionLost):
			return "the etcd cluster has no leader: less than a quorum of its members is up"
		case refused(e):
			return "etcd refused the auth token and renewer could not authenticate again"
		case errors.Is(e, rpctypes.ErrAuthNotEnabled):
			return "etcd authentication is not enabled"
		}
	}
	for _, m := range messages {
		if strings.Contains(text, m.says) {
			return m.means
		}
	}
	if raw == nil && errors.Is(err, context.DeadlineExceeded) {
		return "etcd did not answer in time: unreachable, or without quorum"
	}
	return ""
}

// messages maps what gRPC and TLS say to what it means here.
var messages = []struct{ says, means string }{
	{"certificate signed by unknown authority", "etcd's server certificate is not signed by ca_file"},
	{"failed to verify certificate", "etcd's server certificate does not verify: check ca_file and the endpoint's host name"},
	{"certificate required", "etcd requires a client certificate: set cert_file and key_file"},
	{"bad certificate", "etcd refused the client certificate (cert_file): is it signed by etcd's client CA?"},
	{"unknown certificate authority", "etcd refused the client certificate (cert_file): it is not signed by etcd's client CA"},
	{"first record does not look like a TLS handshake", "etcd serves plaintext at this endpoint: use http:// or enable TLS on etcd"},
	{"handshake failed: EOF", "etcd closed the TLS handshake: does it serve plaintext at this endpoint? Use http:// or enable TLS on etcd"},
	{"server preface", "etcd serves TLS at this endpoint: use https:// and ca_file"},
	{"frame too large", "etcd serves TLS at this endpoint: use https:// and ca_file"},
	// TLS 1.3: a refused client certificate may show as the connection
	// closing under the first write rather than as the alert.
	{"broken pipe", "etcd closed the connection: if it requires client certificates, check cert_file and key_file"},
	{"connection reset by peer", "etcd closed the connection: if it requires client certificates, check cert_file and key_file"},
	{"connection refused", "nothing listens at the etcd endpoint"},
	{"no such host", "the etcd endpoint's host name does not resolve"},
	{"i/o timeout", "the etcd endpoint does not answer (firewall, or host down)"},
	{"context deadline exceeded while waiting for connections", "no connection to etcd could be made in time"},
}

// slogCore hands the etcd client's log to slog: its errors as warnings,
// its warnings and notes (a line per failed attempt while etcd is away)
// at debug level; its own debug lines not at all.
type slogCore struct {
	log    *slog.Logger
	fields []zapcore.Field
}

func zapLevel(l zapcore.Level) slog.Level {
	if l >= zapcore.ErrorLevel {
		return slog.LevelWarn
	}
	return slog.LevelDebug
}

func (c *slogCore) Enabled(l zapcore.Level) bool {
	// Its debug lines (one per request) say nothing a failure does not.
	return l > zapcore.DebugLevel && c.log.Enabled(context.Background(), zapLevel(l))
}

func (c *slogCore) With(fs []zapcore.Field) zapcore.Core {
	return &slogCore{log: c.log, fields: append(slices.Clip(c.fields), fs...)}
}

func (c *slogCore) Check(e zapcore.Entry, ce *zapcore.CheckedEntry) *zapcore.CheckedEntry {
	if c.Enabled(e.Level) {
		return ce.AddCore(e, c)
	}
	return ce
}

func (c *slogCore) Write(e zapcore.Entry, fs []zapcore.Field) error {
	enc := zapcore.NewMapObjectEncoder()
	for _, f := range append(slices.Clip(c.fields), fs...) {
		f.AddTo(enc)
	}
	keys := make([]string, 0, len(enc.Fields))
	for k := range enc.Fields {
		keys = append(keys, k)
	}
	slices.Sort(keys)
	attrs := make([]any, 0, 2*len(keys))
	for _, k := range keys {
		attrs = append(attrs, k, enc.Fields[k])
	}
	c.log.Log(context.Background(), zapLevel(e.Level), "etcd client: "+e.Message, attrs...)
	return nil
}

func (c *slogCore) Sync() error { return nil }
