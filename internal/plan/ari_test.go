package plan

import (
	"testing"
	"time"

	"github.com/renewer/renewer/internal/certinfo"
	"github.com/renewer/renewer/internal/config"
)

func TestChooseMoment(t *testing.T) {
	start := time.Date(2027, 1, 20, 0, 0, 0, 0, time.UTC)
	end := start.Add(48 * time.Hour)
	for _, r := range []float64{0, 0.25, 0.5, 0.999999} {
		got := ChooseMoment(start, end, r)
		if got.Before(start) || !got.Before(end) {
			t.Errorf("rnd %v: %s outside [%s, %s)", r, got, start, end)
		}
	}
	if got := ChooseMoment(start, end, 0.5); !got.Equal(start.Add(24 * time.Hour)) {
		t.Errorf("middle: %s", got)
	}
}

func TestDecideARI(t *testing.T) {
	now := time.Date(2027, 1, 1, 12, 0, 0, 0, time.UTC)
	c := config.Certificate{Domains: []string{"example.com"}, KeyType: "ec256"}
	facts := func(notBefore time.Time, life time.Duration) *certinfo.Facts {
		return &certinfo.Facts{Names: []string{"example.com"}, KeyType: "ec256", HasKey: true, KeyMatches: true,
			NotBefore: notBefore, NotAfter: notBefore.Add(life)}
	}
	day := 24 * time.Hour
	fresh := facts(now.Add(-10*day), 90*day) // renews at day 60 by the lifetime rule
	window := func(from, to time.Duration, chosen time.Duration) *ARI {
		return &ARI{Start: now.Add(from), End: now.Add(to), Chosen: now.Add(chosen)}
	}
	for _, tc := range []struct {
		name   string
		have   *certinfo.Facts
		ari    *ARI
		due    bool
		reason Reason
		at     time.Time
	}{
		{"no ARI: lifetime rule", fresh, nil, false, NotDue, fresh.NotBefore.Add(60 * day)},
		{"chosen moment ahead", fresh, window(49*day, 51*day, 50*day), false, NotDue, now.Add(50 * day)},
		{"ARI earlier than the lifetime rule wins", fresh, window(day, 3*day, 2*day), false, NotDue, now.Add(2 * day)},
		{"chosen moment reached", fresh, window(-time.Hour, day, -time.Minute), true, ARIWindow, now.Add(-time.Minute)},
		{"exactly at the chosen moment", fresh, window(-time.Hour, day, 0), true, ARIWindow, now},
		{"window in the past: renew now", fresh, window(-2*time.Hour, -time.Hour, -90*time.Minute), true, ARINow, now.Add(-90 * time.Minute)},
		// 6-day certificate with 5h left: 1/20 of 6 days is 7.2h, so the margin overrides a later ARI moment.
		{"emergency margin beats ARI", facts(now.Add(-6*day+5*time.Hour), 6*day), window(day, 2*day, day), true, EmergencyMargin,
			now.Add(5*time.Hour - 6*day/20)},
		// A chosen moment past the margin is pulled back to it.
		{"chosen past the margin", facts(now.Add(-day), 6*day), window(4*day, 5*day, 5*day-time.Hour), false, NotDue,
			now.Add(5*day - 6*day/20)},
		{"missing comes first", nil, window(-2*time.Hour, -time.Hour, -time.Hour), true, Missing, now},
		{"expired comes first", facts(now.Add(-91*day), 90*day), window(-2*time.Hour, -time.Hour, -time.Hour), true, Expired, fresh.NotBefore},
	} {
		t.Run(tc.name, func(t *testing.T) {
			d := DecideARI(now, c, tc.have, tc.ari)
			if d.Due != tc.due || d.Reason != tc.reason {
				t.Errorf("DecideARI = %+v, want due=%v reason %q", d, tc.due, tc.reason)
			}
			if tc.reason != Expired && !d.At.Equal(tc.at) {
				t.Errorf("At = %s, want %s", d.At, tc.at)
			}
		})
	}
}
