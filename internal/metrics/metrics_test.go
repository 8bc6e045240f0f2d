package metrics_test

import (
	"context"
	"io"
	"log/slog"
	"net"
	"net/http"
	"os"
	"regexp"
	"runtime"
	"testing"
	"time"

	dto "github.com/prometheus/client_model/go"
	"github.com/prometheus/common/expfmt"
	"github.com/prometheus/common/model"

	"github.com/renewer/renewer/internal/metrics"
)

// serve starts m on a free loopback port and returns its base URL; it
// checks that Serve returns nil once the test ends.
func serve(t *testing.T, m *metrics.Metrics) string {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- m.Serve(ctx, ln, slog.New(slog.DiscardHandler)) }()
	t.Cleanup(func() {
		cancel()
		if err := <-done; err != nil {
			t.Errorf("Serve after shutdown: %v", err)
		}
	})
	return "http://" + ln.Addr().String()
}

// scrape GETs /metrics over HTTP and parses it with Prometheus' own text parser.
func scrape(t *testing.T, base string) map[string]*dto.MetricFamily {
	t.Helper()
	resp, err := http.Get(base + "/metrics")
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	if resp.StatusCode != http.StatusOK {
		t.Fatalf("GET /metrics: %s", resp.Status)
	}
	p := expfmt.NewTextParser(model.UTF8Validation)
	fams, err := p.TextToMetricFamilies(resp.Body)
	if err != nil {
		t.Fatalf("parse /metrics: %v", err)
	}
	return fams
}

// value finds the sample of family name whose labels are exactly labels.
func value(t *testing.T, fams map[string]*dto.MetricFamily, name string, labels map[string]string) (float64, bool) {
	t.Helper()
	f := fams[name]
	if f == nil {
		return 0, false
	}
	for _, m := range f.Metric {
		if len(m.Label) != len(labels) {
			continue
		}
		match := true
		for _, l := range m.Label {
			if labels[l.GetName()] != l.GetValue() {
				match = false
			}
		}
		if !match {
			continue
		}
		switch {
		case m.Gauge != nil:
			return m.Gauge.GetValue(), true
		case m.Counter != nil:
			return m.Counter.GetValue(), true
		case m.Untyped != nil:
			return m.Untyped.GetValue(), true
		}
	}
	return 0, false
}

func TestScrape(t *testing.T) {
	m := metrics.New("v1.2.3")
	base := serve(t, m)
	nb := time.Date(2026, 10, 1, 0, 0, 0, 0, time.UTC)
	na := nb.Add(90 * 24 * time.Hour)
	renew := nb.Add(60 * 24 * time.Hour)
	now := time.Date(2026, 11, 23, 12, 0, 0, 0, time.UTC)
	m.SetCertificates([]metrics.Certificate{
		{Name: "www", NotBefore: nb, NotAfter: na, RenewalTime: renew, Ready: true, Hooks: []string{"reload"}},
		{Name: "api", RenewalTime: now, Failures: 2},
	}, true)
	m.Renewal("www", true)
	m.Renewal("api", false)
	m.Renewal("api", false)
	m.HookRun("www", "reload", false)
	m.HookRun("www", "reload", true)
	m.HookRun("www", "reload", true)
	m.SetWatches([]metrics.Watch{
		{Name: "megaphone", Endpoint: "cdn.example.net:443", NotAfter: na, Ready: true},
		{Name: "down", Endpoint: "10.0.0.1:443"},
	})
	m.Checked(now)

	fams := scrape(t, base)
	www, api := map[string]string{"name": "www"}, map[string]string{"name": "api"}
	want := []struct {
		name   string
		labels map[string]string
		value  float64
	}{
		{"renewer_certificate_not_after_timestamp_seconds", www, float64(na.Unix())},
		{"renewer_certificate_not_before_timestamp_seconds", www, float64(nb.Unix())},
		{"renewer_certificate_renewal_timestamp_seconds", www, float64(renew.Unix())},
		{"renewer_certificate_renewal_timestamp_seconds", api, float64(now.Unix())},
		{"renewer_certificate_ready", www, 1},
		{"renewer_certificate_ready", api, 0},
		{"renewer_certificate_consecutive_failures", api, 2},
		{"renewer_certificate_consecutive_failures", www, 0},
		{"renewer_renewals_total", map[string]string{"name": "www", "result": "success"}, 1},
		{"renewer_renewals_total", map[string]string{"name": "www", "result": "failure"}, 0},
		{"renewer_renewals_total", map[string]string{"name": "api", "result": "failure"}, 2},
		{"renewer_renewals_total", map[string]string{"name": "api", "result": "success"}, 0},
		{"renewer_hook_runs_total", map[string]string{"name": "www", "hook": "reload", "result": "success"}, 2},
		{"renewer_hook_runs_total", map[string]string{"name": "www", "hook": "reload", "result": "failure"}, 1},
		{"renewer_watch_not_after_timestamp_seconds", map[string]string{"name": "megaphone", "endpoint": "cdn.example.net:443"}, float64(na.Unix())},
		{"renewer_watch_ready", map[string]string{"name": "megaphone", "endpoint": "cdn.example.net:443"}, 1},
		{"renewer_watch_ready", map[string]string{"name": "down", "endpoint": "10.0.0.1:443"}, 0},
		{"renewer_last_check_timestamp_seconds", map[string]string{}, float64(now.Unix())},
		{"renewer_build_info", map[string]string{"version": "v1.2.3", "goversion": runtime.Version()}, 1},
	}
	for _, w := range want {
		got, ok := value(t, fams, w.name, w.labels)
		if !ok {
			t.Errorf("%s%v: no such series", w.name, w.labels)
		} else if got != w.value {
			t.Errorf("%s%v = %v, want %v", w.name, w.labels, got, w.value)
		}
	}
	for _, absent := range []struct {
		name   string
		labels map[string]string
	}{
		{"renewer_certificate_not_after_timestamp_seconds", api},
		{"renewer_watch_not_after_timestamp_seconds", map[string]string{"name": "down", "endpoint": "10.0.0.1:443"}},
	} {
		if _, ok := value(t, fams, absent.name, absent.labels); ok {
			t.Errorf("%s%v present; nothing is known", absent.name, absent.labels)
		}
	}
	if fams["go_goroutines"] == nil || fams["process_start_time_seconds"] == nil {
		t.Error("the Go and process collectors are missing")
	}
	for name, f := range fams {
		if f.GetHelp() == "" {
			t.Errorf("%s has no help text", name)
		}
	}

	// After a reload without api, its series are gone; www's counters stay.
	m.SetCertificates([]metrics.Certificate{{Name: "www", NotBefore: nb, NotAfter: na, RenewalTime: renew, Ready: true}}, true)
	m.SetWatches(nil)
	fams = scrape(t, base)
	if _, ok := value(t, fams, "renewer_renewals_total", map[string]string{"name": "api", "result": "failure"}); ok {
		t.Error("api's series survive its removal from the config")
	}
	if _, ok := value(t, fams, "renewer_hook_runs_total", map[string]string{"name": "www", "hook": "reload", "result": "success"}); ok {
		t.Error("a removed hook's series survive")
	}
	if v, _ := value(t, fams, "renewer_renewals_total", map[string]string{"name": "www", "result": "success"}); v != 1 {
		t.Errorf("www's renewal counter after reload = %v, want 1", v)
	}
	if f := fams["renewer_watch_ready"]; f != nil && len(f.Metric) > 0 {
		t.Errorf("watch series survive their removal: %v", f.Metric)
	}
}

func TestHealthz(t *testing.T) {
	base := serve(t, metrics.New("devel"))
	resp, err := http.Get(base + "/healthz")
	if err != nil {
		t.Fatal(err)
	}
	body, _ := io.ReadAll(resp.Body)
	resp.Body.Close()
	if resp.StatusCode != http.StatusOK || string(body) != "ok\n" {
		t.Errorf("GET /healthz: %s %q", resp.Status, body)
	}
	resp, err = http.Get(base + "/nope")
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	if resp.StatusCode != http.StatusNotFound {
		t.Errorf("GET /nope: %s", resp.Status)
	}
}

// ListenAndServe reports a port already taken at once.
func TestListenError(t *testing.T) {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer ln.Close()
	err = metrics.New("devel").ListenAndServe(context.Background(), ln.Addr().String(), slog.New(slog.DiscardHandler))
	if err == nil {
		t.Fatal("listening on a taken port succeeded")
	}
}

// Every renewer_ metric the example alerting rules use is one this package
// exports: a renamed metric cannot silently turn an alert off.
func TestRulesUseExportedMetrics(t *testing.T) {
	rules, err := os.ReadFile("../../examples/prometheus/renewer-rules.yml")
	if err != nil {
		t.Fatal(err)
	}
	m := metrics.New("devel")
	m.SetCertificates([]metrics.Certificate{{Name: "x", NotAfter: time.Now(), NotBefore: time.Now(), RenewalTime: time.Now(), Hooks: []string{"h"}}}, true)
	m.SetWatches([]metrics.Watch{{Name: "w", Endpoint: "e:443", NotAfter: time.Now()}})
	m.SetFleet([]metrics.FleetCertificate{{Name: "x", Published: time.Now(), Holder: "n1", Nodes: []metrics.FleetNode{
		{Node: "n1", ServedNotAfter: time.Now(), Current: true, Reported: time.Now()}, {Node: "n2", Gone: true}}}})
	fams := scrape(t, serve(t, m))
	used := regexp.MustCompile(`renewer_[a-z_]+`).FindAllString(string(rules), -1)
	if len(used) < 5 {
		t.Fatalf("the rules use only %v", used)
	}
	for _, name := range used {
		if fams[name] == nil {
			t.Errorf("the rules use %s, which renewer does not export", name)
		}
	}
}
