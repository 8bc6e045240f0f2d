package cli

import (
	"regexp"
	"strings"
	"testing"
	"time"

	"github.com/renewer/renewer/internal/plan"
	"github.com/renewer/renewer/internal/status"
)

// Issue 14 #11: with short lifetimes (a CA issuing 24-hour certificates)
// days with one decimal read as 1.0, 0.0 and -0.0. Under two days left,
// status, plan and renew show hours and minutes.
func TestShortLifetimeShowsHours(t *testing.T) {
	dir := t.TempDir()
	writeConfig(t, dir, "short", "gone", "long")
	now := time.Now()
	install(t, dir, "short", []string{"short.example.com"}, now.Add(-3*time.Hour), now.Add(20*time.Hour+30*time.Minute))
	install(t, dir, "gone", []string{"gone.example.com"}, now.Add(-25*time.Hour), now.Add(-time.Minute))
	install(t, dir, "long", []string{"long.example.com"}, now.Add(-time.Hour), now.Add(90*24*time.Hour))
	_, out, _ := runCLI(t, dir, "status")
	rows := map[string]string{}
	for _, l := range strings.Split(out, "\n") {
		if f := strings.Fields(l); len(f) > 0 {
			rows[f[0]] = l
		}
	}
	if !regexp.MustCompile(`UTC  +20h (29|30)m  `).MatchString(rows["short"]) {
		t.Errorf("20.5 hours left not shown as 20h 30m:\n%s", out)
	}
	if !regexp.MustCompile(`UTC  +expired  `).MatchString(rows["gone"]) {
		t.Errorf("an expired certificate's time left is not \"expired\":\n%s", out)
	}
	if !regexp.MustCompile(`UTC  +(89\.9|90\.0)  `).MatchString(rows["long"]) {
		t.Errorf("90 days not shown as days:\n%s", out)
	}
	for _, bad := range []string{" 0.8 ", " 0.9 ", " -0.0 ", " 0.0 "} {
		if strings.Contains(out, bad) {
			t.Errorf("status shows %q:\n%s", bad, out)
		}
	}

	// Half of a 23.5-hour lifetime before expiry: in about 8h 45m.
	_, out, _ = runCLI(t, dir, "plan", "short")
	if !regexp.MustCompile(`\(in 8h (44|45)m\)`).MatchString(out) {
		t.Errorf("plan does not show hours and minutes:\n%s", out)
	}
}

func TestRenewOutputShortLifetime(t *testing.T) {
	now := time.Date(2026, 12, 4, 2, 0, 0, 0, time.UTC)
	r := status.Result{Name: "www", Action: status.Renewed, Serial: "03AB", NotAfter: now.Add(23*time.Hour + 59*time.Minute),
		Decision: plan.Decision{Due: true, Reason: plan.Forced}}
	if got, want := resultText(r, now), "serial 03AB, expires 2026-12-05 01:59 UTC, in 23h 59m (forced)"; got != want {
		t.Errorf("renew output\n got %q\nwant %q", got, want)
	}
	r.NotAfter = now.Add(90 * 24 * time.Hour)
	if got, want := resultText(r, now), "serial 03AB, expires 2027-03-04 (forced)"; got != want {
		t.Errorf("renew output\n got %q\nwant %q", got, want)
	}
}
