package cli

import (
	"context"
	"encoding/json"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/prometheus/common/expfmt"
	"github.com/prometheus/common/model"

	"github.com/renewer/renewer/internal/certinfo/certtest"
	"github.com/renewer/renewer/internal/notify"
	"github.com/renewer/renewer/internal/watch/watchtest"
)

// lockedWriter collects the daemon's log written from several goroutines.
type lockedWriter struct {
	mu sync.Mutex
	b  strings.Builder
}

func (w *lockedWriter) Write(p []byte) (int, error) {
	w.mu.Lock()
	defer w.mu.Unlock()
	return w.b.Write(p)
}
func (w *lockedWriter) String() string { w.mu.Lock(); defer w.mu.Unlock(); return w.b.String() }

// The daemon reports after its pass: a watched endpoint close to expiry is
// notified and shows in the metrics it serves over HTTP.
func TestDaemonReports(t *testing.T) {
	now := time.Now()
	srv := watchtest.Serve(t, certtest.Options{Names: []string{"cdn.example.net"}, NotBefore: now.Add(-360 * day), NotAfter: now.Add(5 * day)})
	events := make(chan notify.Event, 10)
	hook := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		var e notify.Event
		body, _ := io.ReadAll(r.Body)
		if err := json.Unmarshal(body, &e); err == nil {
			events <- e
		}
	}))
	defer hook.Close()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	addr := ln.Addr().String()
	ln.Close()

	dir := t.TempDir()
	src := fmt.Sprintf(`
storage { path = "state" }
acme { accept_terms = true }
watch "megaphone" {
  endpoint    = %q
  server_name = "cdn.example.net"
  ca_bundle   = %q
}
notify "ops" { webhook = %q }
metrics { listen = %q }
`, srv.Endpoint, srv.CAFile, hook.URL+"/T0K3N", addr)
	if err := os.WriteFile(filepath.Join(dir, "renewer.hcl"), []byte(src), 0o600); err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	var stderr lockedWriter
	done := make(chan int, 1)
	go func() {
		e := &env{stdout: io.Discard, stderr: &stderr, getenv: func(k string) string {
			if k == "RENEWER_CONFIG" {
				return filepath.Join(dir, "renewer.hcl")
			}
			return ""
		}}
		done <- run(ctx, e, []string{"run"})
	}()

	select {
	case e := <-events:
		if e.Kind != notify.Expiring || e.Name != "megaphone" || e.Severity != notify.Critical {
			t.Errorf("notification: %+v", e)
		}
	case <-time.After(30 * time.Second):
		t.Fatalf("no notification in 30s\n%s", stderr.String())
	}
	resp, err := http.Get("http://" + addr + "/metrics")
	if err != nil {
		t.Fatal(err)
	}
	p := expfmt.NewTextParser(model.UTF8Validation)
	fams, err := p.TextToMetricFamilies(resp.Body)
	resp.Body.Close()
	if err != nil {
		t.Fatal(err)
	}
	f := fams["renewer_watch_not_after_timestamp_seconds"]
	if f == nil || len(f.Metric) != 1 || int64(f.Metric[0].GetGauge().GetValue()) != now.Add(5*day).Unix() {
		t.Errorf("watch metric: %v", f)
	}
	cancel()
	if code := <-done; code != ExitOK {
		t.Errorf("run exit %d\n%s", code, stderr.String())
	}
	if strings.Contains(stderr.String(), "T0K3N") {
		t.Errorf("the webhook token is in the log:\n%s", stderr.String())
	}
}
