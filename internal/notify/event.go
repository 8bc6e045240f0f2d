// Package notify sends renewer's notifications: a generic JSON webhook, a
// Slack-compatible webhook and e-mail over SMTP. The Dispatcher
// deduplicates them (the same problem at most every `repeat`, more often as
// expiry nears), keeps that memory on disk across restarts, and delivers in
// the background with retries, so a notifier that fails never blocks or
// fails a renewal. Secrets (webhook URLs, header values, passwords) never
// appear in what it logs.
package notify

import (
	"fmt"
	"strings"
	"time"
)

// Kind is what happened. The names are config.NotifyKinds.
type Kind string

// Event kinds.
const (
	RenewalFailed    Kind = "renewal_failed"       // a renewal failed; it is retried
	HookFailed       Kind = "hook_failed"          // installed, but a hook or install copy failed; retried
	VerifyFailed     Kind = "verify_failed"        // the served certificate is not the installed one
	WatchFailed      Kind = "watch_failed"         // a watched endpoint cannot be checked, or does not verify
	Expiring         Kind = "expiring"             // within warn_before of expiry and still not renewed
	RenewalRequested Kind = "renewal_requested"    // the CA asks for the certificate to be replaced now (ARI)
	PersistExpiring  Kind = "dns_persist_expiring" // the dns-persist record's persistUntil passes within 30 days, or has passed
	// Fleet mode:
	FleetNotConverged Kind = "fleet_not_converged" // a node does not serve the fleet's version (an error, or past the grace)
	FleetNodeGone     Kind = "fleet_node_gone"     // a node has not reported for node_gone_after
	Recovered         Kind = "recovered"           // a problem that was notified is over
	AccountRollover   Kind = "account_rollover"    // an ACME account key was rolled over, or the attempt failed
	Renewed           Kind = "renewed"             // a new certificate is live
)

// Severities, in increasing order.
const (
	Info     = "info"
	Warning  = "warning"
	Critical = "critical"
)

func severityRank(s string) int {
	switch s {
	case Warning:
		return 1
	case Critical:
		return 2
	}
	return 0
}

// Subjects of events.
const (
	Certificate = "certificate" // a certificate renewer manages
	Watch       = "watch"       // an endpoint renewer watches
	Fleet       = "fleet"       // a certificate across the nodes of a fleet
	Account     = "account"     // an ACME account (Name: its CA)
)

// Event is one notification. Its JSON form is what the generic webhook
// receives; the field names are a stable interface (added to, never renamed).
type Event struct {
	Kind     Kind      `json:"event"`
	Severity string    `json:"severity"` // info, warning or critical
	Subject  string    `json:"subject"`  // "certificate" or "watch"
	Name     string    `json:"name"`     // the certificate or watch block's name
	Endpoint string    `json:"endpoint,omitempty"`
	Domains  []string  `json:"domains,omitempty"`
	Serial   string    `json:"serial,omitempty"`
	NotAfter time.Time `json:"not_after,omitzero"`
	DaysLeft *float64  `json:"days_left,omitempty"`
	Message  string    `json:"message"`         // one line for people
	Error    string    `json:"error,omitempty"` // the error behind a failure
	Problem  Kind      `json:"problem,omitempty"`
	Since    time.Time `json:"since,omitzero"` // when the problem was first seen
	Time     time.Time `json:"time"`
	Host     string    `json:"host"` // the machine renewer runs on
}

// Title is a short headline: "www: renewal failed".
func (e Event) Title() string {
	what := strings.ReplaceAll(string(e.Kind), "_", " ")
	if e.Kind == Recovered && e.Problem != "" {
		what = "recovered from " + strings.ReplaceAll(string(e.Problem), "_", " ")
	}
	s := fmt.Sprintf("%s: %s", e.Name, what)
	switch e.Subject {
	case Watch:
		s = fmt.Sprintf("watch %s (%s): %s", e.Name, e.Endpoint, what)
	case Account:
		s = fmt.Sprintf("ACME account at %s: %s", e.Name, what)
	}
	if e.Severity == Critical {
		s = "CRITICAL " + s
	}
	return s
}

// Text is the event for people, several lines: what the e-mail body and the
// Slack message say.
func (e Event) Text() string {
	var b strings.Builder
	fmt.Fprintf(&b, "%s\n", e.Message)
	if e.Error != "" {
		fmt.Fprintf(&b, "\nerror: %s\n", e.Error)
	}
	b.WriteString("\n")
	line := func(k, v string) {
		if v != "" {
			fmt.Fprintf(&b, "%-10s %s\n", k+":", v)
		}
	}
	line(e.Subject, e.Name)
	line("endpoint", e.Endpoint)
	line("domains", strings.Join(e.Domains, ", "))
	line("serial", e.Serial)
	if !e.NotAfter.IsZero() {
		left := ""
		if e.DaysLeft != nil {
			left = fmt.Sprintf(" (%.1f days left)", *e.DaysLeft)
		}
		line("expires", e.NotAfter.UTC().Format(time.RFC3339)+left)
	}
	if !e.Since.IsZero() {
		line("since", e.Since.UTC().Format(time.RFC3339))
	}
	line("host", e.Host)
	line("time", e.Time.UTC().Format(time.RFC3339))
	return b.String()
}

// DaysLeft is the days from now to notAfter, for Event.DaysLeft; nil when
// notAfter is zero.
func DaysLeft(notAfter, now time.Time) *float64 {
	if notAfter.IsZero() {
		return nil
	}
	d := notAfter.Sub(now).Hours() / 24
	return &d
}

// Interval is how long after the last notification of a problem the same
// problem is sent again: repeat, but at most a quarter of the time left
// before notAfter (not less than an hour), so reminders come more often as
// expiry nears. A zero notAfter means no expiry is known.
func Interval(repeat time.Duration, notAfter, now time.Time) time.Duration {
	if notAfter.IsZero() {
		return repeat
	}
	return min(repeat, max(notAfter.Sub(now)/4, time.Hour))
}
