package config

import (
	"bytes"
	"encoding/json"
	"fmt"
	"log/slog"
	"reflect"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/hashicorp/hcl/v2"
)

func TestLoadObserve(t *testing.T) {
	cfg, err := Load("testdata/observe.hcl")
	if err != nil {
		t.Fatal(err)
	}
	if got := cfg.Certificates[0].WarnBefore; got != (RenewBefore{Duration: 14 * 24 * time.Hour}) {
		t.Errorf("www warn_before (from defaults) = %+v", got)
	}
	if got := cfg.Certificates[1].WarnBefore; got != (RenewBefore{Fraction: 0.25}) {
		t.Errorf("api warn_before = %+v", got)
	}
	if cfg.Metrics == nil || cfg.Metrics.Listen != DefaultMetricsListen {
		t.Errorf("metrics = %+v", cfg.Metrics)
	}

	wantLines := []int{21, 25, 33}
	for i := range cfg.Watches {
		if l := cfg.Watches[i].DeclRange.Start.Line; i < len(wantLines) && l != wantLines[i] {
			t.Errorf("watch %s at line %d, want %d", cfg.Watches[i].Name, l, wantLines[i])
		}
		cfg.Watches[i].DeclRange = hcl.Range{}
	}
	wantWatches := []Watch{
		{Name: "megaphone", Endpoint: "cdn.example.net:443", ServerName: "cdn.example.net",
			WarnBefore: 21 * 24 * time.Hour, CriticalBefore: 7 * 24 * time.Hour},
		{Name: "ip", Endpoint: "192.0.2.7:8443", ServerName: "legacy.example.net",
			WarnBefore: 30 * 24 * time.Hour, CriticalBefore: 10 * 24 * time.Hour, CABundle: abs(t, "testdata/roots.pem")},
		{Name: "bare", Endpoint: "bare.example.net:443", ServerName: "bare.example.net",
			WarnBefore: 21 * 24 * time.Hour, CriticalBefore: 7 * 24 * time.Hour},
	}
	if !reflect.DeepEqual(cfg.Watches, wantWatches) {
		t.Errorf("watches =\n%+v\nwant\n%+v", cfg.Watches, wantWatches)
	}

	wantNotify := []Notify{
		{Name: "ops", Webhook: "https://hooks.example.com/T0K3N", Headers: map[string]Secret{"Authorization": "Bearer s3cr3t"},
			On: []string{"renewal_failed", "hook_failed", "verify_failed", "watch_failed", "expiring"}, Repeat: 12 * time.Hour},
		{Name: "chat", Slack: "https://hooks.slack.example/services/T/B/XYZ",
			On: []string{"renewal_failed", "hook_failed", "verify_failed", "watch_failed", "expiring", "renewal_requested", "dns_persist_expiring", "fleet_not_converged", "fleet_node_gone", "recovered", "account_rollover"}, Repeat: 24 * time.Hour},
		{Name: "mail", Email: &Email{SMTP: "smtp.example.com:587", TLS: "starttls", Username: "renewer", Password: "hunter2",
			From: "renewer@example.com", To: []string{"ops@example.com", "Oncall <oncall@example.com>"}},
			On: NotifyKinds, Repeat: 24 * time.Hour},
	}
	if !reflect.DeepEqual(cfg.Notifiers, wantNotify) {
		t.Errorf("notifiers =\n%#v\nwant\n%#v", cfg.Notifiers, wantNotify)
	}
}

// A config without the blocks has none of them; warn_before defaults to a
// fifth of the lifetime.
func TestObserveDefaults(t *testing.T) {
	cfg, err := Parse("/etc/renewer/renewer.hcl", []byte(`acme {}
certificate "x" {
  domains = ["x.example.com"]
  challenge "http" {}
}`))
	if err != nil {
		t.Fatal(err)
	}
	if cfg.Metrics != nil || cfg.Watches != nil || cfg.Notifiers != nil {
		t.Errorf("unexpected blocks: %+v", cfg)
	}
	c := cfg.Certificates[0]
	nb := time.Date(2026, 1, 1, 0, 0, 0, 0, time.UTC)
	if got, want := c.WarnAt(nb, nb.Add(90*24*time.Hour)), nb.Add(72*24*time.Hour); !got.Equal(want) {
		t.Errorf("WarnAt = %s, want %s (a fifth of 90 days before expiry)", got, want)
	}
	c.WarnBefore = RenewBefore{Duration: 10 * 24 * time.Hour}
	if got, want := c.WarnAt(nb, nb.Add(90*24*time.Hour)), nb.Add(80*24*time.Hour); !got.Equal(want) {
		t.Errorf("WarnAt = %s, want %s", got, want)
	}
	for _, kinds := range NotifyGroups {
		for _, k := range kinds {
			if !strings.Contains(strings.Join(NotifyKinds, " "), k) {
				t.Errorf("group member %q is not a kind", k)
			}
		}
	}
}

// Secrets never show when printed, logged or marshalled, however a config
// value ends up in output.
func TestSecretsNeverPrint(t *testing.T) {
	cfg, err := Load("testdata/observe.hcl")
	if err != nil {
		t.Fatal(err)
	}
	var logBuf bytes.Buffer
	slog.New(slog.NewTextHandler(&logBuf, nil)).Info("config", "notifiers", cfg.Notifiers, "email", cfg.Notifiers[2].Email)
	slog.New(slog.NewJSONHandler(&logBuf, nil)).Info("config", "notifiers", cfg.Notifiers, "email", cfg.Notifiers[2].Email)
	js, err := json.Marshal(cfg.Notifiers)
	if err != nil {
		t.Fatal(err)
	}
	outs := map[string]string{
		"%v": fmt.Sprintf("%v", cfg.Notifiers), "%+v": fmt.Sprintf("%+v", cfg.Notifiers), "%#v": fmt.Sprintf("%#v", cfg.Notifiers),
		"%s": fmt.Sprintf("%s", cfg.Notifiers[0].Webhook), "%q": fmt.Sprintf("%q", cfg.Notifiers[0].Webhook),
		"email": fmt.Sprintf("%+v", *cfg.Notifiers[2].Email), "json": string(js), "slog": logBuf.String(),
	}
	for how, out := range outs {
		for _, secret := range []string{"T0K3N", "s3cr3t", "XYZ", "hunter2"} {
			if strings.Contains(out, secret) {
				t.Errorf("%s output shows the secret %q:\n%s", how, secret, out)
			}
		}
		if !strings.Contains(out, Redacted) {
			t.Errorf("%s output does not say %s:\n%s", how, Redacted, out)
		}
	}
	if string(cfg.Notifiers[0].Webhook) != "https://hooks.example.com/T0K3N" {
		t.Error("the value itself is lost")
	}
}

// checkObserveInvariants is what metrics, watch and notify may rely on in a
// valid Config (FuzzParse checks it).
func checkObserveInvariants(t *testing.T, cfg *Config) {
	t.Helper()
	if m := cfg.Metrics; m != nil && !validHostPort(m.Listen) {
		t.Fatalf("metrics listen %q", m.Listen)
	}
	names := map[string]bool{}
	for _, w := range cfg.Watches {
		if !certNameRE.MatchString(w.Name) || names[w.Name] {
			t.Fatalf("bad or duplicate watch name %q", w.Name)
		}
		names[w.Name] = true
		if !validHostPort(w.Endpoint) || w.CriticalBefore <= 0 || w.WarnBefore < w.CriticalBefore {
			t.Fatalf("watch %+v", w)
		}
	}
	clear(names)
	for _, n := range cfg.Notifiers {
		if !certNameRE.MatchString(n.Name) || names[n.Name] {
			t.Fatalf("bad or duplicate notify name %q", n.Name)
		}
		names[n.Name] = true
		targets := 0
		for _, set := range []bool{n.Webhook != "", n.Slack != "", n.Email != nil} {
			if set {
				targets++
			}
		}
		if targets != 1 || len(n.On) == 0 || n.Repeat <= 0 {
			t.Fatalf("notify %+v", n)
		}
		for _, k := range n.On {
			if !slices.Contains(NotifyKinds, k) {
				t.Fatalf("notify %q: on %q", n.Name, k)
			}
		}
		if e := n.Email; e != nil && (!validHostPort(e.SMTP) || e.From == "" || len(e.To) == 0 || !slices.Contains(EmailTLSModes, e.TLS) ||
			(e.Username == "") != (e.Password == "") && e.Username != "") {
			t.Fatalf("notify %q: email %+v", n.Name, *e)
		}
	}
	for _, c := range cfg.Certificates {
		wb := c.WarnBefore
		if wb.Duration < 0 || wb.Fraction < 0 || wb.Fraction >= 1 {
			t.Fatalf("certificate %q: warn_before %+v", c.Name, wb)
		}
	}
}
