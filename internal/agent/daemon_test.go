package agent

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/renewer/renewer/internal/certinfo"
	"github.com/renewer/renewer/internal/config"
	"github.com/renewer/renewer/internal/testca"
)

// syncLog collects log lines for assertions.
type syncLog struct {
	t  *testing.T
	mu sync.Mutex
	b  strings.Builder
}

func (l *syncLog) Write(p []byte) (int, error) {
	l.mu.Lock()
	defer l.mu.Unlock()
	l.b.Write(p)
	l.t.Log(strings.TrimSpace(string(p)))
	return len(p), nil
}

func (l *syncLog) String() string {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.b.String()
}

// runDaemon runs RunDaemon on cfg in the background, logging into the
// returned log; stop ends it and returns its error.
func runDaemon(t *testing.T, cfg *config.Config) (*syncLog, func() error) {
	logs := &syncLog{t: t}
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() {
		done <- RunDaemon(ctx, cfg, DaemonOptions{Options: Options{Log: slog.New(slog.NewTextHandler(logs, nil))}})
	}()
	return logs, func() error { cancel(); return <-done }
}

// A reload with a broken config keeps the daemon on the old one; a valid
// reload adds a certificate, which is then obtained.
func TestDaemonReload(t *testing.T) {
	t.Parallel()
	ca := testca.StartT(t, testca.Options{})
	cert := func(name string) string {
		return fmt.Sprintf("certificate %q {\n  domains = [%q]\n  challenge \"http\" { listen = \"127.0.0.1:%d\" }\n}\n", name, name+".example.test", ca.HTTPPort)
	}
	_, cfg := setup(t, ca, "daemon { jitter = \"0s\" }\n"+cert("one"))
	cfg2, err := config.Parse(cfg.File, []byte(strings.Replace(mustRead(t, cfg.File), cert("one"), cert("one")+cert("two"), 1)))
	if err != nil {
		t.Fatal(err)
	}

	logs := &syncLog{t: t}
	reload := make(chan struct{})
	next := make(chan *config.Config, 1)
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	notes := make(chan string, 100)
	done := make(chan error, 1)
	go func() {
		done <- RunDaemon(ctx, cfg, DaemonOptions{
			Options: Options{Log: slog.New(slog.NewTextHandler(logs, nil))},
			Reload:  reload,
			Load: func() (*config.Config, error) {
				if c := <-next; c != nil {
					return c, nil
				}
				return nil, errors.New("renewer.hcl:3:5: Unsupported argument")
			},
			Notify: func(s string) { notes <- s },
		})
	}()
	st, _ := openStore(cfg)
	waitLive(t, st, "one")
	if n := <-notes; n != "READY=1" {
		t.Errorf("first notification %q, want READY=1", n)
	}

	next <- nil
	reload <- struct{}{}
	waitLog(t, logs, "config reload failed; keeping the running config")
	next <- cfg2
	reload <- struct{}{}
	waitLive(t, st, "two")
	cancel()
	if err := <-done; err != nil {
		t.Fatal(err)
	}
}

// Shutdown while an issuance is under way: with a grace period too short
// for it, the daemon returns promptly, nothing half-written is live, the
// cancelled attempt does not count as a failure, and the next run
// completes the work.
func TestDaemonShutdownMidIssuance(t *testing.T) {
	t.Parallel()
	ca := testca.StartT(t, testca.Options{})
	_, cfg := setup(t, ca, fmt.Sprintf(`
daemon { shutdown_grace = "1ms" }
certificate "www" {
  domains = ["a.example.test", "b.example.test", "c.example.test"]
  challenge "http" { listen = "127.0.0.1:%d" }
}`, ca.HTTPPort))
	logs, stop := runDaemon(t, cfg)
	waitLog(t, logs, "msg=renewing")
	start := time.Now()
	if err := stop(); err != nil {
		t.Fatal(err)
	}
	if d := time.Since(start); d > 5*time.Second {
		t.Errorf("shutdown took %s", d)
	}
	st, _ := openStore(cfg)
	if v, err := st.Live("www"); err == nil {
		if _, err := certinfo.Load(v.Fullchain, v.Key); err != nil {
			t.Errorf("live certificate after shutdown is broken: %v", err)
		}
	}
	state, err := st.LoadState("www")
	if err != nil || state.Failures != 0 || !state.NextAttempt.IsZero() {
		t.Errorf("state after shutdown: %+v, %v", state, err)
	}
	a, err := New(cfg, Options{})
	if err != nil {
		t.Fatal(err)
	}
	defer a.Close()
	res, _ := a.RunOnce(context.Background(), PassOptions{})
	if !res[0].OK() {
		t.Fatalf("next run: %+v", res[0])
	}
}
