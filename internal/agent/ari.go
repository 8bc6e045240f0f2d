package agent

import (
	"context"
	"errors"
	"log/slog"
	"sync"
	"time"

	"github.com/renewer/renewer/internal/acme"
	"github.com/renewer/renewer/internal/certinfo"
	"github.com/renewer/renewer/internal/config"
	"github.com/renewer/renewer/internal/plan"
	"github.com/renewer/renewer/internal/status"
	"github.com/renewer/renewer/internal/store"
)

// ARI fetching bounds.
const (
	ariConcurrency  = 16             // renewal-information requests at once
	ariMinRefresh   = time.Hour      // never ask again sooner, whatever Retry-After says
	ariMaxRefresh   = 24 * time.Hour // nor later
	ariDefaultAfter = 6 * time.Hour  // when the CA gives no Retry-After
	ariErrorRetry   = time.Hour      // after a failed fetch (the lifetime rule applies meanwhile)
)

// ariOf returns the stored window for the live certificate when it applies:
// ARI on for c, an answer about this very serial, with a window.
func ariOf(c config.Certificate, f *certinfo.Facts, st store.State) *plan.ARI {
	a := st.ARI
	if !c.ARI || f == nil || a == nil || a.Serial != f.Serial || a.Unsupported || a.Start.IsZero() {
		return nil
	}
	return &plan.ARI{Start: a.Start, End: a.End, Chosen: a.Chosen, Explanation: a.Explanation}
}

// ariStale reports whether c's live certificate needs (new) renewal information.
func (a *Agent) ariStale(c config.Certificate, f *certinfo.Facts, st store.State) bool {
	return c.ARI && f != nil && (st.ARI == nil || st.ARI.Serial != f.Serial || !a.now().Before(st.ARI.NextFetch))
}

// refreshARI fetches renewal information for each certificate ins[i] (i in
// todo) whose stored answer is stale, a bounded number at once, and inspects
// those again. A certificate locked by another process is left alone (that
// process is renewing it). Failures are logged and stored; the lifetime rule
// applies meanwhile.
func (a *Agent) refreshARI(ctx context.Context, todo []int, ins []*status.View) {
	sem := make(chan struct{}, ariConcurrency)
	var wg sync.WaitGroup
loop:
	for _, i := range todo {
		in := ins[i]
		c := in.Cert
		if !a.ariStale(c, in.Facts, in.State) {
			continue
		}
		select {
		case sem <- struct{}{}:
		case <-ctx.Done():
			break loop
		}
		wg.Go(func() {
			defer func() { <-sem }()
			unlock, ok, err := a.store.TryLock(c.Name)
			if err != nil || !ok {
				return
			}
			defer unlock()
			st, err := a.loadState(c.Name)
			if err != nil {
				return
			}
			a.fetchARI(ctx, a.log.With("cert", c.Name), c, in.Facts, a.issuer(*in), &st)
			if err := a.saveState(c.Name, st); err != nil {
				a.log.Error("could not save state", "cert", c.Name, "err", err)
			}
			again := a.Inspect(c)
			ins[i] = &again
		})
	}
	wg.Wait()
}

// fetchARI asks the CA for f's renewal window and records it in st. A new
// window gets a new moment, chosen at random inside it once; the same window
// keeps its moment, so restarts do not move it. In fleet mode the moment is
// derived from the serial and the window (fleetMoment): the same on every
// node.
func (a *Agent) fetchARI(ctx context.Context, log *slog.Logger, c config.Certificate, f *certinfo.Facts, issuer config.CA, st *store.State) {
	now := a.now()
	if ctx.Err() != nil {
		return
	}
	info, err := a.issuerCA.RenewalInfo(ctx, issuer, f.Leaf)
	if ctx.Err() != nil { // cut short (shutdown): no answer from the CA, nothing to record
		log.Debug("renewal information fetch abandoned", "err", ctx.Err())
		return
	}
	prev := st.ARI
	if prev != nil && prev.Serial != f.Serial {
		prev = nil
	}
	switch {
	case err != nil && !errors.Is(err, acme.ErrNoARI) && prev != nil && prev.Unsupported:
		// A CA known to offer no ARI that cannot be asked now still
		// offers none: no ARI error to show; ask again later.
		next := *prev
		next.NextFetch = now.Add(ariErrorRetry)
		st.ARI = &next
		log.Debug("the CA (which offers no renewal information) could not be asked again", "err", err)
		return
	case errors.Is(err, acme.ErrNoARI):
		st.SetARI(&store.ARIState{Serial: f.Serial, Unsupported: true, FetchedAt: now, NextFetch: now.Add(ariMaxRefresh)})
		log.Debug("the CA offers no renewal information; using the lifetime rule")
		return
	case err != nil:
		next := store.ARIState{Serial: f.Serial}
		if prev != nil {
			next = *prev // keep the last good window
		}
		next.Error, next.NextFetch = err.Error(), now.Add(ariErrorRetry)
		st.SetARI(&next)
		log.Warn("renewal information fetch failed; the lifetime rule applies until it works", "err", err)
		return
	}
	next := store.ARIState{Serial: f.Serial, Start: info.Start, End: info.End, Explanation: info.ExplanationURL, FetchedAt: now}
	if prev != nil && prev.Start.Equal(info.Start) && prev.End.Equal(info.End) && !prev.Chosen.IsZero() && a.fleet == nil {
		next.Chosen = prev.Chosen
	} else {
		// A moment in what is left of the window: one already past would
		// make the certificate due at once, a "storm" for a window that
		// starts at issuance (short-lived certificates).
		from := info.Start
		if from.Before(now) {
			from = now
		}
		next.Chosen = now
		if from.Before(info.End) {
			next.Chosen = plan.ChooseMoment(from, info.End, a.rnd())
		}
		if a.fleet != nil { // one moment for the whole fleet (fleetmoment.go)
			next.Chosen = fleetMoment(f.Serial, info.Start, info.End)
		}
		if prev == nil || !prev.Start.Equal(info.Start) || !prev.End.Equal(info.End) || !prev.Chosen.Equal(next.Chosen) {
			log.Info("renewal window from the CA", "start", info.Start.UTC().Format(time.RFC3339), "end", info.End.UTC().Format(time.RFC3339),
				"chosen", next.Chosen.UTC().Format(time.RFC3339), "explanation", info.ExplanationURL)
		}
		if !now.Before(info.End) {
			log.Warn("the CA asks for this certificate to be replaced now (renewal window in the past)",
				"explanation", info.ExplanationURL, "serial", f.Serial)
		}
	}
	after := info.RetryAfter
	if after == 0 {
		after = ariDefaultAfter
	}
	next.NextFetch = now.Add(a.ariAfter(after))
	st.SetARI(&next)
}

// ariAfter is how long to wait before asking again after an answer whose
// Retry-After is after: Options.ARIRecheck when set, else after within
// [ariMinRefresh, ariMaxRefresh].
func (a *Agent) ariAfter(after time.Duration) time.Duration {
	if a.ariRecheck > 0 {
		return a.ariRecheck
	}
	return min(max(after, ariMinRefresh), ariMaxRefresh)
}

// replaces is the ARI identifier of the live certificate for a renewal
// order, when this CA has answered renewal information about it (so it
// knows the certificate) and renewer's own account ordered it.
func replaces(in status.View) string {
	if ariOf(in.Cert, in.Facts, in.State) == nil || in.Facts.Leaf == nil || in.State.AdoptedSerial == in.Facts.Serial {
		return "" // adopted certificates were ordered by another client's account
	}
	id, err := acme.ARICertID(in.Facts.Leaf)
	if err != nil {
		return ""
	}
	return id
}
