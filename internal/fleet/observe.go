package fleet

import (
	"context"
	"errors"
	"fmt"
	"strings"
	"sync/atomic"

	clientv3 "go.etcd.io/etcd/client/v3"
	"go.etcd.io/etcd/client/v3/concurrency"
	"google.golang.org/grpc"
)

// What the fleet's monitoring reads besides versions and reports: which
// node holds each renewal lock, and how many etcd requests failed.
//
//	P/holders/<name>   the node holding <name>'s renewal lock, on the lock's lease
//	                   (it goes with the lock: released, or the lease expired)

// requestErrors counts failed etcd requests and tells the hook (metrics).
type requestErrors struct {
	n    atomic.Uint64
	hook atomic.Pointer[func()]
}

// count records one failed request.
func (e *requestErrors) count() {
	e.n.Add(1)
	if f := e.hook.Load(); f != nil {
		(*f)()
	}
}

// dialOptions count every failed unary etcd request (each attempt the
// client's own retries make included), except those whose caller gave up
// (a cancelled context: a shutdown, not an etcd failure).
func (e *requestErrors) dialOptions() []grpc.DialOption {
	return []grpc.DialOption{grpc.WithChainUnaryInterceptor(
		func(ctx context.Context, method string, req, reply any, cc *grpc.ClientConn, invoker grpc.UnaryInvoker, opts ...grpc.CallOption) error {
			err := invoker(ctx, method, req, reply, cc, opts...)
			if err != nil && !errors.Is(ctx.Err(), context.Canceled) {
				e.count()
			}
			return err
		})}
}

// SetRequestErrorHook makes f hear of every failed etcd request (the
// daemon passes metrics.EtcdRequestError). Safe at any time.
func (b *Backend) SetRequestErrorHook(f func()) {
	if f == nil {
		b.errs.hook.Store(nil)
		return
	}
	b.errs.hook.Store(&f)
}

// CountRequestError records a failed etcd request that the client's
// interceptor does not see (a watch stream's error, say): call it where
// such an error is handled.
func (b *Backend) CountRequestError() { b.errs.count() }

// RequestErrors is how many etcd requests failed since Open.
func (b *Backend) RequestErrors() uint64 { return b.errs.n.Load() }

// markHolder records this node as the holder of name's renewal lock, on
// the lock session's lease, so the record goes with the lock. A failure is
// only logged: the record is for monitoring.
func (b *Backend) markHolder(ctx context.Context, s *concurrency.Session, name string) {
	if _, err := b.cli.Put(ctx, b.Key("holders", name), b.node, clientv3.WithLease(s.Lease())); err != nil {
		b.log.Debug("could not record the renewal lock's holder", "cert", name, "err", err)
	}
}

// LockHolders maps each certificate whose renewal lock is held to the node
// holding it.
func (b *Backend) LockHolders(ctx context.Context) (map[string]string, error) {
	octx, cancel := b.op(ctx)
	defer cancel()
	pfx := b.Key("holders") + "/"
	resp, err := b.cli.Get(octx, pfx, clientv3.WithPrefix())
	if err != nil {
		return nil, fmt.Errorf("fleet: renewal lock holders: %w", err)
	}
	out := map[string]string{}
	for _, kv := range resp.Kvs {
		out[strings.TrimPrefix(string(kv.Key), pfx)] = string(kv.Value)
	}
	return out, nil
}
