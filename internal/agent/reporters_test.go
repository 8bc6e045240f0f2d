package agent

import (
	"context"
	"fmt"
	"log/slog"
	"os"
	"path/filepath"
	"sync"
	"testing"
	"testing/synctest"
	"time"

	"github.com/renewer/renewer/internal/certinfo/certtest"
	"github.com/renewer/renewer/internal/config"
	"github.com/renewer/renewer/internal/status"
	"github.com/renewer/renewer/internal/store"
)

// stuckReporter is a reporter whose notifications never get through (a
// webhook that keeps failing): Close returns only when its ctx ends.
type stuckReporter struct {
	name string
	mu   *sync.Mutex
	log  *[]string // "NAME closed after D" in the order they happened
	t0   time.Time
}

func (stuckReporter) HookRan(string, string, error)                 {}
func (stuckReporter) Finished(status.Result)                        {}
func (stuckReporter) PassDone(context.Context, []status.View, bool) {}
func (r stuckReporter) Close(ctx context.Context) error {
	<-ctx.Done()
	r.mu.Lock()
	defer r.mu.Unlock()
	*r.log = append(*r.log, fmt.Sprintf("%s closed after %s", r.name, time.Since(r.t0)))
	return ctx.Err()
}

// A reload does not wait for the replaced config's notifications: the new
// config runs at once while the old reporter finishes in the background;
// at stop, the notifications still under way get shutdown_grace, not more.
// (Before: each SIGHUP held the daemon for up to 30 seconds.)
func TestReloadDoesNotWaitForOldNotifications(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		dir := t.TempDir()
		file := filepath.Join(dir, "renewer.hcl")
		src := `storage { path = "state" }
acme {
  directory    = "https://ca.test/directory"
  accept_terms = true
}
daemon {
  jitter         = "0s"
  shutdown_grace = "5s"
}
certificate "short" {
  ari     = false
  domains = ["short.example.test"]
  challenge "http" { listen = "127.0.0.1:1" }
}
`
		if err := os.WriteFile(file, []byte(src), 0o600); err != nil {
			t.Fatal(err)
		}
		cfg, err := config.Load(file)
		if err != nil {
			t.Fatal(err)
		}
		var mu sync.Mutex
		var events []string
		t0 := time.Now()
		made := 0
		reload := make(chan struct{})
		ctx, cancel := context.WithCancel(context.Background())
		done := make(chan error, 1)
		iss := &fakeIssuer{t: t, ca: certtest.NewCA(t, "Fake CA"), validity: 90 * 24 * time.Hour}
		go func() {
			done <- RunDaemon(ctx, cfg, DaemonOptions{
				Options: Options{Log: slog.New(slog.NewTextHandler(testLog{t}, nil)), Issuer: iss},
				Load:    func() (*config.Config, error) { return config.Load(file) },
				Reload:  reload,
				NewReporter: func(*config.Config, *store.Store) (PassReporter, error) {
					made++
					return stuckReporter{name: fmt.Sprintf("reporter %d", made), mu: &mu, log: &events, t0: t0}, nil
				},
			})
		}()
		synctest.Wait()
		reload <- struct{}{}
		synctest.Wait() // the reload is done: no fake time passed
		if made != 2 {
			t.Fatalf("%d reporters made, want 2 (start, reload)", made)
		}
		time.Sleep(10 * time.Second) // the retired reporter keeps delivering
		cancel()
		if err := <-done; err != nil {
			t.Fatalf("RunDaemon: %v", err)
		}
		mu.Lock()
		defer mu.Unlock()
		// Stopped at 10s: both reporters abandoned at 10s + shutdown_grace.
		want := []string{"reporter 2 closed after 15s", "reporter 1 closed after 15s"}
		if fmt.Sprint(events) != fmt.Sprint(want) {
			t.Errorf("reporters closed: %q, want %q", events, want)
		}
	})
}
