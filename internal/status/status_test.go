package status_test

import (
	"errors"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/renewer/renewer/internal/certinfo"
	"github.com/renewer/renewer/internal/certinfo/certtest"
	"github.com/renewer/renewer/internal/config"
	"github.com/renewer/renewer/internal/plan"
	"github.com/renewer/renewer/internal/status"
	"github.com/renewer/renewer/internal/store"
)

const day = 24 * time.Hour

// The one model, one row per case: health, applied, deploy pending, due
// and why, ready, and the notifications.
func TestAssess(t *testing.T) {
	now := time.Date(2026, 12, 4, 12, 0, 0, 0, time.UTC)
	facts := func(t *testing.T, life, left time.Duration) *certinfo.Facts {
		full, key := certtest.Issue(t, certtest.Options{Names: []string{"www.example.com"}, NotBefore: now.Add(left - life), NotAfter: now.Add(left)})
		f, err := certinfo.Parse(full, key)
		if err != nil {
			t.Fatal(err)
		}
		return f
	}
	plain := config.Certificate{Name: "www", Domains: []string{"www.example.com"}, KeyType: "ec256"}
	hooked := plain
	hooked.Hooks = []config.Hook{{Name: "h"}}
	verifyOnly := plain
	verifyOnly.Verify = []config.Verify{{Endpoint: "127.0.0.1:443"}}
	installed := plain
	installed.Install = &config.Install{Dir: "/etc/ssl/renewer/www"}
	longBefore := plain
	longBefore.RenewBefore = config.RenewBefore{Duration: 30 * day}
	persistUntil := func(d time.Duration) config.Certificate {
		c := plain
		c.Challenge = config.Challenge{Type: config.ChallengeDNSPersist, Persist: &config.DNSPersist{PersistUntil: now.Add(d)}}
		return c
	}

	type want struct {
		health             plan.Health
		applied, pending   bool
		due                bool
		reason             plan.Reason
		ready              bool
		problems           []string
		note               string // a substring of Decision.Note
		problemErrContains string
		overdueSince       time.Time // Condition.ARIOverdueSince
	}
	for _, tc := range []struct {
		name string
		in   func(t *testing.T) status.Inspection
		want want
	}{
		{"fresh, no deploy steps", func(t *testing.T) status.Inspection {
			return status.Inspection{Cert: plain, Facts: facts(t, 90*day, 80*day)}
		}, want{health: plan.OK, applied: true, reason: plan.NotDue, ready: true}},
		{"nothing installed", func(t *testing.T) status.Inspection {
			return status.Inspection{Cert: plain}
		}, want{health: plan.Warning, due: true, reason: plan.Missing}},
		{"live files unreadable (garbage in the live chain.pem)", func(t *testing.T) status.Inspection {
			return status.Inspection{Cert: plain, Live: &store.Version{ID: "v1"}, Problem: errors.New("cert.pem and chain.pem do not make up fullchain.pem")}
		}, want{health: plan.Critical, due: true, reason: plan.Unreadable}},
		{"hooks applied", func(t *testing.T) status.Inspection {
			f := facts(t, 90*day, 80*day)
			return status.Inspection{Cert: hooked, Facts: f, State: store.State{AppliedSerial: f.Serial}}
		}, want{health: plan.OK, applied: true, reason: plan.NotDue, ready: true}},
		{"hooks failed for the live serial", func(t *testing.T) status.Inspection {
			f := facts(t, 90*day, 80*day)
			return status.Inspection{Cert: hooked, Facts: f, State: store.State{AppliedSerial: "other", LastResult: store.ResultNotApplied, LastError: "not applied: hook", Failures: 1, FailedStep: "hook"}}
		}, want{health: plan.Warning, pending: true, reason: plan.NotDue, problems: []string{"hook_failed:warning"}}},
		// Defect 1: a certificate whose only deploy step is verify.
		{"verify only, served certificate wrong", func(t *testing.T) status.Inspection {
			f := facts(t, 90*day, 80*day)
			return status.Inspection{Cert: verifyOnly, Facts: f, State: store.State{LastResult: store.ResultNotApplied, LastError: "not applied: verify 127.0.0.1:443: serial 1 served", Failures: 1, FailedStep: "verify"}}
		}, want{health: plan.Warning, pending: true, reason: plan.NotDue, problems: []string{"verify_failed:warning"}}},
		// Defect 2: an install copy that no longer holds the live certificate.
		{"install copy changed by someone else", func(t *testing.T) status.Inspection {
			f := facts(t, 90*day, 80*day)
			return status.Inspection{Cert: installed, Facts: f, State: store.State{AppliedSerial: f.Serial},
				Targets: []store.TargetProblem{{Path: "/etc/ssl/renewer/www/privkey.pem", Err: errors.New("holds another private key than the live certificate's")}}}
		}, want{health: plan.Warning, pending: true, reason: plan.NotDue, problems: []string{"hook_failed:warning"}, problemErrContains: "/etc/ssl/renewer/www/privkey.pem"}},
		// Defect 3: after a crash during a hook, a successful retry.
		{"deploy retried after a crash", func(t *testing.T) status.Inspection {
			f := facts(t, 90*day, 80*day)
			st := store.State{LastResult: store.ResultFailed, Failures: 2, LastError: "x", InstalledSerial: "old"}
			st.Installed(now, f.Serial, store.ResultRenewed)
			st.Deployed(now, f.Serial, true)
			if st.LastResult != store.ResultApplied || st.InstalledSerial != f.Serial || st.Failures != 0 {
				t.Errorf("state after the retry: %+v", st)
			}
			return status.Inspection{Cert: hooked, Facts: f, State: st}
		}, want{health: plan.OK, applied: true, reason: plan.NotDue, ready: true}},
		// Defect 4: renew_before at or above the lifetime.
		{"renew_before 30d, 24-hour certificate, fresh", func(t *testing.T) status.Inspection {
			return status.Inspection{Cert: longBefore, Facts: facts(t, day, 23*time.Hour)}
		}, want{health: plan.OK, applied: true, reason: plan.NotDue, ready: true, note: "renew_before 30d is not shorter than the certificate's lifetime (1d)"}},
		{"renew_before 30d, 24-hour certificate, half gone", func(t *testing.T) status.Inspection {
			return status.Inspection{Cert: longBefore, Facts: facts(t, day, 11*time.Hour)}
		}, want{health: plan.Warning, applied: true, due: true, reason: plan.InWindow, ready: true, note: "default rule applies"}},
		// An averted storm: a warning, not a renewal failure.
		{"due at once, averted", func(t *testing.T) status.Inspection {
			f := facts(t, 90*day, 80*day)
			st := store.State{}
			st.Installed(now, f.Serial, store.ResultRenewed)
			st.DueAtOnce("due again at once", 0, func(int) time.Time { return now.Add(time.Hour) })
			return status.Inspection{Cert: plain, Facts: f, State: st}
		}, want{health: plan.Warning, applied: true, reason: plan.NotDue, ready: true}},
		// Defect 5: revoked by renewer, no ARI.
		{"revoked with --no-renew", func(t *testing.T) status.Inspection {
			f := facts(t, 90*day, 80*day)
			st := store.State{}
			st.Revoked(now, f.Serial)
			return status.Inspection{Cert: plain, Facts: f, State: st}
		}, want{health: plan.Critical, applied: true, due: true, reason: plan.Revoked, problems: []string{"renewal_requested:critical"}}},
		{"within warn_before", func(t *testing.T) status.Inspection {
			return status.Inspection{Cert: plain, Facts: facts(t, 90*day, 17*day)}
		}, want{health: plan.Warning, applied: true, due: true, reason: plan.InWindow, ready: true, problems: []string{"expiring:warning"}}},
		{"last tenth", func(t *testing.T) status.Inspection {
			return status.Inspection{Cert: plain, Facts: facts(t, 90*day, 8*day)}
		}, want{health: plan.Critical, applied: true, due: true, reason: plan.InWindow, ready: true, problems: []string{"expiring:critical"}}},
		{"expired", func(t *testing.T) status.Inspection {
			return status.Inspection{Cert: plain, Facts: facts(t, 90*day, -day)}
		}, want{health: plan.Critical, applied: true, due: true, reason: plan.Expired, problems: []string{"expiring:critical"}}},
		{"renewal failing, fresh", func(t *testing.T) status.Inspection {
			return status.Inspection{Cert: plain, Facts: facts(t, 90*day, 80*day), State: store.State{LastResult: store.ResultFailed, Failures: 1, LastError: "x"}}
		}, want{health: plan.Warning, applied: true, reason: plan.NotDue, ready: true, problems: []string{"renewal_failed:warning"}}},
		{"renewal failing and expiring", func(t *testing.T) status.Inspection {
			return status.Inspection{Cert: plain, Facts: facts(t, 90*day, 5*day), State: store.State{LastResult: store.ResultFailed, Failures: 4, LastError: "x"}}
		}, want{health: plan.Critical, applied: true, due: true, reason: plan.InWindow, ready: true, problems: []string{"renewal_failed:critical", "expiring:critical"}}},
		{"the CA asks for a replacement now (ARI)", func(t *testing.T) status.Inspection {
			return status.Inspection{Cert: plain, Facts: facts(t, 90*day, 80*day),
				ARI: &plan.ARI{Start: now.Add(-2 * time.Hour), End: now.Add(-time.Hour), Chosen: now.Add(-time.Hour), Explanation: "https://ca.example/incident/7"}}
		}, want{health: plan.Warning, applied: true, due: true, reason: plan.ARINow, ready: true, problems: []string{"renewal_requested:warning"},
			overdueSince: now.Add(-2 * time.Hour)}},
		// dns-persist-01: the record's persist_until, 30 days ahead.
		{"dns-persist record accepted for 31 more days", func(t *testing.T) status.Inspection {
			return status.Inspection{Cert: persistUntil(31 * day), Facts: facts(t, 90*day, 80*day)}
		}, want{health: plan.OK, applied: true, reason: plan.NotDue, ready: true}},
		{"dns-persist record accepted for 29 more days", func(t *testing.T) status.Inspection {
			return status.Inspection{Cert: persistUntil(29 * day), Facts: facts(t, 90*day, 80*day)}
		}, want{health: plan.Warning, applied: true, reason: plan.NotDue, ready: true, problems: []string{"dns_persist_expiring:warning"},
			problemErrContains: "accepted until 2027-01-02 12:00 UTC (persist_until), in 29.0 days"}},
		{"dns-persist record's persist_until passed", func(t *testing.T) status.Inspection {
			return status.Inspection{Cert: persistUntil(-time.Hour), Facts: facts(t, 90*day, 80*day)}
		}, want{health: plan.Warning, applied: true, reason: plan.NotDue, ready: true, problems: []string{"dns_persist_expiring:warning"},
			problemErrContains: "expired at 2026-12-04 11:00 UTC (persist_until): the CA no longer accepts it"}},
		{"dns-persist without persist_until", func(t *testing.T) status.Inspection {
			c := persistUntil(0)
			c.Challenge.Persist.PersistUntil = time.Time{}
			return status.Inspection{Cert: c, Facts: facts(t, 90*day, 80*day)}
		}, want{health: plan.OK, applied: true, reason: plan.NotDue, ready: true}},
		// The lag of issue 17: overdue once renewer's moment in an open window has come.
		{"ARI window not open yet", func(t *testing.T) status.Inspection {
			return status.Inspection{Cert: plain, Facts: facts(t, 90*day, 80*day),
				ARI: &plan.ARI{Start: now.Add(day), End: now.Add(3 * day), Chosen: now.Add(2 * day)}}
		}, want{health: plan.OK, applied: true, reason: plan.NotDue, ready: true}},
		{"ARI window open, renewer's moment in it not yet", func(t *testing.T) status.Inspection {
			return status.Inspection{Cert: plain, Facts: facts(t, 90*day, 80*day),
				ARI: &plan.ARI{Start: now.Add(-time.Hour), End: now.Add(day), Chosen: now.Add(2 * time.Hour)}}
		}, want{health: plan.OK, applied: true, reason: plan.NotDue, ready: true}},
		{"ARI window open, renewer's moment passed, not replaced", func(t *testing.T) status.Inspection {
			return status.Inspection{Cert: plain, Facts: facts(t, 90*day, 80*day),
				ARI: &plan.ARI{Start: now.Add(-time.Hour), End: now.Add(day), Chosen: now.Add(-10 * time.Minute)}}
		}, want{health: plan.Warning, applied: true, due: true, reason: plan.ARIWindow, ready: true, overdueSince: now.Add(-time.Hour)}},
		{"ARI window over, renewal failing", func(t *testing.T) status.Inspection {
			return status.Inspection{Cert: plain, Facts: facts(t, 90*day, 80*day), State: store.State{LastResult: store.ResultFailed, Failures: 2, LastError: "x"},
				ARI: &plan.ARI{Start: now.Add(-3 * time.Hour), End: now.Add(-2 * time.Hour), Chosen: now.Add(-2 * time.Hour)}}
		}, want{health: plan.Warning, applied: true, due: true, reason: plan.ARINow, ready: true,
			problems: []string{"renewal_failed:warning", "renewal_requested:warning"}, overdueSince: now.Add(-3 * time.Hour)}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			in := tc.in(t)
			k := status.Assess(in, now)
			w := tc.want
			if k.Health != w.health || k.Applied != w.applied || k.DeployPending != w.pending || k.Decision.Due != w.due ||
				k.Decision.Reason != w.reason || k.Ready != w.ready {
				t.Errorf("got health %s applied %v pending %v due %v (%s) ready %v\nwant health %s applied %v pending %v due %v (%s) ready %v",
					k.Health, k.Applied, k.DeployPending, k.Decision.Due, k.Decision.Reason, k.Ready,
					w.health, w.applied, w.pending, w.due, w.reason, w.ready)
			}
			if !k.ARIOverdueSince.Equal(w.overdueSince) {
				t.Errorf("ARI overdue since %s, want %s", k.ARIOverdueSince, w.overdueSince)
			}
			var got []string
			for _, p := range k.Problems {
				got = append(got, string(p.Kind)+":"+p.Severity)
				if w.problemErrContains != "" && !strings.Contains(p.Error+p.Message, w.problemErrContains) {
					t.Errorf("problem %q does not name %q", p.Message+" / "+p.Error, w.problemErrContains)
				}
			}
			if !slices.Equal(got, w.problems) {
				t.Errorf("problems %v, want %v", got, w.problems)
			}
			if !strings.Contains(k.Decision.Note, w.note) || (w.note == "") != (k.Decision.Note == "") {
				t.Errorf("note %q, want one containing %q", k.Decision.Note, w.note)
			}
		})
	}
}
