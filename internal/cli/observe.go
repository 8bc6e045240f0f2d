package cli

// Watches in `status`, and the reporting (metrics, notifications) that
// `renew` does after its pass.

import (
	"context"
	"fmt"
	"io"
	"log/slog"
	"slices"
	"text/tabwriter"
	"time"

	"github.com/renewer/renewer/internal/agent"
	"github.com/renewer/renewer/internal/config"
	"github.com/renewer/renewer/internal/notify"
	"github.com/renewer/renewer/internal/report"
	"github.com/renewer/renewer/internal/status"
	"github.com/renewer/renewer/internal/watch"
)

// WatchStatus is one watched endpoint in `status --json`. The field names
// are a stable interface: add fields, never rename or remove them.
type WatchStatus struct {
	Name       string    `json:"name"`
	Endpoint   string    `json:"endpoint"`
	ServerName string    `json:"server_name,omitempty"`
	Health     string    `json:"health"`            // ok, warning, critical
	Problem    string    `json:"problem,omitempty"` // why health is not ok
	Error      string    `json:"error,omitempty"`   // the endpoint could not be checked
	Verified   bool      `json:"verified"`          // the chain verifies and covers server_name
	Serial     string    `json:"serial,omitempty"`
	Issuer     string    `json:"issuer,omitempty"`
	Names      []string  `json:"names,omitempty"` // the names the certificate covers
	NotBefore  time.Time `json:"not_before,omitzero"`
	NotAfter   time.Time `json:"not_after,omitzero"`
	DaysLeft   *float64  `json:"days_left,omitempty"`
	WarnDays   float64   `json:"warn_days"`     // warn_before, in days
	CritDays   float64   `json:"critical_days"` // critical_before, in days
	Checked    time.Time `json:"checked"`
}

func watchStatusOf(r watch.Result) WatchStatus {
	ws := WatchStatus{
		Name: r.Watch.Name, Endpoint: r.Watch.Endpoint, ServerName: r.Watch.ServerName,
		Health: r.Health.String(), Problem: r.Problem, Checked: r.Checked.UTC(),
		WarnDays: r.Watch.WarnBefore.Hours() / 24, CritDays: r.Watch.CriticalBefore.Hours() / 24,
	}
	if r.Err != nil {
		ws.Error = r.Err.Error()
	}
	if f := r.Facts; f != nil {
		days := f.NotAfter.Sub(r.Checked).Hours() / 24
		ws.Serial, ws.Issuer, ws.Names, ws.NotBefore, ws.NotAfter, ws.DaysLeft = f.Serial, f.Issuer, f.Names, f.NotBefore, f.NotAfter, &days
		ws.Verified = r.VerifyErr == nil
	}
	return ws
}

// splitNames sorts the names given to `status` into certificate names and
// watches. No names means every certificate and every watch.
func splitNames(cfg *config.Config, names []string) (certNames []string, watches []config.Watch) {
	if len(names) == 0 {
		return nil, cfg.Watches
	}
	for _, n := range names {
		i := slices.IndexFunc(cfg.Watches, func(w config.Watch) bool { return w.Name == n })
		switch {
		case i < 0:
			certNames = append(certNames, n)
		case !slices.ContainsFunc(watches, func(w config.Watch) bool { return w.Name == n }):
			watches = append(watches, cfg.Watches[i])
		}
	}
	return certNames, watches
}

func checkWatches(ctx context.Context, ws []config.Watch) []watch.Result {
	return (&watch.Checker{}).CheckAll(ctx, ws)
}

func printWatches(w io.Writer, ws []WatchStatus) {
	tw := tabwriter.NewWriter(w, 0, 4, 2, ' ', 0)
	fmt.Fprintln(tw, "WATCH\tENDPOINT\tSERVER NAME\tNOT AFTER\tDAYS LEFT\tHEALTH\tPROBLEM")
	for _, s := range ws {
		notAfter, days := "-", "-"
		if s.DaysLeft != nil {
			notAfter, days = s.NotAfter.UTC().Format("2006-01-02 15:04 MST"), daysLeft(*s.DaysLeft)
		}
		fmt.Fprintf(tw, "%s\t%s\t%s\t%s\t%s\t%s\t%s\n", s.Name, s.Endpoint, or(s.ServerName, "-"), notAfter, days, s.Health,
			or(oneLine(s.Problem), "-"))
	}
	tw.Flush()
}

// renewReportTimeout bounds how long `renew` waits, after its pass, for
// notifications to be delivered.
const renewReportTimeout = 45 * time.Second

// newReporter makes the reporter `renew` uses; a failure to make one is
// logged and never stops a renewal (nil is returned).
func newReporter(log *slog.Logger, a *agent.Agent) *report.Reporter {
	rep, err := report.New(a.Config(), report.Options{Log: log, Version: version(),
		Notify: notify.Options{Retry: []time.Duration{5 * time.Second}, WriteFile: a.Store().WriteFile}})
	if err != nil {
		log.Error("notifications are off for this run", "err", err)
		return nil
	}
	return rep
}

var _ agent.PassReporter = (*report.Reporter)(nil)

// runPass is the pass `renew` and `revoke` run: the agent's pass, reported
// (logs, metrics counters, notifications) unless it is a dry run, then a
// bounded wait for the notifications to be delivered. The daemon runs the
// same pass with its own long-lived reporter.
func runPass(ctx context.Context, log *slog.Logger, a *agent.Agent, o agent.PassOptions) ([]status.Result, error) {
	var rep *report.Reporter
	if !o.DryRun {
		if rep = newReporter(log, a); rep != nil {
			a.SetObserver(rep)
			defer func() {
				cctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), renewReportTimeout)
				defer cancel()
				if err := rep.Close(cctx); err != nil {
					log.Error("some notifications were not delivered", "err", err)
				}
			}()
		}
	}
	return a.RunOnce(ctx, o)
}

// reportNow reports what certs are now, without a pass (revoke --no-renew),
// and waits a bounded time for the notifications.
func reportNow(ctx context.Context, log *slog.Logger, a *agent.Agent, certs []config.Certificate) {
	rep := newReporter(log, a)
	if rep == nil {
		return
	}
	var views []status.View
	for _, c := range certs {
		views = append(views, a.Inspect(c))
	}
	rep.Report(ctx, views, false)
	cctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), renewReportTimeout)
	defer cancel()
	if err := rep.Close(cctx); err != nil {
		log.Error("some notifications were not delivered", "err", err)
	}
}
