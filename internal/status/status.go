// Package status is the one model of a certificate's condition. Given what
// an inspection found (the certificate's config, its live files, every file
// renewer wrote for it, its state) and the time, Assess says whether it is
// healthy, applied, due and why, what to notify and what to do next.
// `status`, `plan`, metrics, notifications, the daemon's schedule and fleet
// reports all read Assess; none decides on its own. It is pure: no clock,
// no disk, no network.
package status

import (
	"fmt"
	"strings"
	"time"

	"github.com/renewer/renewer/internal/certinfo"
	"github.com/renewer/renewer/internal/config"
	"github.com/renewer/renewer/internal/notify"
	"github.com/renewer/renewer/internal/plan"
	"github.com/renewer/renewer/internal/store"
	"github.com/renewer/renewer/internal/watch"
)

// Inspection is what is known about one certificate: what the inspect
// stage read from disk.
type Inspection struct {
	Cert    config.Certificate
	Live    *store.Version  // nil when nothing is installed
	Facts   *certinfo.Facts // nil when nothing (readable) is installed
	Problem error           // why the live files could not be used, if they exist
	State   store.State
	ARI     *plan.ARI // the CA's window for the live certificate, when known
	CA      string    // ACME directory that issued the live certificate, when recorded
	Account string    // the account (acme.AccountKey) that ordered it, when recorded
	// Targets are the files of the install block that do not hold the live
	// version (checked only when both exist): someone else changed them, or
	// a crash came between the copies.
	Targets []store.TargetProblem
}

// Condition is everything Assess concludes about a certificate.
type Condition struct {
	// Health: critical when expired, less than a tenth of its lifetime
	// left, live files unusable, or revoked by renewer; warning when due,
	// missing, failing, not applied, a renewal storm held back, or its
	// dns-persist record's persist_until near or past; else ok.
	Health   plan.Health
	Decision plan.Decision // due (a new certificate is needed) and why
	// Applied: every deploy step (install copies, hooks, reloads,
	// verification) succeeded for the live serial and every install copy
	// still holds it. True when there are no deploy steps.
	Applied bool
	// DeployPending: the live certificate has deploy steps still to
	// (re)do without a new certificate.
	DeployPending bool
	// Ready is renewer_certificate_ready: live, unexpired, matching the
	// config (names, key), not revoked, and applied.
	Ready bool
	// Failing: the last attempt (a renewal or a deploy) failed and is retried.
	Failing bool
	Revoked bool // renewer revoked the live certificate
	// PersistWarning, when set, says that the certificate's dns-persist
	// record stops being accepted soon (its persist_until is within
	// config.PersistWarn) or already is not: a warning.
	PersistWarning string
	// ARIOverdueSince is when the CA's renewal window (ARI) for the live
	// certificate opened, while that certificate is due and not replaced
	// yet: renewer's moment in the window has come (or the window is over,
	// as when the CA pulls it into the past in a mass revocation). Zero
	// otherwise: no window known, not open yet, or the moment not reached.
	// renewer_certificate_ari_overdue_seconds is the time since.
	ARIOverdueSince time.Time
	// Problems are the notifications this condition calls for.
	Problems []notify.Event
}

// HasDeploySteps reports whether c has anything to do after an install:
// copies to an install target, hooks, reloads, or endpoints to verify.
func HasDeploySteps(c config.Certificate) bool {
	return c.Install != nil || len(c.Hooks) > 0 || len(c.Reloads) > 0 || len(c.Verify) > 0
}

// Assess is the one decision about a certificate's condition at now.
func Assess(in Inspection, now time.Time) Condition {
	c, f, st := in.Cert, in.Facts, in.State
	var k Condition
	k.Decision = plan.DecideARI(now, c, f, in.ARI)
	if in.Problem != nil && in.Live != nil {
		k.Decision = plan.Decision{Due: true, Reason: plan.Unreadable, At: now}
	}
	if f != nil && st.RevokedSerial != "" && st.RevokedSerial == f.Serial {
		k.Revoked = true
		k.Decision = plan.Decision{Due: true, Reason: plan.Revoked, At: now}
	}
	k.Applied = f != nil && (!HasDeploySteps(c) || (st.AppliedSerial == f.Serial && len(in.Targets) == 0))
	k.DeployPending = f != nil && !k.Applied
	k.Failing = st.Failures > 0 && st.FailedStep != store.StepDueAtOnce
	k.Ready = f != nil && in.Problem == nil && now.Before(f.NotAfter) && !k.Revoked && matchesConfig(k.Decision.Reason) && k.Applied
	if in.ARI != nil && f != nil && k.Decision.Due && !now.Before(in.ARI.Start) {
		k.ARIOverdueSince = in.ARI.Start
	}

	k.PersistWarning = persistWarning(c, now)
	switch {
	case in.Problem != nil && in.Live != nil, k.Revoked,
		f != nil && (!now.Before(f.NotAfter) || f.NotAfter.Sub(now) < f.Lifetime()/10):
		k.Health = plan.Critical
	case k.Decision.Due, k.Failing, k.DeployPending, st.FailedStep == store.StepDueAtOnce, k.PersistWarning != "":
		k.Health = plan.Warning
	default:
		k.Health = plan.OK
	}
	k.Problems = problems(in, k, now)
	return k
}

// matchesConfig: a decision reason that leaves the live certificate usable
// as configured (only time has passed).
func matchesConfig(r plan.Reason) bool {
	switch r {
	case plan.NotDue, plan.InWindow, plan.ARIWindow, plan.ARINow, plan.EmergencyMargin:
		return true
	}
	return false
}

// problems lists the notifications of a condition:
//   - renewal_failed while its last renewal attempt failed (and is retried);
//   - verify_failed while an endpoint does not serve the live certificate;
//   - hook_failed while another deploy step has not succeeded for the live
//     certificate, or an install copy no longer holds it;
//   - renewal_requested when the CA asks for a replacement now (ARI) or
//     renewer revoked the live certificate;
//   - expiring when it is within warn_before of expiry and still due;
//   - dns_persist_expiring when its dns-persist record's persist_until is
//     within config.PersistWarn, or has passed.
func problems(in Inspection, k Condition, now time.Time) []notify.Event {
	c, f, st := in.Cert, in.Facts, in.State
	severity := notify.Warning
	if k.Health == plan.Critical {
		severity = notify.Critical
	}
	var out []notify.Event
	add := func(kind notify.Kind, msg, errText string) {
		e := notify.Event{Kind: kind, Severity: severity, Message: msg, Error: errText}
		if f != nil {
			e.NotAfter = f.NotAfter
		}
		out = append(out, e)
	}
	expiry := "no certificate is installed"
	if f != nil {
		expiry = "the live certificate " + Expires(f.NotAfter, now)
	}
	switch {
	case st.LastResult == store.ResultFailed && st.Failures > 0:
		add(notify.RenewalFailed, fmt.Sprintf("Renewal of %s failed (%d %s in a row); %s.",
			c.Name, st.Failures, plural(st.Failures, "attempt"), expiry), st.LastError)
	case f != nil && len(in.Targets) > 0:
		var names []string
		for _, t := range in.Targets {
			names = append(names, t.Error())
		}
		add(notify.HookFailed, fmt.Sprintf("%s serial %s is live, but %s no longer %s it; the deploy is redone.",
			c.Name, f.Serial, targetList(in.Targets), plural2(len(in.Targets), "holds", "hold")), strings.Join(names, "; "))
	case f != nil && !k.Applied && st.LastError != "" && st.FailedStep == store.StepVerify:
		add(notify.VerifyFailed, fmt.Sprintf("%s serial %s is installed, but an endpoint does not serve it; the deploy is retried.",
			c.Name, f.Serial), st.LastError)
	case f != nil && !k.Applied && st.LastError != "" && st.FailedStep != store.StepDueAtOnce:
		add(notify.HookFailed, fmt.Sprintf("%s serial %s is installed, but its install copy, hooks or reloads failed; they are retried.",
			c.Name, f.Serial), st.LastError)
	}
	switch {
	case k.Revoked:
		add(notify.RenewalRequested, fmt.Sprintf("%s serial %s was revoked; renewer is replacing it.", c.Name, f.Serial), "")
	case f != nil && k.Decision.Reason == plan.ARINow:
		msg := fmt.Sprintf("The CA asks for %s (serial %s) to be replaced now (its renewal window is over: a revocation or a mass reissue); renewer is renewing it.",
			c.Name, f.Serial)
		if in.ARI != nil && in.ARI.Explanation != "" {
			msg += " The CA explains: " + in.ARI.Explanation
		}
		add(notify.RenewalRequested, msg, "")
	}
	if k.PersistWarning != "" {
		add(notify.PersistExpiring, k.PersistWarning, "")
	}
	if f != nil && k.Decision.Due && !now.Before(c.WarnAt(f.NotBefore, f.NotAfter)) {
		add(notify.Expiring, fmt.Sprintf("Certificate %s %s and is not renewed yet (%s).", c.Name, Expires(f.NotAfter, now),
			k.Decision.Reason), "")
	}
	return out
}

func targetList(ts []store.TargetProblem) string {
	var paths []string
	for _, t := range ts {
		paths = append(paths, t.Path)
	}
	return strings.Join(paths, ", ")
}

// Expires says when notAfter is, from now: "expires in 12.5 days
// (2026-12-16)", "expires in 19h 12m (2026-12-05 07:12 UTC)" or "EXPIRED
// 2.0 days ago (...)".
func Expires(notAfter, now time.Time) string {
	day := notAfter.UTC().Format(time.DateOnly)
	if d := notAfter.Sub(now); d < watch.ShortSpan && d > -watch.ShortSpan {
		day = notAfter.UTC().Format("2006-01-02 15:04 MST")
	}
	if d := notAfter.Sub(now); d > 0 {
		return fmt.Sprintf("expires in %s (%s)", watch.Days(d), day)
	}
	return fmt.Sprintf("EXPIRED %s ago (%s)", watch.Days(now.Sub(notAfter)), day)
}

func plural(n int, word string) string {
	if n == 1 {
		return word
	}
	return word + "s"
}

func plural2(n int, one, many string) string {
	if n == 1 {
		return one
	}
	return many
}

// View is an inspection with its assessment: what `status`, the report and
// the schedule read.
type View struct {
	Inspection
	Condition
}

// Of assesses in at now.
func Of(in Inspection, now time.Time) View { return View{in, Assess(in, now)} }

// persistWarning says when c's dns-persist record stops being accepted
// within config.PersistWarn of now (or already is not), else "".
func persistWarning(c config.Certificate, now time.Time) string {
	p := c.Challenge.Persist
	if p == nil || p.PersistUntil.IsZero() || p.PersistUntil.Sub(now) > config.PersistWarn {
		return ""
	}
	when := p.PersistUntil.UTC().Format("2006-01-02 15:04 MST")
	if !now.Before(p.PersistUntil) {
		return fmt.Sprintf("The dns-persist record of %s expired at %s (persist_until): the CA no longer accepts it, so renewals fail. "+
			"Publish a record with a later persistUntil (renewer dns-persist record %s) and update persist_until.", c.Name, when, c.Name)
	}
	return fmt.Sprintf("The dns-persist record of %s is accepted until %s (persist_until), in %s. "+
		"Publish a record with a later persistUntil (renewer dns-persist record %s) and update persist_until.", c.Name, when, watch.Days(p.PersistUntil.Sub(now)), c.Name)
}
