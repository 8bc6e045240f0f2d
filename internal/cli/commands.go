package cli

import (
	"context"
	"encoding/json"
	"fmt"
	"io"
	"regexp"
	"strings"
	"text/tabwriter"
	"time"
	"unicode/utf8"

	"github.com/renewer/renewer/internal/agent"
	"github.com/renewer/renewer/internal/certinfo"
	"github.com/renewer/renewer/internal/config"
	"github.com/renewer/renewer/internal/plan"
	"github.com/renewer/renewer/internal/status"
	"github.com/renewer/renewer/internal/watch"
)

func cmdRenew(ctx context.Context, e *env, g *globals, args []string) int {
	fs := flags(e, g, "renew", "[--force] [--dry-run] [NAME...]")
	force := fs.Bool("force", false, "renew even if not due (all certificates, or the named ones)")
	dryRun := fs.Bool("dry-run", false, "obtain from the CA's staging twin, install nothing, run no hooks")
	if code, ok := parse(fs, args); !ok {
		return code
	}
	a, _, code := newAgent(e, g)
	if a == nil {
		return code
	}
	defer a.Close()
	log, _ := g.logger(e.stderr)
	results, err := runPass(ctx, log, a, agent.PassOptions{Force: *force, DryRun: *dryRun, Names: fs.Args()})
	if err != nil {
		fmt.Fprintf(e.stderr, "renewer renew: %v\n", err)
		return ExitUsage
	}
	now := time.Now()
	tw := tabwriter.NewWriter(e.stdout, 0, 4, 2, ' ', 0)
	failed := 0
	for _, r := range results {
		fmt.Fprintf(tw, "%s\t%s\t%s\n", r.Name, r.Action, resultDetail(r, now))
		if !r.OK() {
			failed++
		}
	}
	tw.Flush()
	if failed > 0 {
		fmt.Fprintf(e.stderr, "renewer renew: %d of %d %s failed\n", failed, len(results), plural(len(results), "certificate"))
		return ExitFailure
	}
	return ExitOK
}

func resultDetail(r status.Result, now time.Time) string {
	s := resultText(r, now)
	if r.StoreErr != nil {
		s += "; STORAGE ERROR: " + oneLine(r.StoreErr.Error())
	}
	return s
}

func resultText(r status.Result, now time.Time) string {
	switch {
	case r.Err != nil:
		return oneLine(r.Err.Error())
	case r.Action == status.Skipped:
		return fmt.Sprintf("renews %s", when(r.Decision.At, now))
	}
	s := fmt.Sprintf("serial %s, expires %s (%s)", r.Serial, expiry(r.NotAfter, now), r.Decision.Reason)
	if len(r.HookErrs) > 0 {
		s += "; NOT APPLIED"
	}
	for _, h := range r.HookErrs {
		s += ": " + oneLine(h.Error())
	}
	return s
}

// expiry is a certificate's expiry date or, under two days away (short
// lifetimes), its time and how far that is.
func expiry(notAfter, now time.Time) string {
	if d := notAfter.Sub(now); d < watch.ShortSpan && d > -watch.ShortSpan {
		rel := "in " + watch.HoursMinutes(d)
		if d < 0 {
			rel = watch.HoursMinutes(-d) + " ago"
		}
		return notAfter.UTC().Format("2006-01-02 15:04 MST") + ", " + rel
	}
	return notAfter.UTC().Format(time.DateOnly)
}

// daysLeft is the DAYS LEFT column: days with one decimal, hours and
// minutes under two days, "expired" after.
func daysLeft(days float64) string {
	d := time.Duration(days * 24 * float64(time.Hour))
	switch {
	case d <= 0:
		return "expired"
	case d < watch.ShortSpan:
		return watch.HoursMinutes(d)
	}
	return fmt.Sprintf("%.1f", days)
}

// dirsOff matches the directories of absolute paths, which the status
// table leaves out (status --json keeps them).
var dirsOff = regexp.MustCompile(`(/[^/\s:]+)+/`)

// lastResultWidth bounds the LAST RESULT column of the status table; the
// whole text is in status --json.
const lastResultWidth = 100

// ellipsis cuts s to at most n characters, ending it with "…" when cut.
func ellipsis(s string, n int) string {
	if utf8.RuneCountInString(s) <= n {
		return s
	}
	return string([]rune(s)[:n-1]) + "…"
}

func oneLine(s string) string { return strings.Join(strings.Fields(s), " ") }

// when shows a time with how far it is from now.
func when(t, now time.Time) string {
	if t.IsZero() {
		return "-"
	}
	d := t.Sub(now)
	rel := "in " + human(d)
	if d < 0 {
		rel = human(-d) + " ago"
	}
	return fmt.Sprintf("%s (%s)", t.UTC().Format("2006-01-02 15:04 MST"), rel)
}

func human(d time.Duration) string {
	switch {
	case d >= watch.ShortSpan:
		return fmt.Sprintf("%dd", int(d.Hours()/24))
	}
	return watch.HoursMinutes(d)
}

// CertStatus is one certificate in `status --json`. The field names are a
// stable interface: add fields, never rename or remove them.
type CertStatus struct {
	Name        string    `json:"name"`
	Domains     []string  `json:"domains"`
	Health      string    `json:"health"` // ok, warning, critical
	Serial      string    `json:"serial,omitempty"`
	Issuer      string    `json:"issuer,omitempty"`
	NotBefore   time.Time `json:"not_before,omitzero"`
	NotAfter    time.Time `json:"not_after,omitzero"`
	DaysLeft    *float64  `json:"days_left,omitempty"`
	Due         bool      `json:"due"`
	Reason      string    `json:"reason"`
	NextRenewal time.Time `json:"next_renewal,omitzero"`
	LastResult  string    `json:"last_result,omitempty"`
	LastError   string    `json:"last_error,omitempty"`
	LastAttempt time.Time `json:"last_attempt,omitzero"`
	LastSuccess time.Time `json:"last_success,omitzero"`
	Failures    int       `json:"failures"`
	Applied     bool      `json:"applied"` // install copies, hooks and verification succeeded for the live serial
	Problem     string    `json:"problem,omitempty"`
	CA          string    `json:"ca,omitempty"` // ACME directory that issued the live certificate
	// The CA's renewal window (ARI) for the live certificate, when known.
	ARIWindowStart time.Time `json:"ari_window_start,omitzero"`
	ARIWindowEnd   time.Time `json:"ari_window_end,omitzero"`
	ARIChosen      time.Time `json:"ari_chosen,omitzero"`
	ARIExplanation string    `json:"ari_explanation,omitempty"`
	// DeployPending: the live certificate has deploy steps (install, hooks,
	// verify) that have not all succeeded for it yet; renew retries them.
	DeployPending bool `json:"deploy_pending"`
	// Verified: every verify endpoint served the live serial (absent when
	// the certificate has no verify block).
	Verified *bool `json:"verified,omitempty"`
	// InstalledSerial is the serial renewer last installed (the state's
	// record; Serial is what is live on disk).
	InstalledSerial string `json:"installed_serial,omitempty"`
	// Note explains a rule that did not apply as configured.
	Note string `json:"note,omitempty"`
	// dns-persist challenge: the record's persist_until, and the warning
	// while it is within 30 days or past.
	PersistUntil   time.Time `json:"persist_until,omitzero"`
	PersistWarning string    `json:"persist_warning,omitempty"`
	// Targets are install copies that do not hold the live certificate.
	Targets []TargetStatus `json:"targets,omitempty"`
	// Fleet mode (fleetstatus.go): the serial the fleet published (its
	// version), when and by which node, whether every live node serves it
	// (converged) and since when not, and what each node serves;
	// FleetError when etcd could not be read.
	FleetSerial           string      `json:"fleet_serial,omitempty"`
	FleetPublished        time.Time   `json:"fleet_published,omitzero"`
	FleetPublishedBy      string      `json:"fleet_published_by,omitempty"`
	FleetConverged        *bool       `json:"fleet_converged,omitempty"`
	FleetUnconvergedSince time.Time   `json:"fleet_unconverged_since,omitzero"`
	Fleet                 []FleetNode `json:"fleet,omitempty"`
	FleetProblems         []string    `json:"fleet_problems,omitempty"` // kind: message (fleet_not_converged, fleet_node_gone)
	FleetError            string      `json:"fleet_error,omitempty"`
}

// TargetStatus is an install copy that does not hold the live certificate.
type TargetStatus struct {
	Path    string `json:"path"`
	Problem string `json:"problem"`
}

// StatusReport is the whole of `status --json`.
type StatusReport struct {
	Health       string       `json:"health"`
	Checked      time.Time    `json:"checked"`
	Certificates []CertStatus `json:"certificates"`

	// Watches are the watched endpoints (observe.go).
	Watches []WatchStatus `json:"watches"`
}

func statusOf(in status.View, now time.Time) CertStatus {
	cs := CertStatus{
		Name: in.Cert.Name, Domains: in.Cert.Domains, Health: in.Health.String(),
		Due: in.Decision.Due, Reason: string(in.Decision.Reason), NextRenewal: in.Decision.At, Note: in.Decision.Note,
		LastResult: in.State.LastResult, LastError: in.State.LastError, LastAttempt: in.State.LastAttempt,
		LastSuccess: in.State.LastSuccess, Failures: in.State.Failures, CA: in.CA,
		Applied: in.Applied, DeployPending: in.DeployPending, InstalledSerial: in.State.InstalledSerial,
	}
	if f := in.Facts; f != nil {
		days := f.NotAfter.Sub(now).Hours() / 24
		cs.Serial, cs.Issuer, cs.NotBefore, cs.NotAfter, cs.DaysLeft = f.Serial, f.Issuer, f.NotBefore, f.NotAfter, &days
		if len(in.Cert.Verify) > 0 { // verification is the last deploy step
			verified := in.Applied
			cs.Verified = &verified
		}
	}
	if in.Problem != nil {
		cs.Problem = in.Problem.Error()
	}
	for _, t := range in.Targets {
		cs.Targets = append(cs.Targets, TargetStatus{Path: t.Path, Problem: t.Err.Error()})
	}
	if w := in.ARI; w != nil {
		cs.ARIWindowStart, cs.ARIWindowEnd, cs.ARIChosen, cs.ARIExplanation = w.Start, w.End, w.Chosen, w.Explanation
	}
	if p := in.Cert.Challenge.Persist; p != nil {
		cs.PersistUntil, cs.PersistWarning = p.PersistUntil, in.PersistWarning
	}
	return cs
}

func cmdStatus(ctx context.Context, e *env, g *globals, args []string) int {
	fs := flags(e, g, "status", "[--json] [NAME...]")
	asJSON := fs.Bool("json", false, "print JSON (a stable schema: renewer help commands)")
	if code, ok := parse(fs, args); !ok {
		return code
	}
	a, cfg, code := newAgent(e, g)
	if a == nil {
		return code
	}
	defer a.Close()
	certNames, watches := splitNames(cfg, fs.Args())
	var certs []config.Certificate
	if len(fs.Args()) == 0 || len(certNames) > 0 {
		var err error
		if certs, err = a.Select(certNames); err != nil {
			fmt.Fprintf(e.stderr, "renewer status: %v\n", err)
			return ExitUsage
		}
	}
	now := time.Now()
	rep := StatusReport{Checked: now.UTC(), Certificates: []CertStatus{}, Watches: []WatchStatus{}}
	worst := plan.OK
	var fleetDown error
	for _, c := range certs {
		in := a.Inspect(c)
		cs := statusOf(in, now)
		health := in.Health
		if a.Fleet() != nil {
			health = max(health, fleetStatus(ctx, a, &cs, &fleetDown))
			cs.Health = health.String()
		}
		rep.Certificates = append(rep.Certificates, cs)
		worst = max(worst, health)
	}
	for _, r := range checkWatches(ctx, watches) {
		rep.Watches = append(rep.Watches, watchStatusOf(r))
		worst = max(worst, r.Health)
	}
	rep.Health = worst.String()
	if *asJSON {
		enc := json.NewEncoder(e.stdout)
		enc.SetIndent("", "  ")
		_ = enc.Encode(rep)
	} else {
		if len(rep.Certificates) > 0 || len(rep.Watches) == 0 {
			printStatus(e.stdout, rep, now)
		}
		if sh := a.Fleet(); sh != nil && len(rep.Certificates) > 0 {
			printFleet(e.stdout, sh.Node(), rep.Certificates, now)
		}
		if len(rep.Watches) > 0 {
			if len(rep.Certificates) > 0 {
				fmt.Fprintln(e.stdout)
			}
			printWatches(e.stdout, rep.Watches)
		}
	}
	return int(worst)
}

func printStatus(w io.Writer, rep StatusReport, now time.Time) {
	tw := tabwriter.NewWriter(w, 0, 4, 2, ' ', 0)
	fmt.Fprintln(tw, "NAME\tDOMAINS\tNOT AFTER\tDAYS LEFT\tNEXT RENEWAL\tCA\tLAST RESULT\tHEALTH")
	for _, c := range rep.Certificates {
		notAfter, days := "-", "-"
		if c.DaysLeft != nil {
			notAfter, days = c.NotAfter.UTC().Format("2006-01-02 15:04 MST"), daysLeft(*c.DaysLeft)
		}
		next := "now (" + c.Reason + ")"
		if c.Reason == string(plan.Unreadable) && c.Problem != "" {
			next = ellipsis("now ("+c.Reason+": "+dirsOff.ReplaceAllString(oneLine(c.Problem), ""), lastResultWidth) + ")"
		}
		if !c.Due {
			next = c.NextRenewal.UTC().Format("2006-01-02 15:04 MST")
		}
		last := or(c.LastResult, "-")
		if c.DeployPending && !strings.HasPrefix(c.LastError, "not applied") {
			last += ", not applied"
		}
		if c.LastError != "" {
			last += ": " + oneLine(c.LastError)
		}
		last = ellipsis(last, lastResultWidth)
		fmt.Fprintf(tw, "%s\t%s\t%s\t%s\t%s\t%s\t%s\t%s\n", c.Name, strings.Join(c.Domains, ","), notAfter, days, next, caName(c.CA), last, c.Health)
	}
	tw.Flush()
	for _, c := range rep.Certificates {
		if c.Problem != "" {
			fmt.Fprintf(w, "%s: live certificate unusable: %s\n", c.Name, oneLine(c.Problem))
		}
		for _, t := range c.Targets {
			fmt.Fprintf(w, "%s: install copy %s: %s\n", c.Name, t.Path, t.Problem)
		}
		if c.Note != "" {
			fmt.Fprintf(w, "%s: note: %s\n", c.Name, c.Note)
		}
		if c.PersistWarning != "" {
			fmt.Fprintf(w, "%s: dns-persist: %s\n", c.Name, c.PersistWarning)
		}
	}
}

func cmdPlan(_ context.Context, e *env, g *globals, args []string) int {
	fs := flags(e, g, "plan", "[NAME...]")
	if code, ok := parse(fs, args); !ok {
		return code
	}
	a, certs, code := openSelected(e, g, "plan", fs.Args())
	if a == nil {
		return code
	}
	defer a.Close()
	now := time.Now()
	tw := tabwriter.NewWriter(e.stdout, 0, 4, 2, ' ', 0)
	for _, c := range certs {
		in := a.Inspect(c)
		d := in.Decision
		verdict := "not due"
		switch {
		case d.Due:
			verdict = "DUE NOW"
		case in.DeployPending:
			verdict = "DEPLOY PENDING"
		}
		reason := string(d.Reason)
		if reason == verdict { // "not due" once
			reason = ""
		}
		fmt.Fprintf(tw, "%s\t%s\t%s\t%s\n", c.Name, verdict, reason, "renewal at "+when(d.At, now))
		if d.Reason == plan.Unreadable && in.Problem != nil {
			fmt.Fprintf(tw, "\t\twhy\t%s\n", oneLine(in.Problem.Error()))
		}
		if d.Note != "" {
			fmt.Fprintf(tw, "\t\tnote\t%s\n", d.Note)
		}
		for _, t := range in.Targets {
			fmt.Fprintf(tw, "\t\tinstall copy\t%s\n", t.Error())
		}
		if w := in.ARI; w != nil {
			fmt.Fprintf(tw, "\t\tCA window (ARI)\t%s .. %s, moment chosen %s\n",
				w.Start.UTC().Format("2006-01-02 15:04"), w.End.UTC().Format("2006-01-02 15:04 MST"), w.Chosen.UTC().Format("2006-01-02 15:04:05 MST"))
			if w.Explanation != "" {
				fmt.Fprintf(tw, "\t\texplanation\t%s\n", w.Explanation)
			}
		} else if c.ARI && in.State.ARI != nil && in.State.ARI.Error != "" {
			fmt.Fprintf(tw, "\t\tCA window (ARI)\tunavailable: %s\n", oneLine(in.State.ARI.Error))
		}
		// The local pre-flight checks (renewer check runs the network ones too).
		for _, f := range a.Preflight(c) {
			fmt.Fprintf(tw, "\t\tpre-flight %s\t%s: %s; fix: %s\n", f.Level, f.Check, oneLine(f.Problem), f.Fix)
		}
	}
	tw.Flush()
	return ExitOK
}

func cmdInspect(_ context.Context, e *env, g *globals, args []string) int {
	fs := flags(e, g, "inspect", "[NAME...] | --cert FILE [--key FILE]")
	certFile := fs.String("cert", "", "a PEM certificate (or fullchain) file to inspect instead of installed certificates")
	keyFile := fs.String("key", "", "the private key PEM to check against --cert")
	if code, ok := parse(fs, args); !ok {
		return code
	}
	now := time.Now()
	if *certFile != "" {
		f, err := certinfo.Load(*certFile, *keyFile)
		if err != nil {
			fmt.Fprintf(e.stderr, "renewer inspect: %v\n", err)
			return ExitFailure
		}
		printFacts(e.stdout, *certFile, f, now)
		return ExitOK
	}
	a, certs, code := openSelected(e, g, "inspect", fs.Args())
	if a == nil {
		return code
	}
	defer a.Close()
	for i, c := range certs {
		if i > 0 {
			fmt.Fprintln(e.stdout)
		}
		in := a.Inspect(c)
		switch {
		case in.Facts != nil:
			printFacts(e.stdout, c.Name+" ("+in.Live.Dir+")", in.Facts, now)
		case in.Problem != nil:
			fmt.Fprintf(e.stdout, "%s: unreadable: %v\n", c.Name, in.Problem)
			code = ExitFailure
		default:
			fmt.Fprintf(e.stdout, "%s: not installed yet\n", c.Name)
		}
	}
	return code
}

func printFacts(w io.Writer, title string, f *certinfo.Facts, now time.Time) {
	key := "no key given"
	if f.HasKey {
		key = "does NOT match the certificate"
		if f.KeyMatches {
			key = "matches the certificate"
		}
	}
	chain := fmt.Sprintf("%d %s", len(f.Chain), plural(len(f.Chain), "certificate"))
	if err := f.VerifyChain(); err != nil {
		chain += ": " + err.Error()
	} else {
		chain += ", verifies"
	}
	tw := tabwriter.NewWriter(w, 0, 4, 1, ' ', 0)
	fmt.Fprintf(tw, "%s\n", title)
	fmt.Fprintf(tw, "  names:\t%s\n", strings.Join(f.Names, ", "))
	fmt.Fprintf(tw, "  not before:\t%s\n", f.NotBefore.UTC().Format(time.RFC3339))
	fmt.Fprintf(tw, "  not after:\t%s (%s)\n", f.NotAfter.UTC().Format(time.RFC3339), left(f.NotAfter, now))
	fmt.Fprintf(tw, "  serial:\t%s\n", f.Serial)
	fmt.Fprintf(tw, "  issuer:\t%s\n", f.Issuer)
	fmt.Fprintf(tw, "  key type:\t%s\n", f.KeyType)
	fmt.Fprintf(tw, "  key:\t%s\n", key)
	fmt.Fprintf(tw, "  chain:\t%s\n", chain)
	tw.Flush()
}

func left(t, now time.Time) string {
	if d := t.Sub(now); d > 0 {
		return human(d) + " left"
	}
	return "EXPIRED " + human(now.Sub(t)) + " ago"
}
