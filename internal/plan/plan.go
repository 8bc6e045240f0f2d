// Package plan decides whether a certificate is due for renewal and how
// healthy it is. It is pure: the current time comes in as an argument and
// nothing here reads the clock, the disk or the network.
package plan

import (
	"fmt"
	"time"

	"github.com/renewer/renewer/internal/certinfo"
	"github.com/renewer/renewer/internal/config"
)

// Reason says why a certificate is (or is not) due.
type Reason string

// The reasons Decide returns, in the order it checks them. Forced is never
// returned by Decide; callers use it for a renewal the user asked for.
const (
	Missing        Reason = "no certificate installed"
	Unreadable     Reason = "installed certificate is unreadable" // live files there but not usable (set by the status model, which knows the files)
	NamesChanged   Reason = "names differ from the config"
	KeyMismatch    Reason = "key does not match the certificate"
	KeyTypeChanged Reason = "key type differs from the config"
	Expired        Reason = "certificate has expired"
	InWindow       Reason = "inside the renewal window"
	Forced         Reason = "forced"
	Revoked        Reason = "revoked" // renewer revoked the live certificate (set by the status model, which knows the state)
	NotDue         Reason = "not due"
)

// Decision is the outcome of Decide.
type Decision struct {
	Due    bool
	Reason Reason
	// At is when renewal is or was due: the renewal time from RenewAt for
	// NotDue, InWindow and Expired; now for Missing, NamesChanged and the
	// key reasons.
	At time.Time
	// Note explains a rule that did not apply as configured (a
	// renew_before not shorter than the lifetime); empty otherwise.
	Note string
}

// Decide says whether c needs a new certificate at now, given the installed
// certificate's facts (nil when nothing is installed). Checks run in this
// order: missing, names, key match, key type, expired, renewal window.
//
// The key-match check applies only when have.HasKey: facts loaded without a
// key cannot show a mismatch. An empty c.KeyType skips the key-type check.
func Decide(now time.Time, c config.Certificate, have *certinfo.Facts) Decision {
	due := func(r Reason, at time.Time) Decision { return Decision{Due: true, Reason: r, At: at} }
	switch {
	case have == nil:
		return due(Missing, now)
	case !have.SameNames(c.Domains):
		return due(NamesChanged, now)
	case have.HasKey && !have.KeyMatches:
		return due(KeyMismatch, now)
	case c.KeyType != "" && have.KeyType != c.KeyType:
		return due(KeyTypeChanged, now)
	}
	at := RenewAt(have, c.RenewBefore)
	note := FallbackNote(have, c.RenewBefore)
	switch {
	case now.After(have.NotAfter):
		return Decision{Due: true, Reason: Expired, At: at, Note: note}
	case !now.Before(at):
		return Decision{Due: true, Reason: InWindow, At: at, Note: note}
	}
	return Decision{Reason: NotDue, At: at, Note: note}
}

// RenewAt is when a certificate becomes due under rule rb:
//   - a duration rule: NotAfter - Duration;
//   - a fraction rule: NotAfter - Fraction × lifetime;
//   - the default rule: NotAfter - lifetime/3, or lifetime/2 when the
//     lifetime is 10 days or less.
//
// A duration not shorter than the lifetime (renew_before = "30d" with a CA
// that issues 24-hour certificates) would make every new certificate due at
// once, a renewal at every retry: the default rule applies instead
// (FallbackNote says so). The result is clamped to NotBefore..NotAfter.
func RenewAt(f *certinfo.Facts, rb config.RenewBefore) time.Time {
	life := f.Lifetime()
	var before time.Duration
	switch {
	case rb.Duration > 0 && rb.Duration < life:
		before = rb.Duration
	case rb.Fraction > 0:
		before = time.Duration(rb.Fraction * float64(life))
	case life <= 10*24*time.Hour:
		before = life / 2
	default:
		before = life / 3
	}
	at := f.NotAfter.Add(-before)
	if at.Before(f.NotBefore) {
		at = f.NotBefore
	}
	if at.After(f.NotAfter) {
		at = f.NotAfter
	}
	return at
}

// FallbackNote explains, when rb is a duration not shorter than f's
// lifetime, that the default rule applies instead; else it is empty.
func FallbackNote(f *certinfo.Facts, rb config.RenewBefore) string {
	life := f.Lifetime()
	if rb.Duration <= 0 || rb.Duration < life {
		return ""
	}
	rule := "1/3"
	if life <= 10*24*time.Hour {
		rule = "1/2"
	}
	return fmt.Sprintf("renew_before %s is not shorter than the certificate's lifetime (%s): it would make every new certificate due at once, so the default rule applies (renew with %s of the lifetime left); set renew_before to a fraction such as \"1/3\"",
		config.FormatDuration(rb.Duration), config.FormatDuration(life.Round(time.Minute)), rule)
}

// Health is a certificate's (or a watched endpoint's) state for
// monitoring; the values are the monitoring-plugin exit codes. A managed
// certificate's health is decided by status.Assess, a watch's by
// watch.Assess.
type Health int

// Health values.
const (
	OK       Health = 0
	Warning  Health = 1
	Critical Health = 2
)

// String returns "ok", "warning" or "critical".
func (h Health) String() string {
	switch h {
	case OK:
		return "ok"
	case Warning:
		return "warning"
	case Critical:
		return "critical"
	}
	return fmt.Sprintf("Health(%d)", int(h))
}
