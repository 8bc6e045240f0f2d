package status

import (
	"testing"
	"time"
)

func TestIsGone(t *testing.T) {
	now := time.Date(2026, 12, 4, 12, 0, 0, 0, time.UTC)
	for _, c := range []struct {
		reported time.Time
		after    time.Duration
		want     bool
	}{
		{now.Add(-time.Minute), 10 * time.Minute, false},
		{now.Add(-10 * time.Minute), 10 * time.Minute, false}, // exactly the limit: not yet
		{now.Add(-10*time.Minute - time.Second), 10 * time.Minute, true},
		{now.Add(-24 * time.Hour), 10 * time.Minute, true},
		{now.Add(time.Minute), 10 * time.Minute, false}, // a node whose clock is ahead
		{now.Add(-24 * time.Hour), 0, false},            // no limit: never gone
		{time.Time{}, 10 * time.Minute, true},           // never reported a time
	} {
		if got := IsGone(c.reported, now, c.after); got != c.want {
			t.Errorf("IsGone(reported %s ago, after %s) = %v, want %v", now.Sub(c.reported), c.after, got, c.want)
		}
	}
}
