package notify

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"log/slog"
	"net/http"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"sync"
	"time"

	"github.com/gofrs/flock"
	"github.com/google/renameio/v2"

	"github.com/renewer/renewer/internal/config"
)

// Defaults of Options.
var (
	DefaultRetry   = []time.Duration{10 * time.Second, time.Minute}
	DefaultTimeout = 30 * time.Second
)

// forgetAfter: a problem not seen for this long is forgotten without a
// "recovered" (its certificate or watch left the config).
const forgetAfter = 30 * 24 * time.Hour

// Options shape a Dispatcher. Zero values get defaults.
type Options struct {
	Log     *slog.Logger
	Now     func() time.Time // the clock of deduplication and escalation
	Client  *http.Client     // for webhooks; default: DefaultTimeout per request
	Retry   []time.Duration  // waits between the attempts of one delivery; default DefaultRetry
	Timeout time.Duration    // per attempt; default DefaultTimeout
	Host    string           // this machine's name; default os.Hostname()
	Version string           // for the User-Agent
	// WriteFile replaces the state file atomically; nil: renameio's. The
	// binary passes its store's, so the disk-fault tests reach it.
	WriteFile func(path string, data []byte, perm os.FileMode) error
}

// Dispatcher sends events to the configured notifiers, deduplicated.
type Dispatcher struct {
	notifiers []*notifier
	dir       string // state.json and its lock live here
	lock      *flock.Flock
	log       *slog.Logger
	now       func() time.Time
	write     func(path string, data []byte, perm os.FileMode) error
	retry     []time.Duration
	timeout   time.Duration
	host      string

	ctx    context.Context // deliveries end with it
	cancel context.CancelFunc
	wg     sync.WaitGroup

	mu       sync.Mutex      // state file updates within the process; inflight
	inflight map[string]bool // problem keys being delivered
}

type notifier struct {
	name    string
	target  string // "webhook", "slack" or "email", for logs
	on      map[Kind]bool
	repeat  time.Duration
	sender  Sender
	secrets []string // never to be logged
}

// New builds the notifiers of ns. Deduplication state is kept in dir
// (created 0700), shared by every renewer process using it.
func New(ns []config.Notify, dir string, o Options) (*Dispatcher, error) {
	if o.Log == nil {
		o.Log = slog.New(slog.DiscardHandler)
	}
	if o.Now == nil {
		o.Now = time.Now
	}
	if o.Timeout <= 0 {
		o.Timeout = DefaultTimeout
	}
	if o.Client == nil {
		o.Client = &http.Client{Timeout: o.Timeout}
	}
	if o.Retry == nil {
		o.Retry = DefaultRetry
	}
	if o.Host == "" {
		o.Host, _ = os.Hostname()
	}
	if err := os.MkdirAll(dir, 0o700); err != nil {
		return nil, fmt.Errorf("notify: %w", err)
	}
	d := &Dispatcher{
		dir: dir, lock: flock.New(filepath.Join(dir, "state.lock")),
		log: o.Log, now: o.Now, retry: o.Retry, timeout: o.Timeout, host: o.Host,
		inflight: map[string]bool{}, write: o.WriteFile,
	}
	if d.write == nil {
		d.write = func(path string, data []byte, perm os.FileMode) error { return renameio.WriteFile(path, data, perm) }
	}
	d.ctx, d.cancel = context.WithCancel(context.Background())
	agent := "renewer/" + o.Version
	for _, c := range ns {
		n := &notifier{name: c.Name, on: map[Kind]bool{}, repeat: c.Repeat}
		for _, k := range c.On {
			n.on[Kind(k)] = true
		}
		switch {
		case c.Webhook != "":
			h := map[string]string{}
			for k, v := range c.Headers {
				h[k] = string(v)
				n.secrets = append(n.secrets, string(v))
			}
			n.target, n.sender = "webhook", &Webhook{URL: string(c.Webhook), Headers: h, Client: o.Client, Agent: agent}
			n.secrets = append(n.secrets, urlSecrets(string(c.Webhook))...)
		case c.Slack != "":
			n.target, n.sender = "slack", &Slack{URL: string(c.Slack), Client: o.Client, Agent: agent}
			n.secrets = append(n.secrets, urlSecrets(string(c.Slack))...)
		case c.Email != nil:
			e, err := NewEmail(*c.Email, o.Host)
			if err != nil {
				return nil, fmt.Errorf("notify %q: %w", c.Name, err)
			}
			n.target, n.sender = "email", e
			if c.Email.Password != "" {
				n.secrets = append(n.secrets, string(c.Email.Password))
			}
		default:
			return nil, fmt.Errorf("notify %q: no target", c.Name)
		}
		d.notifiers = append(d.notifiers, n)
	}
	return d, nil
}

// urlSecrets are the parts of a URL that may hold a token: all of it, its
// path, its query, its user info.
func urlSecrets(raw string) []string {
	out := []string{raw}
	if i := strings.Index(raw, "://"); i >= 0 {
		rest := raw[i+3:]
		if j := strings.IndexAny(rest, "/?#"); j >= 0 {
			out = append(out, rest[j:])
			if len(rest[j:]) > 1 {
				out = append(out, rest[j+1:])
			}
		}
		if j := strings.Index(rest, "@"); j >= 0 {
			out = append(out, rest[:j])
		}
	}
	return out
}

// redact removes every secret of n from s.
func (n *notifier) redact(s string) string {
	secrets := slices.Clone(n.secrets)
	slices.SortFunc(secrets, func(a, b string) int { return len(b) - len(a) }) // longest first
	for _, sec := range secrets {
		if len(sec) >= 4 {
			s = strings.ReplaceAll(s, sec, config.Redacted)
		}
	}
	return s
}

// Observation is everything wrong with one subject (a certificate or a
// watch) right now. About names it (Subject, Name) and gives the details a
// "recovered" event carries (Endpoint, Domains, Serial, NotAfter); Problems
// are the problem events that hold now, at most one of each Kind. An
// Observation without problems says the subject is fine.
type Observation struct {
	About    Event
	Problems []Event
}

// Observe takes what is true now for some subjects and sends what needs
// sending: each problem the first time it is seen, again once its interval
// (see Interval) has passed or when it became more severe; and "recovered"
// for each notified problem of these subjects that no longer holds. Subjects
// not in obs are left alone. Deliveries happen in the background.
func (d *Dispatcher) Observe(obs []Observation) {
	now := d.now()
	var out []delivery
	d.update(func(st *stateFile) {
		for _, ob := range obs {
			for _, n := range d.notifiers {
				out = append(out, d.observeOne(st, n, ob, now)...)
			}
		}
		for k, r := range st.Problems {
			if now.Sub(r.LastSeen) > forgetAfter {
				delete(st.Problems, k)
			}
		}
	})
	d.start(out)
}

// observeOne updates the records of one notifier and one subject; d.mu is held.
func (d *Dispatcher) observeOne(st *stateFile, n *notifier, ob Observation, now time.Time) []delivery {
	var out []delivery
	active := map[Kind]bool{}
	for _, p := range ob.Problems {
		active[p.Kind] = true
		if !n.on[p.Kind] {
			continue
		}
		k := problemKey(n.name, ob.About.Subject, ob.About.Name, p.Kind)
		r, seen := st.Problems[k]
		if !seen {
			r.Since = now
		}
		r.LastSeen = now
		st.Problems[k] = r
		if d.inflight[k] {
			continue
		}
		due := r.LastSent.IsZero() || now.Sub(r.LastSent) >= Interval(n.repeat, p.NotAfter, now) ||
			severityRank(p.Severity) > severityRank(r.Severity)
		if !due {
			continue
		}
		ev := d.fill(p, ob.About, now)
		ev.Since = r.Since
		d.inflight[k] = true
		out = append(out, delivery{n: n, key: k, ev: ev})
	}
	prefix := problemKey(n.name, ob.About.Subject, ob.About.Name, "")
	for k, r := range st.Problems {
		kind, ok := strings.CutPrefix(k, prefix)
		if !ok || active[Kind(kind)] {
			continue
		}
		delete(st.Problems, k)
		if r.LastSent.IsZero() || !n.on[Recovered] {
			continue
		}
		ev := d.fill(Event{Kind: Recovered, Severity: Info, Problem: Kind(kind), Since: r.Since}, ob.About, now)
		ev.Message = fmt.Sprintf("%s is fine again: %s is over (first seen %s).", subjectLine(ev),
			strings.ReplaceAll(kind, "_", " "), r.Since.UTC().Format(time.RFC3339))
		out = append(out, delivery{n: n, ev: ev})
	}
	return out
}

func subjectLine(e Event) string {
	switch e.Subject {
	case Watch:
		return fmt.Sprintf("Watched endpoint %s (%s)", e.Name, e.Endpoint)
	case Account:
		return "ACME account at " + e.Name
	}
	if e.Subject == Fleet {
		return "The fleet's certificate " + e.Name
	}
	return "Certificate " + e.Name
}

// Send delivers a one-off event (such as Renewed) to every notifier whose
// `on` lists its kind, without deduplication.
func (d *Dispatcher) Send(e Event) {
	now := d.now()
	e = d.fill(e, e, now)
	var out []delivery
	for _, n := range d.notifiers {
		if n.on[e.Kind] {
			out = append(out, delivery{n: n, ev: e})
		}
	}
	d.start(out)
}

// fill completes e with the subject fields of about, the time and the host.
func (d *Dispatcher) fill(e, about Event, now time.Time) Event {
	e.Subject, e.Name = about.Subject, about.Name
	if e.Endpoint == "" {
		e.Endpoint = about.Endpoint
	}
	if e.Domains == nil {
		e.Domains = about.Domains
	}
	if e.Serial == "" {
		e.Serial = about.Serial
	}
	if e.NotAfter.IsZero() {
		e.NotAfter = about.NotAfter
	}
	if e.DaysLeft == nil {
		e.DaysLeft = DaysLeft(e.NotAfter, now)
	}
	if e.Severity == "" {
		e.Severity = Warning
	}
	if e.Message == "" {
		e.Message = e.Title()
	}
	e.Time, e.Host = now, d.host
	return e
}

type delivery struct {
	n   *notifier
	key string // the problem's record, updated on success; "" for one-off events
	ev  Event
}

func (d *Dispatcher) start(ds []delivery) {
	for _, dl := range ds {
		d.wg.Add(1)
		go d.deliver(dl)
	}
}

// deliver tries dl up to 1+len(retry) times. On success the problem's
// record notes it; on final failure the record is left unsent, so the next
// Observe tries again.
func (d *Dispatcher) deliver(dl delivery) {
	defer d.wg.Done()
	defer func() {
		if dl.key != "" {
			d.mu.Lock()
			delete(d.inflight, dl.key)
			d.mu.Unlock()
		}
	}()
	subject := "cert"
	if dl.ev.Subject == Watch {
		subject = "watch"
	}
	log := d.log.With("notifier", dl.n.name, "target", dl.n.target, "event", string(dl.ev.Kind), subject, dl.ev.Name)
	for attempt := 1; ; attempt++ {
		ctx, cancel := context.WithTimeout(d.ctx, d.timeout)
		err := dl.n.sender.Send(ctx, dl.ev)
		cancel()
		if err == nil {
			log.Info("notification sent", "severity", dl.ev.Severity)
			if dl.key != "" {
				d.update(func(st *stateFile) {
					if r, ok := st.Problems[dl.key]; ok {
						r.LastSent, r.Severity, r.Sent = d.now(), dl.ev.Severity, r.Sent+1
						st.Problems[dl.key] = r
					}
				})
			}
			return
		}
		msg := dl.n.redact(err.Error())
		if attempt > len(d.retry) || d.ctx.Err() != nil {
			log.Error("notification failed; giving up until the next check", "attempt", attempt, "err", msg)
			return
		}
		log.Warn("notification failed; retrying", "attempt", attempt, "in", d.retry[attempt-1].String(), "err", msg)
		select {
		case <-time.After(d.retry[attempt-1]):
		case <-d.ctx.Done():
			log.Error("notification abandoned at shutdown", "attempt", attempt, "err", msg)
			return
		}
	}
}

// Flush waits until no delivery is under way (retries included), or until
// ctx ends.
func (d *Dispatcher) Flush(ctx context.Context) error {
	done := make(chan struct{})
	go func() { d.wg.Wait(); close(done) }()
	select {
	case <-done:
		return nil
	case <-ctx.Done():
		return fmt.Errorf("notify: %w", ctx.Err())
	}
}

// Close waits for deliveries under way (retries included) until ctx ends,
// then abandons the rest; it returns ctx.Err() when it had to.
func (d *Dispatcher) Close(ctx context.Context) error {
	done := make(chan struct{})
	go func() { d.wg.Wait(); close(done) }()
	select {
	case <-done:
		d.cancel()
		return nil
	case <-ctx.Done():
		d.cancel()
		<-done
		return fmt.Errorf("notify: %w", ctx.Err())
	}
}

// stateFile is state.json: the problems notified or seen, by key.
type stateFile struct {
	Problems map[string]record `json:"problems"`
}

type record struct {
	Since    time.Time `json:"since"`              // first seen
	LastSeen time.Time `json:"last_seen"`          // last observed to hold
	LastSent time.Time `json:"last_sent,omitzero"` // last delivered; zero: never
	Severity string    `json:"severity,omitempty"` // of the last delivery
	Sent     int       `json:"sent,omitempty"`     // deliveries so far
}

func problemKey(notifier, subject, name string, kind Kind) string {
	return notifier + "/" + subject + "/" + name + "/" + string(kind)
}

// update runs fn on the state file under the process mutex and a file lock
// (a `renew` and the daemon may share it), then saves it.
func (d *Dispatcher) update(fn func(*stateFile)) {
	d.mu.Lock()
	defer d.mu.Unlock()
	if err := d.lock.Lock(); err != nil {
		d.log.Warn("notify state: lock", "err", err)
	} else {
		defer d.lock.Unlock()
	}
	path := filepath.Join(d.dir, "state.json")
	st := &stateFile{}
	data, err := os.ReadFile(path)
	switch {
	case err == nil:
		if err := json.Unmarshal(data, st); err != nil {
			d.log.Warn("notify state unreadable; starting afresh", "path", path, "err", err)
			st = &stateFile{}
		}
	case !errors.Is(err, os.ErrNotExist):
		d.log.Warn("notify state unreadable; starting afresh", "path", path, "err", err)
	}
	if st.Problems == nil {
		st.Problems = map[string]record{}
	}
	fn(st)
	data, err = json.MarshalIndent(st, "", "  ")
	if err == nil {
		err = d.write(path, append(data, '\n'), 0o600)
	}
	if err != nil {
		d.log.Error("notify state: save", "path", path, "err", err)
	}
}
