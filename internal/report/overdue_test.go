package report_test

import (
	"testing"
	"time"

	"github.com/renewer/renewer/internal/certinfo"
	"github.com/renewer/renewer/internal/certinfo/certtest"
	"github.com/renewer/renewer/internal/config"
	"github.com/renewer/renewer/internal/metrics"
	"github.com/renewer/renewer/internal/metrics/metricstest"
	"github.com/renewer/renewer/internal/plan"
	"github.com/renewer/renewer/internal/report"
	"github.com/renewer/renewer/internal/status"
)

// The lag after the CA pulled a window into the past reaches the metric
// from the one model (status.Assess), not from a rule of the report's own.
func TestARIOverdueFromStatus(t *testing.T) {
	cfg, err := config.Parse("renewer.hcl", []byte(`
storage { path = "state" }
acme { accept_terms = true }
certificate "www" {
  domains = ["www.example.com"]
  challenge "http" {}
}
metrics {}
`))
	if err != nil {
		t.Fatal(err)
	}
	cfg.Storage.Path = t.TempDir()
	now := time.Now().Truncate(time.Second)
	m := metrics.New("test")
	m.SetClock(func() time.Time { return now })
	rep, err := report.New(cfg, report.Options{Metrics: m, Version: "test", Now: func() time.Time { return now }})
	if err != nil {
		t.Fatal(err)
	}
	full, key := certtest.Issue(t, certtest.Options{Names: []string{"www.example.com"}, NotBefore: now.Add(-10 * day), NotAfter: now.Add(80 * day)})
	f, err := certinfo.Parse(full, key)
	if err != nil {
		t.Fatal(err)
	}
	in := status.Inspection{Cert: cfg.Certificates[0], Facts: f,
		ARI: &plan.ARI{Start: now.Add(-2 * time.Hour), End: now.Add(-time.Hour), Chosen: now.Add(-time.Hour)}}
	rep.Observe(report.Snapshot{Checked: now, Certificates: []status.View{status.Of(in, now)}})
	if v, ok := metricstest.Value(t, m.Registry(), "renewer_certificate_ari_overdue_seconds", map[string]string{"name": "www"}); !ok || v != 7200 {
		t.Errorf("overdue %v (present %v), want 7200", v, ok)
	}
	in.ARI = nil // replaced: the new certificate's window is in the future, or not known yet
	rep.Observe(report.Snapshot{Checked: now, Certificates: []status.View{status.Of(in, now)}})
	if v, ok := metricstest.Value(t, m.Registry(), "renewer_certificate_ari_overdue_seconds", map[string]string{"name": "www"}); !ok || v != 0 {
		t.Errorf("overdue after replacement %v (present %v), want 0", v, ok)
	}
}
