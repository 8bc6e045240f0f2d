package plan_test

import (
	"testing"
	"time"

	"github.com/renewer/renewer/internal/certinfo"
	"github.com/renewer/renewer/internal/certinfo/certtest"
	"github.com/renewer/renewer/internal/config"
	"github.com/renewer/renewer/internal/plan"
)

const day = 24 * time.Hour

var now = time.Date(2026, 3, 1, 12, 0, 0, 0, time.UTC)

// cert is an ec256 certificate for example.com and www.example.com with a
// matching key, valid from nb for life.
func cert(nb time.Time, life time.Duration, edit ...func(*certinfo.Facts)) *certinfo.Facts {
	f := &certinfo.Facts{
		Names:      []string{"example.com", "www.example.com"},
		NotBefore:  nb,
		NotAfter:   nb.Add(life),
		KeyType:    "ec256",
		HasKey:     true,
		KeyMatches: true,
	}
	for _, e := range edit {
		e(f)
	}
	return f
}

func conf(edit ...func(*config.Certificate)) config.Certificate {
	c := config.Certificate{Name: "site", Domains: []string{"example.com", "www.example.com"}, KeyType: "ec256"}
	for _, e := range edit {
		e(&c)
	}
	return c
}

func rule(rb config.RenewBefore) func(*config.Certificate) {
	return func(c *config.Certificate) { c.RenewBefore = rb }
}

func TestRenewAt(t *testing.T) {
	nb := now
	for _, tc := range []struct {
		name string
		life time.Duration
		rb   config.RenewBefore
		want time.Time
	}{
		{"default 90d: last third", 90 * day, config.RenewBefore{}, nb.Add(60 * day)},
		{"default 6d: last half", 6 * day, config.RenewBefore{}, nb.Add(3 * day)},
		{"default 10d: last half", 10 * day, config.RenewBefore{}, nb.Add(5 * day)},
		{"default just over 10d: last third", 10*day + 3*time.Second, config.RenewBefore{}, nb.Add(10*day + 3*time.Second - (10*day+3*time.Second)/3)},
		{"default LE 90d minus 1s", 90*day - time.Second, config.RenewBefore{}, nb.Add(90*day - time.Second - (90*day-time.Second)/3)},
		{"duration 20d", 90 * day, config.RenewBefore{Duration: 20 * day}, nb.Add(70 * day)},
		// A duration not shorter than the lifetime would make every new
		// certificate due at once: the default rule (1/2 for 6 days) applies.
		{"duration 720h on 6d: default rule", 6 * day, config.RenewBefore{Duration: 720 * time.Hour}, nb.Add(3 * day)},
		{"duration equal to lifetime: default rule", 6 * day, config.RenewBefore{Duration: 6 * day}, nb.Add(3 * day)},
		{"duration just under the lifetime", 6 * day, config.RenewBefore{Duration: 6*day - time.Hour}, nb.Add(time.Hour)},
		{"fraction 0.25", 90 * day, config.RenewBefore{Fraction: 0.25}, nb.Add(67*day + 12*time.Hour)},
		{"fraction 0.5 on 6d", 6 * day, config.RenewBefore{Fraction: 0.5}, nb.Add(3 * day)},
	} {
		t.Run(tc.name, func(t *testing.T) {
			if got := plan.RenewAt(cert(nb, tc.life), tc.rb); !got.Equal(tc.want) {
				t.Errorf("RenewAt = %v, want %v", got, tc.want)
			}
		})
	}
}

func TestDecide(t *testing.T) {
	fresh := cert(now.Add(-10*day), 90*day) // renews at now+50d
	for _, tc := range []struct {
		name string
		c    config.Certificate
		have *certinfo.Facts
		want plan.Decision
	}{
		{"missing", conf(), nil,
			plan.Decision{Due: true, Reason: plan.Missing, At: now}},
		{"not due", conf(), fresh,
			plan.Decision{Reason: plan.NotDue, At: now.Add(50 * day)}},
		{"names same in other order and case", conf(func(c *config.Certificate) { c.Domains = []string{"WWW.example.com", "example.com"} }), fresh,
			plan.Decision{Reason: plan.NotDue, At: now.Add(50 * day)}},
		{"name added", conf(func(c *config.Certificate) { c.Domains = append(c.Domains, "api.example.com") }), fresh,
			plan.Decision{Due: true, Reason: plan.NamesChanged, At: now}},
		{"name removed", conf(func(c *config.Certificate) { c.Domains = c.Domains[:1] }), fresh,
			plan.Decision{Due: true, Reason: plan.NamesChanged, At: now}},
		{"key mismatch", conf(), cert(now.Add(-10*day), 90*day, func(f *certinfo.Facts) { f.KeyMatches = false }),
			plan.Decision{Due: true, Reason: plan.KeyMismatch, At: now}},
		{"no key loaded: key not checked", conf(), cert(now.Add(-10*day), 90*day, func(f *certinfo.Facts) { f.HasKey, f.KeyMatches = false, false }),
			plan.Decision{Reason: plan.NotDue, At: now.Add(50 * day)}},
		{"key type changed", conf(func(c *config.Certificate) { c.KeyType = "rsa2048" }), fresh,
			plan.Decision{Due: true, Reason: plan.KeyTypeChanged, At: now}},
		{"no key type configured", conf(func(c *config.Certificate) { c.KeyType = "" }), fresh,
			plan.Decision{Reason: plan.NotDue, At: now.Add(50 * day)}},
		{"expired", conf(), cert(now.Add(-91*day), 90*day),
			plan.Decision{Due: true, Reason: plan.Expired, At: now.Add(-31 * day)}},
		{"exactly at NotAfter is not yet expired", conf(), cert(now.Add(-90*day), 90*day),
			plan.Decision{Due: true, Reason: plan.InWindow, At: now.Add(-30 * day)}},
		{"in window", conf(), cert(now.Add(-70*day), 90*day),
			plan.Decision{Due: true, Reason: plan.InWindow, At: now.Add(-10 * day)}},
		{"exactly at RenewAt is due", conf(), cert(now.Add(-60*day), 90*day),
			plan.Decision{Due: true, Reason: plan.InWindow, At: now}},
		{"1ns before RenewAt is not due", conf(), cert(now.Add(-60*day+time.Nanosecond), 90*day),
			plan.Decision{Reason: plan.NotDue, At: now.Add(time.Nanosecond)}},
		{"6d cert at half life is due", conf(), cert(now.Add(-3*day), 6*day),
			plan.Decision{Due: true, Reason: plan.InWindow, At: now}},
		{"6d cert before half life", conf(), cert(now.Add(-2*day), 6*day),
			plan.Decision{Reason: plan.NotDue, At: now.Add(day)}},
		{"duration rule due", conf(rule(config.RenewBefore{Duration: 30 * day})), cert(now.Add(-60*day), 90*day),
			plan.Decision{Due: true, Reason: plan.InWindow, At: now}},
		{"duration rule not due", conf(rule(config.RenewBefore{Duration: 20 * day})), cert(now.Add(-60*day), 90*day),
			plan.Decision{Reason: plan.NotDue, At: now.Add(10 * day)}},
		{"duration longer than lifetime: a fresh certificate is not due", conf(rule(config.RenewBefore{Duration: 30 * day})), cert(now.Add(-time.Minute), 6*day),
			plan.Decision{Due: false, Reason: plan.NotDue, At: now.Add(3*day - time.Minute)}},
		{"duration longer than lifetime: due by the default rule", conf(rule(config.RenewBefore{Duration: 30 * day})), cert(now.Add(-4*day), 6*day),
			plan.Decision{Due: true, Reason: plan.InWindow, At: now.Add(-day)}},
		{"fraction rule due", conf(rule(config.RenewBefore{Fraction: 0.5})), cert(now.Add(-45*day), 90*day),
			plan.Decision{Due: true, Reason: plan.InWindow, At: now}},
		{"fraction rule not due", conf(rule(config.RenewBefore{Fraction: 0.25})), cert(now.Add(-45*day), 90*day),
			plan.Decision{Reason: plan.NotDue, At: now.Add(22*day + 12*time.Hour)}},
		{"names checked before key and expiry", conf(func(c *config.Certificate) { c.Domains = []string{"other.example"} }),
			cert(now.Add(-100*day), 90*day, func(f *certinfo.Facts) { f.KeyMatches = false; f.KeyType = "rsa2048" }),
			plan.Decision{Due: true, Reason: plan.NamesChanged, At: now}},
		{"key match checked before key type", conf(),
			cert(now.Add(-100*day), 90*day, func(f *certinfo.Facts) { f.KeyMatches = false; f.KeyType = "rsa2048" }),
			plan.Decision{Due: true, Reason: plan.KeyMismatch, At: now}},
		{"key type checked before expiry", conf(),
			cert(now.Add(-100*day), 90*day, func(f *certinfo.Facts) { f.KeyType = "rsa2048" }),
			plan.Decision{Due: true, Reason: plan.KeyTypeChanged, At: now}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			got := plan.Decide(now, tc.c, tc.have)
			if got.Due != tc.want.Due || got.Reason != tc.want.Reason || !got.At.Equal(tc.want.At) {
				t.Errorf("Decide = %+v, want %+v", got, tc.want)
			}
		})
	}
}

// TestDecideRealCertificate runs Decide on facts parsed from a real bundle.
func TestDecideRealCertificate(t *testing.T) {
	nb := now.Add(-10 * day)
	pemCert, pemKey := certtest.Issue(t, certtest.Options{
		Names: []string{"www.example.com", "example.com"}, NotBefore: nb, NotAfter: nb.Add(90 * day), KeyType: "rsa2048",
	})
	f, err := certinfo.Parse(pemCert, pemKey)
	if err != nil {
		t.Fatal(err)
	}
	c := conf(func(c *config.Certificate) { c.KeyType = "rsa2048" })
	if got := plan.Decide(now, c, f); got.Due || got.Reason != plan.NotDue || !got.At.Equal(nb.Add(60*day)) {
		t.Errorf("Decide = %+v", got)
	}
	if got := plan.Decide(now, conf(), f); got.Reason != plan.KeyTypeChanged {
		t.Errorf("Decide with ec256 config = %+v", got)
	}
}

func TestHealthString(t *testing.T) {
	for h, want := range map[plan.Health]string{plan.OK: "ok", plan.Warning: "warning", plan.Critical: "critical", 7: "Health(7)"} {
		if got := h.String(); got != want {
			t.Errorf("Health(%d).String() = %q, want %q", int(h), got, want)
		}
	}
	if plan.OK != 0 || plan.Warning != 1 || plan.Critical != 2 {
		t.Error("Health values must be the monitoring-plugin exit codes 0, 1, 2")
	}
}
