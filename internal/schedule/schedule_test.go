package schedule

import (
	"math/rand/v2"
	"testing"
	"time"

	"github.com/robfig/cron/v3"
)

var t0 = time.Date(2026, 11, 23, 12, 0, 0, 0, time.UTC)

func TestBackoffSequence(t *testing.T) {
	b := Backoff{Min: time.Minute, Max: 6 * time.Hour}
	far := t0.Add(90 * 24 * time.Hour) // 90 days left: cap stays 6h
	want := []time.Duration{1, 2, 4, 8, 16, 32, 64, 128, 256, 360, 360, 360}
	for i, w := range want {
		n := i + 1
		if got := b.Delay(n, t0, far, 0.5); got != w*time.Minute {
			t.Errorf("failure %d: delay %s, want %s", n, got, w*time.Minute)
		}
		lo, hi := b.Delay(n, t0, far, 0), b.Delay(n, t0, far, 0.999999)
		if lo < w*time.Minute*9/10 || hi > w*time.Minute*11/10 || lo >= hi {
			t.Errorf("failure %d: jitter range [%s, %s] not within ±10%% of %s", n, lo, hi, w*time.Minute)
		}
	}
	// No certificate yet: the plain cap.
	if got := b.Delay(20, t0, time.Time{}, 0.5); got != 6*time.Hour {
		t.Errorf("unknown expiry: %s", got)
	}
	// Huge failure counts do not overflow.
	if got := b.Delay(1000, t0, far, 0.5); got != 6*time.Hour {
		t.Errorf("1000 failures: %s", got)
	}
}

// The cap shrinks as expiry nears: a hundredth of the time left, never below Min.
func TestBackoffCapShrinks(t *testing.T) {
	b := Backoff{Min: time.Minute, Max: 6 * time.Hour}
	for _, tc := range []struct {
		left, cap time.Duration
	}{
		{60 * 24 * time.Hour, 6 * time.Hour},     // 14.4h/… capped at 6h
		{10 * 24 * time.Hour, 144 * time.Minute}, // 2.4h
		{3 * 24 * time.Hour, 43*time.Minute + 12*time.Second},
		{time.Hour, time.Minute},  // 36s → Min
		{-time.Hour, time.Minute}, // expired → Min
	} {
		if got := b.Cap(t0, t0.Add(tc.left)); got != tc.cap {
			t.Errorf("left %s: cap %s, want %s", tc.left, got, tc.cap)
		}
		if got := b.Delay(50, t0, t0.Add(tc.left), 0.5); got != tc.cap {
			t.Errorf("left %s: delay after 50 failures %s, want the cap %s", tc.left, got, tc.cap)
		}
	}
}

func TestNext(t *testing.T) {
	hourly := cron.Every(time.Hour)
	rnd := rand.New(rand.NewPCG(1, 2))
	cases := []struct {
		name   string
		wakes  []Wake
		jitter time.Duration
		want   Wake
		max    time.Duration // allowed jitter above want.At
	}{
		{"nothing: periodic check", nil, 0, Wake{At: t0.Add(time.Hour), Reason: "periodic check"}, 0},
		{"renewal before check", []Wake{{At: t0.Add(10 * time.Minute), Name: "a", Reason: "renewal"}, {At: t0.Add(30 * time.Minute), Name: "b"}}, 0,
			Wake{At: t0.Add(10 * time.Minute), Name: "a", Reason: "renewal"}, 0},
		{"renewal after check", []Wake{{At: t0.Add(2 * time.Hour), Name: "a"}}, 0, Wake{At: t0.Add(time.Hour), Reason: "periodic check"}, 0},
		{"past time is now", []Wake{{At: t0.Add(-time.Minute), Name: "a", Exact: true}}, 0, Wake{At: t0, Name: "a", Exact: true}, 0},
		{"jitter on renewal", []Wake{{At: t0.Add(10 * time.Minute), Name: "a"}}, 5 * time.Minute, Wake{At: t0.Add(10 * time.Minute), Name: "a"}, 5 * time.Minute},
		{"no jitter on retry", []Wake{{At: t0.Add(10 * time.Minute), Name: "a", Exact: true}}, 5 * time.Minute, Wake{At: t0.Add(10 * time.Minute), Name: "a", Exact: true}, 0},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			for range 200 {
				got := Next(t0, tc.wakes, hourly, tc.jitter, rnd)
				if got.Name != tc.want.Name || got.At.Before(tc.want.At) || got.At.Sub(tc.want.At) > tc.max || (tc.max > 0 && got.At.Sub(tc.want.At) >= tc.max) {
					t.Fatalf("Next = %+v, want %+v (+ jitter < %s)", got, tc.want, tc.max)
				}
			}
		})
	}
	// Jitter is spread, not constant.
	seen := map[time.Time]bool{}
	for range 50 {
		seen[Next(t0, nil, hourly, 5*time.Minute, rnd).At] = true
	}
	if len(seen) < 40 {
		t.Errorf("jitter gave only %d distinct times in 50 draws", len(seen))
	}
}
