// Package schedule holds the daemon's timing rules: when to wake next and
// how long to back off after a failure. Everything here is pure: the current
// time and the random source are arguments, so every rule is a table test.
package schedule

import (
	"math/rand/v2"
	"time"

	"github.com/robfig/cron/v3"
)

// Backoff is a capped exponential retry schedule.
type Backoff struct {
	Min time.Duration // delay after the first failure
	Max time.Duration // cap
}

// Delay returns how long to wait after the n-th consecutive failure (n ≥ 1):
// Min·2^(n−1), capped, then spread by ±10% so a fleet that failed together
// does not retry together. The cap shrinks as expiry nears — to a hundredth
// of the time left, but never below Min — so a 6-day certificate is retried
// within the hour, not every six hours; an expired one every Min. notAfter
// zero means unknown (no certificate yet): the plain cap applies. rnd is in
// [0,1).
func (b Backoff) Delay(n int, now, notAfter time.Time, rnd float64) time.Duration {
	limit := b.Cap(now, notAfter)
	d := b.Min
	for i := 1; i < n && d < limit; i++ {
		d *= 2
	}
	d = min(d, limit)
	return d + time.Duration((rnd-0.5)*0.2*float64(d))
}

// Cap is the largest delay allowed with notAfter ahead.
func (b Backoff) Cap(now, notAfter time.Time) time.Duration {
	if notAfter.IsZero() {
		return b.Max
	}
	return max(b.Min, min(b.Max, notAfter.Sub(now)/100))
}

// Wake is one reason to wake up.
type Wake struct {
	At     time.Time
	Name   string // certificate, or "" for the periodic check
	Reason string
	Exact  bool // a retry time, already spread: no jitter added
}

// Next returns the earliest of the wakes and the periodic check after now.
// Inexact times (renewal times, the periodic check) get a random delay in
// [0, jitter) so many nodes do not hit the CA in the same second; a time
// already past is returned as now.
func Next(now time.Time, wakes []Wake, check cron.Schedule, jitter time.Duration, rnd *rand.Rand) Wake {
	next := Wake{At: check.Next(now), Reason: "periodic check"}
	for _, w := range wakes {
		if w.At.Before(next.At) {
			next = w
		}
	}
	if !next.Exact && jitter > 0 {
		next.At = next.At.Add(time.Duration(rnd.Int64N(int64(jitter))))
	}
	if next.At.Before(now) {
		next.At = now
	}
	return next
}
