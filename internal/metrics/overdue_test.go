package metrics_test

import (
	"testing"
	"time"

	"github.com/renewer/renewer/internal/metrics"
)

// renewer_certificate_ari_overdue_seconds is computed at each scrape: it
// grows between passes while a certificate stays unreplaced, is 0 for one
// that is not overdue, and goes with its certificate.
func TestARIOverdueSeconds(t *testing.T) {
	m := metrics.New("devel")
	base := serve(t, m)
	now := time.Date(2026, 12, 4, 12, 0, 0, 0, time.UTC)
	m.SetClock(func() time.Time { return now })
	m.SetCertificates([]metrics.Certificate{
		{Name: "late", ARIOverdueSince: now.Add(-90 * time.Minute)},
		{Name: "fine"},
	}, true)
	late, fine := map[string]string{"name": "late"}, map[string]string{"name": "fine"}
	const name = "renewer_certificate_ari_overdue_seconds"
	check := func(labels map[string]string, want float64, present bool) {
		t.Helper()
		got, ok := value(t, scrape(t, base), name, labels)
		if ok != present || got != want {
			t.Errorf("%s%v = %v (present %v), want %v (present %v)", name, labels, got, ok, want, present)
		}
	}
	check(late, 5400, true)
	check(fine, 0, true)
	now = now.Add(10 * time.Minute) // no pass in between: the scrape still counts
	check(late, 6000, true)
	m.SetCertificates([]metrics.Certificate{{Name: "late"}}, true) // replaced; "fine" left the config
	check(late, 0, true)
	check(fine, 0, false)
}
