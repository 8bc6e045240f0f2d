package fleet

import (
	"context"
	"errors"
	"log/slog"
	"time"

	"go.etcd.io/etcd/api/v3/v3rpc/rpctypes"
)

// Watches set up again after a failure wait longer each time (etcd without
// quorum refuses a leader-requiring watch at once), and say so in the log
// once, then again only every watchLogEvery while the failure lasts.
const (
	watchRetryMin = time.Second
	watchRetryMax = 30 * time.Second
	watchLogEvery = 10 * time.Minute
)

// watchRetry is the backoff and the log of one watch loop. Pure but for
// the logger: the caller sleeps.
type watchRetry struct {
	what     string // "certificates", "challenge tokens"
	failures int
	loggedAt time.Time // last warning
}

// failed records a failure at now and returns how long to wait before the
// next attempt; it logs a warning at the first failure and then at most
// every watchLogEvery, a debug line otherwise.
func (w *watchRetry) failed(log *slog.Logger, now time.Time, err error) time.Duration {
	w.failures++
	d := watchRetryMin << min(w.failures-1, 5)
	d = min(d, watchRetryMax)
	switch {
	case w.failures == 1:
		log.Warn("fleet watch interrupted; retrying with backoff", "watch", w.what, "err", err, "retry_in", d)
		w.loggedAt = now
	case now.Sub(w.loggedAt) >= watchLogEvery:
		log.Warn("fleet watch still failing", "watch", w.what, "failures", w.failures, "err", err, "retry_in", d)
		w.loggedAt = now
	default:
		log.Debug("fleet watch failed again", "watch", w.what, "failures", w.failures, "err", err, "retry_in", d)
	}
	return d
}

// ok records a watch set up again; it logs the recovery after failures.
func (w *watchRetry) ok(log *slog.Logger) {
	if w.failures > 0 {
		log.Info("fleet watch resumed", "watch", w.what, "after_failures", w.failures)
	}
	w.failures = 0
}

// watchFailed handles a watch's error: a token the server no longer
// accepts is renewed before the next attempt. It returns the wait.
func (b *Backend) watchFailed(ctx context.Context, w *watchRetry, err error) time.Duration {
	err = explain(ctx, err)
	if b.auth != nil && (refused(err) || errors.Is(rpctypes.Error(err), rpctypes.ErrPermissionDenied)) {
		actx, cancel := b.op(ctx)
		if rerr := b.auth.renew(actx); rerr != nil {
			err = errors.Join(err, rerr)
		}
		cancel()
	}
	return w.failed(b.log, b.now(), err)
}

// sleep waits d, or until ctx or the Backend ends; false when they did.
func (b *Backend) sleep(ctx context.Context, d time.Duration) bool {
	t := time.NewTimer(d)
	defer t.Stop()
	select {
	case <-ctx.Done():
		return false
	case <-b.ctx.Done():
		return false
	case <-t.C:
		return true
	}
}
