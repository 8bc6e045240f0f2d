package report_test

import (
	"context"
	"fmt"
	"log/slog"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/renewer/renewer/internal/agent"
	"github.com/renewer/renewer/internal/config"
	"github.com/renewer/renewer/internal/report"
	"github.com/renewer/renewer/internal/store"
)

// A certificate whose dns-persist record's persist_until is 10 days away
// is notified (dns_persist_expiring, a warning that names the date and the
// command that prints the new record); one 60 days away is not.
func TestNotifyPersistUntil(t *testing.T) {
	now := time.Now()
	hooks, url := startInbox(t)
	dir := t.TempDir()
	src := fmt.Sprintf(`
storage { path = "state" }
acme { accept_terms = true }
certificate "soon" {
  domains = ["soon.example.com"]
  challenge "dns-persist" { persist_until = %q }
}
certificate "later" {
  domains = ["later.example.com"]
  challenge "dns-persist" { persist_until = %q }
}
notify "ops" { webhook = %q }
`, now.Add(10*day).UTC().Format(time.RFC3339), now.Add(60*day).UTC().Format(time.RFC3339), url)
	file := filepath.Join(dir, "renewer.hcl")
	if err := os.WriteFile(file, []byte(src), 0o600); err != nil {
		t.Fatal(err)
	}
	cfg, err := config.Load(file)
	if err != nil {
		t.Fatal(err)
	}
	st, err := store.Open(cfg.Storage.Path, 3)
	if err != nil {
		t.Fatal(err)
	}
	install(t, st, "soon", now.Add(-day), now.Add(89*day))
	install(t, st, "later", now.Add(-day), now.Add(89*day))
	log := slog.New(slog.DiscardHandler)
	rep, err := report.New(cfg, report.Options{Log: log, Version: "test"})
	if err != nil {
		t.Fatal(err)
	}
	a, err := agent.New(cfg, agent.Options{Log: log, Observer: rep})
	if err != nil {
		t.Fatal(err)
	}
	defer a.Close()
	if _, err := check(context.Background(), rep, a, nil); err != nil {
		t.Fatal(err)
	}
	waitFlush(t, rep)
	got := hooks.take()
	if len(got) != 1 || got[0].Name != "soon" || got[0].Kind != "dns_persist_expiring" || got[0].Severity != "warning" ||
		!strings.Contains(got[0].Message, "(persist_until), in 10.0 days") || !strings.Contains(got[0].Message, "renewer dns-persist record soon") {
		t.Errorf("notifications %+v, want one dns_persist_expiring for soon", got)
	}
	if err := rep.Close(context.Background()); err != nil {
		t.Fatal(err)
	}
}
