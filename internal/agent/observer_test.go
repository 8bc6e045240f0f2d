package agent

import (
	"bytes"
	"context"
	"fmt"
	"os"
	"path/filepath"
	"slices"
	"sync"
	"testing"
	"time"

	"github.com/renewer/renewer/internal/certinfo/certtest"
	"github.com/renewer/renewer/internal/config"
	"github.com/renewer/renewer/internal/status"
	"github.com/renewer/renewer/internal/store"
)

type recorder struct {
	mu    sync.Mutex
	hooks []string
	done  []status.Result
	seen  map[string]status.View
}

func (r *recorder) PassDone(_ context.Context, certs []status.View, complete bool) {
	r.mu.Lock()
	defer r.mu.Unlock()
	for _, in := range certs {
		if _, twice := r.seen[in.Cert.Name]; twice {
			in.Problem = fmt.Errorf("reported twice in one pass")
		}
		r.seen[in.Cert.Name] = in
	}
}

func (r *recorder) HookRan(cert, hook string, err error) {
	r.mu.Lock()
	defer r.mu.Unlock()
	r.hooks = append(r.hooks, fmt.Sprintf("%s/%s ok=%v", cert, hook, err == nil))
}

func (r *recorder) Finished(res status.Result) {
	r.mu.Lock()
	defer r.mu.Unlock()
	r.done = append(r.done, res)
}

// The observer hears of every hook run and every result of a pass (no CA
// needed: a pending deploy is retried, and an unreachable CA fails).
func TestObserverSeesHooksAndResults(t *testing.T) {
	dir := t.TempDir()
	src := `
storage { path = "state" }
acme {
  directory    = "https://127.0.0.1:1/directory"
  accept_terms = true
}
certificate "pending" {
  domains = ["pending.example.test"]
  challenge "http" { listen = "127.0.0.1:1" }
  hook "ok"     { command = ["true"] }
  hook "broken" { command = ["false"] }
}
certificate "missing" {
  domains = ["missing.example.test"]
  challenge "http" { listen = "127.0.0.1:1" }
}
`
	file := filepath.Join(dir, "renewer.hcl")
	if err := os.WriteFile(file, []byte(src), 0o600); err != nil {
		t.Fatal(err)
	}
	cfg, err := config.Load(file)
	if err != nil {
		t.Fatal(err)
	}
	// An installed certificate whose hooks have not run yet.
	st, err := store.Open(cfg.Storage.Path, 3)
	if err != nil {
		t.Fatal(err)
	}
	full, key := certtest.Issue(t, certtest.Options{Names: []string{"pending.example.test"}})
	end := bytes.Index(full, []byte("-----END CERTIFICATE-----\n")) + len("-----END CERTIFICATE-----\n")
	if _, err := st.Install("pending", []string{"pending.example.test"}, store.Bundle{Cert: full[:end], Chain: full[end:], Key: key}, time.Now()); err != nil {
		t.Fatal(err)
	}

	rec := &recorder{seen: map[string]status.View{}}
	a, err := New(cfg, Options{Observer: rec})
	if err != nil {
		t.Fatal(err)
	}
	defer a.Close()
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	if _, err := a.RunOnce(ctx, PassOptions{}); err != nil {
		t.Fatal(err)
	}
	if want := []string{"pending/ok ok=true", "pending/broken ok=false"}; !slices.Equal(rec.hooks, want) {
		t.Errorf("hook runs %v, want %v", rec.hooks, want)
	}
	if len(rec.done) != 2 || rec.done[0].Name != "pending" || rec.done[0].Action != status.Applied || len(rec.done[0].HookErrs) != 1 ||
		rec.done[1].Name != "missing" || rec.done[1].Action != status.Failed || rec.done[1].Err == nil {
		t.Errorf("results: %+v", rec.done)
	}

	// Each certificate's last inspection, as the pass left it: the failure
	// is already counted in the one for "missing".
	if in := rec.seen["pending"]; in.Facts == nil || in.Problem != nil {
		t.Errorf("pending inspected as %+v", in)
	}
	if in := rec.seen["missing"]; in.State.Failures != 1 || in.Problem != nil {
		t.Errorf("missing inspected with %d failures, problem %v", in.State.Failures, in.Problem)
	}
	if len(rec.seen) != 2 {
		t.Errorf("inspections of %d certificates, want 2", len(rec.seen))
	}

	// A dry run is not reported: nothing real happened.
	rec.done, rec.seen = nil, map[string]status.View{}
	if _, err := a.RunOnce(ctx, PassOptions{DryRun: true, Names: []string{"missing"}}); err != nil {
		t.Fatal(err)
	}
	if len(rec.done) != 0 || len(rec.seen) != 0 {
		t.Errorf("dry run reported: %+v, inspections %v", rec.done, rec.seen)
	}
}
