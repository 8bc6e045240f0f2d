package notify_test

import (
	"bytes"
	"context"
	"encoding/json"
	"io"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/renewer/renewer/internal/config"
	"github.com/renewer/renewer/internal/notify"
	"github.com/renewer/renewer/internal/store"
	"github.com/renewer/renewer/internal/store/disktest"
)

const (
	day         = 24 * time.Hour
	hookToken   = "T0K3N-in-the-path"
	headerToken = "Bearer h3ad3r-s3cr3t"
)

// clock is a fake clock the test moves by hand.
type clock struct {
	mu  sync.Mutex
	now time.Time
}

func (c *clock) Now() time.Time { c.mu.Lock(); defer c.mu.Unlock(); return c.now }
func (c *clock) Add(d time.Duration) {
	c.mu.Lock()
	c.now = c.now.Add(d)
	c.mu.Unlock()
}

// lockedBuffer collects log output written from delivery goroutines.
type lockedBuffer struct {
	mu sync.Mutex
	b  bytes.Buffer
}

func (l *lockedBuffer) Write(p []byte) (int, error) {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.b.Write(p)
}
func (l *lockedBuffer) String() string { l.mu.Lock(); defer l.mu.Unlock(); return l.b.String() }

// hookServer is a real HTTP server that records what webhooks POST to it.
// fail makes it answer 500 to the next n requests.
type hookServer struct {
	*httptest.Server
	mu     sync.Mutex
	bodies [][]byte
	auth   []string
	fail   int
}

func startHooks(t *testing.T) *hookServer {
	h := &hookServer{}
	h.Server = httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		body, _ := io.ReadAll(r.Body)
		h.mu.Lock()
		defer h.mu.Unlock()
		if r.Method != http.MethodPost || r.Header.Get("Content-Type") != "application/json" ||
			!strings.HasPrefix(r.Header.Get("User-Agent"), "renewer/") {
			http.Error(w, "bad request", http.StatusBadRequest)
			return
		}
		if h.fail > 0 {
			h.fail--
			http.Error(w, "upstream broken", http.StatusInternalServerError)
			return
		}
		h.bodies = append(h.bodies, body)
		h.auth = append(h.auth, r.Header.Get("Authorization"))
		w.Write([]byte("ok"))
	}))
	t.Cleanup(h.Close)
	return h
}

func (h *hookServer) events(t *testing.T) []notify.Event {
	t.Helper()
	h.mu.Lock()
	defer h.mu.Unlock()
	var out []notify.Event
	for _, b := range h.bodies {
		var e notify.Event
		if err := json.Unmarshal(b, &e); err != nil {
			t.Fatalf("webhook body %s: %v", b, err)
		}
		out = append(out, e)
	}
	return out
}

func (h *hookServer) texts(t *testing.T) []string {
	t.Helper()
	h.mu.Lock()
	defer h.mu.Unlock()
	var out []string
	for _, b := range h.bodies {
		var m map[string]string
		if err := json.Unmarshal(b, &m); err != nil || len(m) != 1 || m["text"] == "" {
			t.Fatalf("slack body is not {\"text\": ...}: %s", b)
		}
		out = append(out, m["text"])
	}
	return out
}

func (h *hookServer) count() int { h.mu.Lock(); defer h.mu.Unlock(); return len(h.bodies) }

func flush(t *testing.T, d *notify.Dispatcher) {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
	defer cancel()
	if err := d.Flush(ctx); err != nil {
		t.Fatal(err)
	}
}

func www(notAfter time.Time) notify.Event {
	return notify.Event{Subject: notify.Certificate, Name: "www", Domains: []string{"example.com", "www.example.com"},
		Serial: "abc123", NotAfter: notAfter}
}

func problem(kind notify.Kind, severity string, notAfter time.Time) notify.Event {
	return notify.Event{Kind: kind, Severity: severity, NotAfter: notAfter, Message: "www: " + string(kind), Error: "boom " + string(kind)}
}

// Every kind of event reaches a generic webhook (as JSON, with its secret
// header), a Slack-compatible webhook and an e-mail inbox behind STARTTLS
// and AUTH, each over the real protocol on loopback.
func TestEveryEventToEveryTarget(t *testing.T) {
	hooks, slack := startHooks(t), startHooks(t)
	mailSrv := startSMTP(t, false)
	var logs lockedBuffer
	clk := &clock{now: time.Date(2026, 11, 1, 12, 0, 0, 0, time.UTC)}
	all := config.NotifyKinds
	cfg := []config.Notify{
		{Name: "hook", Webhook: config.Secret(hooks.URL + "/hooks/" + hookToken), Headers: map[string]config.Secret{"Authorization": headerToken},
			On: all, Repeat: day},
		{Name: "chat", Slack: config.Secret(slack.URL + "/services/" + hookToken), On: all, Repeat: day},
		{Name: "mail", On: all, Repeat: day, Email: &config.Email{SMTP: mailSrv.Addr, TLS: "starttls", Username: mailSrv.user,
			Password: config.Secret(mailSrv.pass), From: "renewer@example.com", To: []string{"ops@example.com", "Oncall <oncall@example.com>"},
			CABundle: mailSrv.CAFile}},
	}
	d, err := notify.New(cfg, t.TempDir(), notify.Options{Log: slog.New(slog.NewTextHandler(&logs, nil)), Now: clk.Now, Host: "box1", Version: "test"})
	if err != nil {
		t.Fatal(err)
	}
	notAfter := clk.Now().Add(10 * day)
	watchAbout := notify.Event{Subject: notify.Watch, Name: "megaphone", Endpoint: "cdn.example.net:443", NotAfter: notAfter}
	d.Observe([]notify.Observation{
		{About: www(notAfter), Problems: []notify.Event{
			problem(notify.RenewalFailed, notify.Warning, notAfter),
			problem(notify.HookFailed, notify.Warning, notAfter),
			problem(notify.VerifyFailed, notify.Warning, notAfter),
			problem(notify.Expiring, notify.Critical, notAfter),
		}},
		{About: watchAbout, Problems: []notify.Event{problem(notify.WatchFailed, notify.Warning, notAfter)}},
	})
	flush(t, d)
	clk.Add(time.Minute)
	d.Observe([]notify.Observation{{About: watchAbout}}) // the watch recovered
	d.Send(notify.Event{Kind: notify.Renewed, Severity: notify.Info, Subject: notify.Certificate, Name: "www",
		Serial: "def456", NotAfter: clk.Now().Add(90 * day), Message: "www renewed"})
	flush(t, d)

	wantKinds := []string{"expiring", "hook_failed", "recovered", "renewal_failed", "renewed", "verify_failed", "watch_failed"}
	kindsOf := func(es []notify.Event) []string {
		var ks []string
		for _, e := range es {
			ks = append(ks, string(e.Kind))
		}
		slices.Sort(ks)
		return ks
	}

	// The generic webhook: the Event JSON, every field filled.
	events := hooks.events(t)
	if got := kindsOf(events); !slices.Equal(got, wantKinds) {
		t.Errorf("webhook got %v, want %v", got, wantKinds)
	}
	for _, a := range hooks.auth {
		if a != headerToken {
			t.Errorf("webhook Authorization header = %q", a)
		}
	}
	for _, e := range events {
		if e.Host != "box1" || e.Time.IsZero() || e.Severity == "" || e.Message == "" || e.Name == "" {
			t.Errorf("incomplete event %+v", e)
		}
		switch e.Kind {
		case notify.Expiring:
			if e.Severity != notify.Critical || e.Subject != notify.Certificate || e.Serial != "abc123" ||
				e.DaysLeft == nil || *e.DaysLeft != 10 || !e.NotAfter.Equal(notAfter) || !e.Since.Equal(time.Date(2026, 11, 1, 12, 0, 0, 0, time.UTC)) {
				t.Errorf("expiring event: %+v", e)
			}
		case notify.RenewalFailed:
			if e.Error != "boom renewal_failed" || !slices.Equal(e.Domains, []string{"example.com", "www.example.com"}) {
				t.Errorf("renewal_failed event: %+v", e)
			}
		case notify.Recovered:
			if e.Problem != notify.WatchFailed || e.Subject != notify.Watch || e.Endpoint != "cdn.example.net:443" || e.Severity != notify.Info ||
				!strings.Contains(e.Message, "fine again") {
				t.Errorf("recovered event: %+v", e)
			}
		case notify.Renewed:
			if e.Serial != "def456" || e.Severity != notify.Info {
				t.Errorf("renewed event: %+v", e)
			}
		}
	}

	// Slack: one {"text"} per event, with the headline.
	texts := slack.texts(t)
	if len(texts) != len(wantKinds) {
		t.Errorf("slack got %d messages, want %d", len(texts), len(wantKinds))
	}
	joined := strings.Join(texts, "\n")
	for _, want := range []string{":rotating_light: *CRITICAL www: expiring*", ":warning: *www: renewal failed*",
		":white_check_mark: *watch megaphone (cdn.example.net:443): recovered from watch failed*", "error: boom hook_failed"} {
		if !strings.Contains(joined, want) {
			t.Errorf("slack messages lack %q:\n%s", want, joined)
		}
	}

	// E-mail: one message per event, over TLS, authenticated.
	msgs := mailSrv.messages()
	var subjects []string
	for _, m := range msgs {
		subjects = append(subjects, m.Msg.Header.Get("Subject"))
		if !m.TLS || m.User != "renewer" || m.From != "renewer@example.com" ||
			!slices.Equal(m.To, []string{"ops@example.com", "oncall@example.com"}) {
			t.Errorf("mail envelope: tls=%v user=%q from=%q to=%v", m.TLS, m.User, m.From, m.To)
		}
		if m.Msg.Header.Get("X-Renewer-Event") == "" || m.Msg.Header.Get("Message-Id") == "" || m.Msg.Header.Get("Date") == "" {
			t.Errorf("mail headers: %v", m.Msg.Header)
		}
	}
	slices.Sort(subjects)
	wantSubjects := []string{
		"[renewer] CRITICAL www: expiring", "[renewer] watch megaphone (cdn.example.net:443): recovered from watch failed",
		"[renewer] watch megaphone (cdn.example.net:443): watch failed", "[renewer] www: hook failed",
		"[renewer] www: renewal failed", "[renewer] www: renewed", "[renewer] www: verify failed",
	}
	if !slices.Equal(subjects, wantSubjects) {
		t.Errorf("mail subjects:\n%q\nwant\n%q", subjects, wantSubjects)
	}
	for _, m := range msgs {
		if m.Msg.Header.Get("X-Renewer-Event") == "renewal_failed" &&
			(!strings.Contains(m.Body, "error: boom renewal_failed") || !strings.Contains(m.Body, "domains:   example.com, www.example.com") ||
				!strings.Contains(m.Body, "host:      box1")) {
			t.Errorf("renewal_failed mail body:\n%s", m.Body)
		}
	}

	for _, secret := range []string{hookToken, headerToken, mailSrv.pass} {
		if strings.Contains(logs.String(), secret) {
			t.Errorf("logs show a secret %q:\n%s", secret, logs.String())
		}
	}
	if n := strings.Count(logs.String(), "notification sent"); n != 3*len(wantKinds) {
		t.Errorf("%d notifications logged as sent, want %d:\n%s", n, 3*len(wantKinds), logs.String())
	}
}

// Implicit TLS (port 465 style) works too, and a wrong password fails
// without the password showing in the error or the logs.
func TestEmailImplicitTLSAndBadPassword(t *testing.T) {
	srv := startSMTP(t, true)
	base := config.Email{SMTP: srv.Addr, TLS: "tls", Username: "renewer", Password: config.Secret(srv.pass),
		From: "renewer@example.com", To: []string{"ops@example.com"}, CABundle: srv.CAFile}
	e, err := notify.NewEmail(base, "box1")
	if err != nil {
		t.Fatal(err)
	}
	ev := notify.Event{Kind: notify.RenewalFailed, Severity: notify.Warning, Subject: notify.Certificate, Name: "www", Message: "m", Time: time.Now()}
	if err := e.Send(context.Background(), ev); err != nil {
		t.Fatal(err)
	}
	if msgs := srv.messages(); len(msgs) != 1 || !msgs[0].TLS {
		t.Fatalf("got %d messages", len(msgs))
	}

	var logs lockedBuffer
	bad := base
	bad.Password = "wr0ng-pa55w0rd-value"
	d, err := notify.New([]config.Notify{{Name: "mail", Email: &bad, On: config.NotifyKinds, Repeat: day}}, t.TempDir(),
		notify.Options{Log: slog.New(slog.NewTextHandler(&logs, nil)), Retry: []time.Duration{time.Millisecond}})
	if err != nil {
		t.Fatal(err)
	}
	d.Send(ev)
	flush(t, d)
	out := logs.String()
	if !strings.Contains(out, "notification failed; giving up until the next check") || strings.Count(out, "notification failed") != 2 {
		t.Errorf("want one retry then giving up:\n%s", out)
	}
	if strings.Contains(out, "wr0ng-pa55w0rd-value") {
		t.Errorf("the password shows in the logs:\n%s", out)
	}
	if len(srv.messages()) != 1 {
		t.Error("a message went through with a wrong password")
	}

	// The server's certificate must verify: without the CA bundle it does not.
	untrusted := base
	untrusted.CABundle = ""
	e, _ = notify.NewEmail(untrusted, "box1")
	if err := e.Send(context.Background(), ev); err == nil || !strings.Contains(err.Error(), "certificate") {
		t.Errorf("untrusted server: %v", err)
	}
}

// Deduplication and escalation with a fake clock: the same problem at most
// every `repeat`, more often as expiry nears, at once when it gets worse;
// "recovered" once when it ends; all of it remembered across a restart.
func TestDedupWithFakeClock(t *testing.T) {
	hooks := startHooks(t)
	dir := t.TempDir()
	start := time.Date(2026, 11, 1, 0, 0, 0, 0, time.UTC)
	clk := &clock{now: start}
	cfg := []config.Notify{{Name: "hook", Webhook: config.Secret(hooks.URL + "/" + hookToken), On: config.DefaultNotifyOn, Repeat: day}}
	open := func() *notify.Dispatcher {
		d, err := notify.New(cfg, dir, notify.Options{Now: clk.Now})
		if err != nil {
			t.Fatal(err)
		}
		return d
	}
	d := open()
	far := start.Add(60 * day)
	observe := func(problems ...notify.Event) {
		t.Helper()
		d.Observe([]notify.Observation{{About: www(far), Problems: problems}})
		flush(t, d)
	}
	expect := func(step string, n int) {
		t.Helper()
		if got := hooks.count(); got != n {
			t.Fatalf("%s: %d notifications so far, want %d (%v)", step, got, n, hooks.events(t))
		}
	}

	failed := problem(notify.RenewalFailed, notify.Warning, far)
	observe(failed)
	expect("first failure", 1)
	clk.Add(time.Hour)
	observe(failed)
	expect("same failure an hour later", 1)
	clk.Add(22 * time.Hour)
	observe(failed)
	expect("23h after the first", 1)

	// A restart (a new Dispatcher on the same directory) remembers.
	d = open()
	observe(failed)
	expect("after a restart, still within repeat", 1)
	clk.Add(time.Hour)
	observe(failed)
	expect("24h after the first", 2)

	// Other certificates are other problems; unobserved ones are left alone.
	d.Observe([]notify.Observation{{About: notify.Event{Subject: notify.Certificate, Name: "api"}, Problems: []notify.Event{failed}}})
	flush(t, d)
	expect("api fails too", 3)
	observe(failed) // www observed alone: api's problem must not "recover"
	expect("www alone", 3)

	// "renewed" is not in DefaultNotifyOn.
	d.Send(notify.Event{Kind: notify.Renewed, Subject: notify.Certificate, Name: "www"})
	flush(t, d)
	expect("renewed is off by default", 3)

	// Escalation: 4 days before expiry the interval is a day; 2 days
	// before, 12 hours; under 4 hours, every hour.
	clk.now = start.Add(40 * day)
	near := clk.Now().Add(4 * day)
	exp := problem(notify.Expiring, notify.Warning, near)
	observe(failed, exp)
	expect("expiring, 4 days left (and the failure, 16 days later)", 5)
	clk.now = start.Add(40 * day).Add(17 * time.Hour) // 3d7h left: interval min(24h, 19h45m)
	observe(failed, exp)
	expect("17h later: not yet", 5)
	clk.now = start.Add(40 * day).Add(20 * time.Hour) // 3d4h left: interval 19h: due; the failure's 24h is not
	observe(failed, exp)
	expect("20h later: expiring again", 6)
	clk.now = start.Add(41 * day).Add(20 * time.Hour) // 2d4h left: interval 13h since 20h: due
	observe(failed, exp)
	expect("a day later: both again", 8)

	// Worse is sent at once, whatever the interval.
	clk.Add(time.Minute)
	crit := problem(notify.Expiring, notify.Critical, near)
	observe(failed, crit)
	expect("now critical", 9)
	clk.Add(time.Minute)
	observe(failed, crit)
	expect("still critical, a minute later", 9)

	// Hours before expiry: hourly.
	clk.now = near.Add(-3 * time.Hour)
	observe(failed, crit)
	expect("3h before expiry", 11)
	clk.Add(59 * time.Minute)
	observe(failed, crit)
	expect("59 minutes later", 11)
	clk.Add(time.Minute)
	observe(failed, crit)
	expect("an hour later", 12)

	// The failure ends: one "recovered"; the expiry problem stays.
	observe(crit)
	expect("renewal works again", 13)
	last := hooks.events(t)[12]
	if last.Kind != notify.Recovered || last.Problem != notify.RenewalFailed || !last.Since.Equal(start) {
		t.Errorf("recovered event: %+v", last)
	}
	observe(crit)
	observe()
	expect("both over", 14)
	observe()
	expect("still fine", 14)

	// A new failure after recovery is news at once.
	observe(failed)
	expect("fails again", 15)
}

// A failing notifier is retried, never blocks the caller, and does not
// lose the problem: a delivery that gave up is tried again on the next
// observation, however soon.
func TestFailingNotifierRetriedNotBlocking(t *testing.T) {
	hooks := startHooks(t)
	var logs lockedBuffer
	clk := &clock{now: time.Date(2026, 11, 1, 0, 0, 0, 0, time.UTC)}
	cfg := []config.Notify{{Name: "hook", Webhook: config.Secret(hooks.URL + "/" + hookToken),
		Headers: map[string]config.Secret{"Authorization": headerToken}, On: config.DefaultNotifyOn, Repeat: day}}
	d, err := notify.New(cfg, t.TempDir(), notify.Options{Now: clk.Now, Log: slog.New(slog.NewTextHandler(&logs, nil)),
		Retry: []time.Duration{10 * time.Millisecond, 10 * time.Millisecond}})
	if err != nil {
		t.Fatal(err)
	}
	obs := []notify.Observation{{About: www(clk.Now().Add(30 * day)), Problems: []notify.Event{problem(notify.RenewalFailed, notify.Warning, time.Time{})}}}

	hooks.mu.Lock()
	hooks.fail = 2
	hooks.mu.Unlock()
	d.Observe(obs)
	flush(t, d)
	if hooks.count() != 1 || strings.Count(logs.String(), "notification failed; retrying") != 2 {
		t.Fatalf("want delivery on the third attempt; got %d\n%s", hooks.count(), logs.String())
	}

	// Three failures in a row: it gives up for now...
	clk.Add(25 * time.Hour)
	hooks.mu.Lock()
	hooks.fail = 3
	hooks.mu.Unlock()
	d.Observe(obs)
	flush(t, d)
	if hooks.count() != 1 || !strings.Contains(logs.String(), "giving up until the next check") {
		t.Fatalf("want a give-up; got %d\n%s", hooks.count(), logs.String())
	}
	// ...and tries again at the next observation, a minute later.
	clk.Add(time.Minute)
	d.Observe(obs)
	flush(t, d)
	if hooks.count() != 2 {
		t.Fatalf("the problem was lost after a failed delivery: %d", hooks.count())
	}
	out := logs.String()
	if strings.Contains(out, hookToken) || strings.Contains(out, headerToken) || !strings.Contains(out, hooks.URL+"/[redacted]: 500 Internal Server Error") {
		t.Errorf("logs must show the host but not the token:\n%s", out)
	}

	// A notifier that hangs does not hold up Observe; Close gives up on it
	// when its context ends.
	block := make(chan struct{})
	hang := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		select {
		case <-block:
		case <-r.Context().Done():
		}
	}))
	defer hang.Close()
	defer close(block)
	d2, err := notify.New([]config.Notify{{Name: "slow", Webhook: config.Secret(hang.URL), On: config.DefaultNotifyOn, Repeat: day}},
		t.TempDir(), notify.Options{Now: clk.Now})
	if err != nil {
		t.Fatal(err)
	}
	began := time.Now()
	d2.Observe(obs)
	if took := time.Since(began); took > time.Second {
		t.Errorf("Observe took %s with a hanging notifier", took)
	}
	ctx, cancel := context.WithTimeout(context.Background(), 100*time.Millisecond)
	defer cancel()
	if err := d2.Close(ctx); err == nil {
		t.Error("Close reported no abandoned delivery")
	}
	if took := time.Since(began); took > 5*time.Second {
		t.Errorf("Close took %s", took)
	}
}

// `on` filters what a notifier gets; recovered goes only to notifiers that
// were told of the problem.
func TestOnFilter(t *testing.T) {
	failures, expiring := startHooks(t), startHooks(t)
	clk := &clock{now: time.Date(2026, 11, 1, 0, 0, 0, 0, time.UTC)}
	d, err := notify.New([]config.Notify{
		{Name: "failures", Webhook: config.Secret(failures.URL), On: config.NotifyGroups["failure"], Repeat: day},
		{Name: "expiring", Webhook: config.Secret(expiring.URL), On: []string{"expiring", "recovered"}, Repeat: day},
	}, t.TempDir(), notify.Options{Now: clk.Now})
	if err != nil {
		t.Fatal(err)
	}
	na := clk.Now().Add(5 * day)
	d.Observe([]notify.Observation{{About: www(na), Problems: []notify.Event{
		problem(notify.RenewalFailed, notify.Warning, na), problem(notify.Expiring, notify.Warning, na)}}})
	flush(t, d)
	d.Observe([]notify.Observation{{About: www(na)}})
	flush(t, d)
	got := func(h *hookServer) (out []notify.Kind) {
		for _, e := range h.events(t) {
			out = append(out, e.Kind)
		}
		return out
	}
	if k := got(failures); !slices.Equal(k, []notify.Kind{notify.RenewalFailed}) {
		t.Errorf("failures notifier got %v", k)
	}
	if k := got(expiring); !slices.Equal(k, []notify.Kind{notify.Expiring, notify.Recovered}) {
		t.Errorf("expiring notifier got %v", k)
	}
}

func TestInterval(t *testing.T) {
	now := time.Date(2026, 1, 1, 0, 0, 0, 0, time.UTC)
	for _, tc := range []struct {
		left, repeat, want time.Duration
	}{
		{0, day, day}, // no expiry known (notAfter zero, below)
		{60 * day, day, day},
		{4 * day, day, day},
		{2 * day, day, 12 * time.Hour},
		{8 * time.Hour, day, 2 * time.Hour},
		{2 * time.Hour, day, time.Hour},
		{-day, day, time.Hour},
		{-day, 10 * time.Minute, 10 * time.Minute},
		{60 * day, 7 * day, 7 * day},
		{8 * day, 7 * day, 2 * day},
	} {
		na := now.Add(tc.left)
		if tc.left == 0 {
			na = time.Time{}
		}
		if got := notify.Interval(tc.repeat, na, now); got != tc.want {
			t.Errorf("Interval(repeat %s, %s left) = %s, want %s", tc.repeat, tc.left, got, tc.want)
		}
	}
}

// The deduplication memory goes through the file system it is given (the
// store's, in the binary): a full disk there is logged and does not stop
// the notification; once the disk takes writes the memory is saved, so a
// restart does not send the same problem again.
func TestStateThroughStoreFS(t *testing.T) {
	hooks := startHooks(t)
	root := t.TempDir()
	disk := disktest.New()
	st, err := store.OpenFS(root, 3, disk)
	if err != nil {
		t.Fatal(err)
	}
	dir := filepath.Join(root, "notify")
	clk := &clock{now: time.Date(2026, 11, 1, 0, 0, 0, 0, time.UTC)}
	cfg := []config.Notify{{Name: "hook", Webhook: config.Secret(hooks.URL + "/" + hookToken), On: config.DefaultNotifyOn, Repeat: day}}
	var logs bytes.Buffer
	open := func() *notify.Dispatcher {
		d, err := notify.New(cfg, dir, notify.Options{Now: clk.Now, WriteFile: st.WriteFile, Log: slog.New(slog.NewTextHandler(&logs, nil))})
		if err != nil {
			t.Fatal(err)
		}
		return d
	}
	far := clk.now.Add(60 * day)
	failed := problem(notify.RenewalFailed, notify.Warning, far)

	disk.Fail(disktest.Fault{Op: disktest.Write, Path: "/notify/", Err: syscall.ENOSPC})
	d := open()
	d.Observe([]notify.Observation{{About: www(far), Problems: []notify.Event{failed}}})
	flush(t, d)
	if hooks.count() != 1 || !strings.Contains(logs.String(), "notify state: save") || !strings.Contains(logs.String(), syscall.ENOSPC.Error()) {
		t.Fatalf("with the disk full: %d notifications; log:\n%s", hooks.count(), logs.String())
	}
	if _, err := os.Stat(filepath.Join(dir, "state.json")); err == nil {
		t.Error("state.json written although the disk refused it")
	}
	disk.Heal()
	clk.Add(25 * time.Hour) // due again: sent, and now remembered
	d.Observe([]notify.Observation{{About: www(far), Problems: []notify.Event{failed}}})
	flush(t, d)
	if _, err := os.Stat(filepath.Join(dir, "state.json")); err != nil {
		t.Fatalf("state.json after the disk healed: %v", err)
	}
	n := hooks.count()
	d = open() // a restart remembers it
	d.Observe([]notify.Observation{{About: www(far), Problems: []notify.Event{failed}}})
	flush(t, d)
	if hooks.count() != n {
		t.Errorf("sent again after a restart: %d notifications, want %d", hooks.count(), n)
	}
}
