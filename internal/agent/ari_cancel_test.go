package agent

import (
	"context"
	"fmt"
	"log/slog"
	"testing"
	"time"

	"github.com/renewer/renewer/internal/certinfo"
	"github.com/renewer/renewer/internal/certinfo/certtest"
	"github.com/renewer/renewer/internal/status"
	"github.com/renewer/renewer/internal/store"
	"github.com/renewer/renewer/internal/testca"
)

// Issue 14 #13: a renewal-information fetch cut short by the daemon's
// shutdown (its grace over, the context cancelled) is no answer from the
// CA: nothing is stored, least of all a "context canceled" error. And a
// CA known to offer no ARI gets no ARI error stored when it cannot be
// reached: it still offers none.
func TestARINoErrorStoredOnCancelOrForCAWithoutARI(t *testing.T) {
	port, err := testca.FreePort()
	if err != nil {
		t.Fatal(err)
	}
	dir := t.TempDir()
	a, cfg := setupHCL(t, dir, fmt.Sprintf(`
storage { path = "state" }
acme {
  directory    = "https://127.0.0.1:%d/dir"
  accept_terms = true
}
certificate "www" {
  domains = ["www.example.test"]
  challenge "http" { listen = "127.0.0.1:1" }
}`, port))
	c := cfg.Certificates[0]
	full, key := certtest.Issue(t, certtest.Options{Names: c.Domains})
	f, err := certinfo.Parse(full, key)
	if err != nil {
		t.Fatal(err)
	}
	now := time.Now()
	unsupported := &store.ARIState{Serial: f.Serial, Unsupported: true, FetchedAt: now.Add(-25 * time.Hour), NextFetch: now.Add(-time.Hour)}
	cancelled, cancel := context.WithCancel(context.Background())
	cancel()
	log := slog.New(slog.NewTextHandler(testLog{t}, nil))
	for _, tc := range []struct {
		name string
		ctx  context.Context
		prev *store.ARIState
	}{
		{"cancelled, nothing known", cancelled, nil},
		{"cancelled, CA without ARI", cancelled, unsupported},
		{"CA without ARI unreachable", context.Background(), unsupported},
	} {
		var prev *store.ARIState
		if tc.prev != nil {
			p := *tc.prev
			prev = &p
		}
		st := store.State{ARI: prev}
		a.fetchARI(tc.ctx, log, c, f, a.issuer(status.View{}), &st)
		switch {
		case tc.prev == nil && st.ARI != nil:
			t.Errorf("%s: stored %+v", tc.name, *st.ARI)
		case tc.prev != nil && (st.ARI == nil || st.ARI.Error != "" || !st.ARI.Unsupported):
			t.Errorf("%s: stored %+v, want the CA still without ARI and no error", tc.name, st.ARI)
		}
	}
}
