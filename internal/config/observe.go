package config

// This file decodes what makes renewer observable: the metrics block, the
// watch blocks (endpoints renewer checks but does not manage), the notify
// blocks, and each certificate's warn_before.

import (
	"fmt"
	"maps"
	"net"
	"net/mail"
	"net/url"
	"regexp"
	"slices"
	"strconv"
	"strings"
	"time"

	"github.com/hashicorp/hcl/v2"
)

// Defaults of the observability blocks.
const (
	DefaultMetricsListen  = "127.0.0.1:9469"
	DefaultWatchWarn      = 21 * 24 * time.Hour
	DefaultWatchCritical  = 7 * 24 * time.Hour
	DefaultNotifyRepeat   = 24 * time.Hour
	DefaultWarnBeforeFrac = 0.2 // a certificate's warn_before: a fifth of its lifetime
)

// Secret is a configured value that must never be printed: a webhook URL
// with a token in it, a password, an Authorization header. fmt and
// encoding/json show it as "[redacted]"; string(s) is the value.
type Secret string

// Redacted is how a Secret prints.
const Redacted = "[redacted]"

func (Secret) String() string                  { return Redacted }
func (Secret) GoString() string                { return strconv.Quote(Redacted) }
func (Secret) MarshalText() ([]byte, error)    { return []byte(Redacted), nil }
func (s Secret) Format(f fmt.State, verb rune) { fmt.Fprint(f, Redacted) }

// Metrics is the metrics block: where the Prometheus endpoint listens.
type Metrics struct {
	Listen string // host:port
}

// Watch is one watch "NAME" block: a TLS endpoint renewer does not manage
// but checks, so its certificate's expiry is seen and alerted on too.
type Watch struct {
	Name           string
	Endpoint       string // host:port
	ServerName     string // SNI and the name the certificate must cover; default: the endpoint's host
	WarnBefore     time.Duration
	CriticalBefore time.Duration
	CABundle       string // roots to verify the chain against; empty: the system's
	DeclRange      hcl.Range
}

// Event kinds a notify block's `on` may list, besides the groups in
// NotifyGroups. The notify package sends these names.
var NotifyKinds = []string{
	"renewal_failed",       // a renewal failed (and is retried)
	"hook_failed",          // a certificate is installed but a hook or install copy failed
	"verify_failed",        // the served certificate is not the installed one
	"watch_failed",         // a watched endpoint could not be checked, or its certificate does not verify
	"expiring",             // a certificate (managed or watched) expires within warn_before, still not renewed
	"renewal_requested",    // the CA asks for a certificate to be replaced now (ARI: a revocation, a mass reissue)
	"dns_persist_expiring", // a dns-persist record's persist_until passes within 30 days (or has passed)
	"fleet_not_converged",  // fleet mode: a node does not serve the fleet's version (it reports an error, or 15 minutes passed)
	"fleet_node_gone",      // fleet mode: a node has not reported for node_gone_after
	"recovered",            // a problem that was notified is over
	"account_rollover",     // an ACME account key was rolled over (renewer account rollover), or the attempt failed
	"renewed",              // a certificate was renewed (off by default)
}

// NotifyGroups are shorthands for `on`.
var NotifyGroups = map[string][]string{
	"failure": {"renewal_failed", "hook_failed", "verify_failed", "watch_failed"},
	"all":     NotifyKinds,
}

// DefaultNotifyOn is what a notify block without `on` sends: everything but "renewed".
var DefaultNotifyOn = NotifyKinds[:len(NotifyKinds)-1]

// Notify is one notify "NAME" block. Exactly one of Webhook, Slack and
// Email is set.
type Notify struct {
	Name    string
	Webhook Secret            // a generic webhook: the event is POSTed as JSON
	Headers map[string]Secret // extra request headers for Webhook (e.g. Authorization)
	Slack   Secret            // a Slack-compatible incoming webhook: {"text": ...}
	Email   *Email
	On      []string      // event kinds, groups expanded, in NotifyKinds order
	Repeat  time.Duration // the same problem is sent again at most this often
}

// Email is a notify block's email block: SMTP delivery.
type Email struct {
	SMTP     string // host:port
	TLS      string // "starttls" (default), "tls" (implicit TLS, port 465), "none"
	Username string
	Password Secret
	From     string
	To       []string
	CABundle string // roots for the server's certificate; empty: the system's
}

// Email TLS modes.
var EmailTLSModes = []string{"starttls", "tls", "none"}

// observe decodes the metrics and notify blocks. Each certificate's
// warn_before is decoded with the certificate (config.go), the watch blocks
// with the certificates of each file (watches).
func (d *decoder) observe(cfg *Config, blocks map[string]hcl.Blocks) {
	if b := d.single(blocks["metrics"]); b != nil {
		cfg.Metrics = d.metrics(b)
	}
	first := map[string]hcl.Range{}
	for _, b := range blocks["notify"] {
		if n := d.notify(b); d.uniqueName(b, "notify", first) {
			cfg.Notifiers = append(cfg.Notifiers, n)
		}
	}
}

// watches decodes the watch blocks of one file; a watch may be defined in
// a conf.d file, with the site it belongs to.
func (d *decoder) watches(cfg *Config, blocks hcl.Blocks) {
	for _, b := range blocks {
		if w := d.watch(b); d.uniqueName(b, "watch", d.watchNames) {
			cfg.Watches = append(cfg.Watches, w)
		}
	}
}

// uniqueName checks a labelled block's name: a valid name, not used before.
func (d *decoder) uniqueName(b *hcl.Block, kind string, first map[string]hcl.Range) bool {
	name, rng := b.Labels[0], b.LabelRanges[0]
	if !certNameRE.MatchString(name) {
		d.errorAt(rng, "Invalid "+kind+" name", fmt.Sprintf(
			"%q must start with a letter or digit and hold at most 64 letters, digits, '.', '_' or '-'.", name))
		return false
	}
	if f, dup := first[name]; dup {
		d.errorAt(rng, "Duplicate "+kind, fmt.Sprintf("A %s block named %q is already defined at %s.", kind, name, where(f, rng)))
		return false
	}
	first[name] = b.DefRange
	return true
}

// warnBefore reads warn_before from a defaults or certificate body whose
// schema (in config.go) lists it; def when absent.
func (d *decoder) warnBefore(body hcl.Body, def RenewBefore) RenewBefore {
	c, _, _ := body.PartialContent(&hcl.BodySchema{Attributes: []hcl.AttributeSchema{{Name: "warn_before"}}})
	if c == nil {
		return def
	}
	a := c.Attributes["warn_before"]
	var s string
	if !d.eval(a, &s) {
		return def
	}
	rb, err := ParseRenewBefore(s)
	if err != nil {
		d.attrError(a, "Invalid warn_before", err.Error()+".")
		return def
	}
	return rb
}

// WarnAt is when an unrenewed certificate valid from notBefore to notAfter
// starts to count as expiring: warn_before before notAfter (a fifth of the
// lifetime when not configured).
func (c Certificate) WarnAt(notBefore, notAfter time.Time) time.Time {
	w := c.WarnBefore
	if w.IsDefault() {
		w.Fraction = DefaultWarnBeforeFrac
	}
	before := w.Duration
	if before == 0 {
		before = time.Duration(w.Fraction * float64(notAfter.Sub(notBefore)))
	}
	return notAfter.Add(-before)
}

func (d *decoder) metrics(b *hcl.Block) *Metrics {
	c := d.content(b.Body, []string{"listen"})
	m := &Metrics{Listen: DefaultMetricsListen}
	if a := c.Attributes["listen"]; d.eval(a, &m.Listen) {
		if !validHostPort(m.Listen) {
			d.attrError(a, "Invalid listen address",
				fmt.Sprintf(`%q is not host:port with a port from 1 to 65535, e.g. "127.0.0.1:9469".`, m.Listen))
		}
	}
	return m
}

// validHostPort: host:port with a numeric port 1..65535 (host may be empty).
func validHostPort(s string) bool {
	_, port, err := net.SplitHostPort(s)
	n, perr := strconv.Atoi(port)
	return err == nil && perr == nil && n >= 1 && n <= 65535
}

func (d *decoder) watch(b *hcl.Block) Watch {
	c := d.content(b.Body, []string{"endpoint", "server_name", "warn_before", "critical_before", "ca_bundle"})
	w := Watch{Name: b.Labels[0], WarnBefore: DefaultWatchWarn, CriticalBefore: DefaultWatchCritical, DeclRange: b.DefRange}
	ep := c.Attributes["endpoint"]
	if ep == nil {
		d.missing(b, "endpoint")
	}
	var host string
	if d.eval(ep, &w.Endpoint) {
		if !strings.Contains(w.Endpoint, ":") {
			w.Endpoint += ":443"
		}
		h, _, err := net.SplitHostPort(w.Endpoint)
		if err != nil || h == "" || !validHostPort(w.Endpoint) {
			d.attrError(ep, "Invalid endpoint",
				fmt.Sprintf(`%q is not host:port with a port from 1 to 65535, e.g. "cdn.example.net:443".`, w.Endpoint))
		}
		host = h
	}
	if a := c.Attributes["server_name"]; d.eval(a, &w.ServerName) {
		w.ServerName = strings.ToLower(strings.TrimSuffix(w.ServerName, "."))
		if err := checkDomain(w.ServerName); err != nil || strings.HasPrefix(w.ServerName, "*.") {
			d.attrError(a, "Invalid server_name", fmt.Sprintf("%q is not a host name such as cdn.example.net.", w.ServerName))
		}
	} else if host != "" && net.ParseIP(host) == nil {
		w.ServerName = strings.ToLower(host)
	}
	warn, crit := c.Attributes["warn_before"], c.Attributes["critical_before"]
	d.duration(warn, &w.WarnBefore, false)
	d.duration(crit, &w.CriticalBefore, false)
	if w.CriticalBefore > w.WarnBefore {
		a := crit
		if a == nil {
			a = warn
		}
		d.attrError(a, "Invalid thresholds", fmt.Sprintf(
			"critical_before (%s) is longer than warn_before (%s): a certificate must warn before it is critical.",
			days(w.CriticalBefore), days(w.WarnBefore)))
	}
	w.CABundle = d.caBundle(c.Attributes["ca_bundle"])
	return w
}

// days shows a duration in the "21d" style of the config when it is whole days.
func days(t time.Duration) string {
	if t%(24*time.Hour) == 0 {
		return fmt.Sprintf("%dd", t/(24*time.Hour))
	}
	return t.String()
}

func (d *decoder) notify(b *hcl.Block) Notify {
	c := d.content(b.Body, []string{"webhook", "headers", "slack", "on", "repeat"},
		hcl.BlockHeaderSchema{Type: "email"})
	n := Notify{Name: b.Labels[0], Repeat: DefaultNotifyRepeat}
	webhook, slack, headers := c.Attributes["webhook"], c.Attributes["slack"], c.Attributes["headers"]
	email := d.single(c.Blocks.OfType("email"))

	var set []string
	if webhook != nil {
		set = append(set, "webhook")
		n.Webhook = Secret(d.webhookURL(webhook))
		d.noteSecret(fmt.Sprintf("notify %q webhook", n.Name), webhook)
	}
	if slack != nil {
		set = append(set, "slack")
		n.Slack = Secret(d.webhookURL(slack))
		d.noteSecret(fmt.Sprintf("notify %q slack", n.Name), slack)
	}
	if email != nil {
		set = append(set, "email")
		n.Email = d.email(email)
	}
	switch len(set) {
	case 0:
		d.errorAt(b.DefRange, "Missing notification target",
			`A notify block needs one of webhook = "https://...", slack = "https://..." or an email block.`)
	case 1:
	default:
		d.errorAt(b.DefRange, "Conflicting notification targets", fmt.Sprintf(
			"This notify block sets %s; use one target per notify block (one block each for more).", strings.Join(set, " and ")))
	}
	if headers != nil {
		d.noteSecretMap(fmt.Sprintf("notify %q headers", n.Name), headers, func(string) bool { return true })
		if webhook == nil {
			d.attrError(headers, "Headers without webhook", "headers apply to a webhook target only.")
		} else if d.eval(headers, &n.Headers) {
			for k := range n.Headers {
				if !httpTokenRE.MatchString(k) {
					d.errorAt(d.keyRange(headers, k), "Invalid header name", fmt.Sprintf("%q is not an HTTP header name.", k))
				}
			}
		}
	}

	n.On = slices.Clone(DefaultNotifyOn)
	if a := c.Attributes["on"]; a != nil {
		n.On = d.notifyOn(a)
	}
	d.duration(c.Attributes["repeat"], &n.Repeat, false)
	return n
}

func (d *decoder) webhookURL(a *hcl.Attribute) string {
	var s string
	if !d.eval(a, &s) {
		return ""
	}
	u, err := url.Parse(s)
	if err != nil || (u.Scheme != "https" && u.Scheme != "http") || u.Host == "" {
		// Never echo the value: it is a secret.
		d.attrError(a, "Invalid "+a.Name+" URL", "The value is not an http:// or https:// URL.")
	}
	return s
}

// notifyOn decodes `on`: event kinds and groups, each at most once.
func (d *decoder) notifyOn(a *hcl.Attribute) []string {
	var names []string
	if !d.eval(a, &names) {
		return nil
	}
	if len(names) == 0 {
		d.attrError(a, "Empty on", `List at least one event, such as ["failure", "expiring"].`)
		return nil
	}
	ranges := elementRanges(a.Expr, len(names))
	want := map[string]bool{}
	for i, name := range names {
		switch {
		case slices.Contains(NotifyKinds, name):
			want[name] = true
		case NotifyGroups[name] != nil:
			for _, k := range NotifyGroups[name] {
				want[k] = true
			}
		default:
			d.errorAt(ranges[i], "Unknown event", fmt.Sprintf("%q is not an event; use %s, or a group: %s.",
				name, strings.Join(NotifyKinds, ", "), strings.Join(slices.Sorted(maps.Keys(NotifyGroups)), ", ")))
		}
	}
	var out []string
	for _, k := range NotifyKinds {
		if want[k] {
			out = append(out, k)
		}
	}
	return out
}

var httpTokenRE = regexp.MustCompile(`^[!#$%&'*+.^_|~0-9A-Za-z-]+$`)

func (d *decoder) email(b *hcl.Block) *Email {
	c := d.content(b.Body, []string{"smtp", "tls", "username", "password", "from", "to", "ca_bundle"})
	e := &Email{TLS: "starttls"}
	for _, name := range []string{"smtp", "from", "to"} {
		if c.Attributes[name] == nil {
			d.missing(b, name)
		}
	}
	if a := c.Attributes["smtp"]; d.eval(a, &e.SMTP) {
		if h, _, err := net.SplitHostPort(e.SMTP); err != nil || h == "" || !validHostPort(e.SMTP) {
			d.attrError(a, "Invalid smtp address",
				fmt.Sprintf(`%q is not host:port with a port from 1 to 65535, e.g. "smtp.example.com:587".`, e.SMTP))
		}
	}
	if a := c.Attributes["tls"]; d.eval(a, &e.TLS) && !slices.Contains(EmailTLSModes, e.TLS) {
		d.attrError(a, "Invalid tls", fmt.Sprintf("%q is not one of %s.", e.TLS, strings.Join(EmailTLSModes, ", ")))
	}
	user, pass := c.Attributes["username"], c.Attributes["password"]
	d.eval(user, &e.Username)
	d.noteSecret("email password", pass)
	var p string
	if d.eval(pass, &p) {
		e.Password = Secret(p)
	}
	switch {
	case (user == nil) != (pass == nil):
		d.errorAt(b.DefRange, "Incomplete SMTP authentication", "Set both username and password, or neither.")
	case user != nil && e.TLS == "none":
		d.attrError(pass, "Password without TLS", `With tls = "none" the password would cross the network in clear; use "starttls" or "tls".`)
	}
	if a := c.Attributes["from"]; d.eval(a, &e.From) {
		if _, err := mail.ParseAddress(e.From); err != nil {
			d.attrError(a, "Invalid e-mail address", fmt.Sprintf("%q does not look like an e-mail address such as renewer@example.com.", e.From))
		}
	}
	if a := c.Attributes["to"]; d.eval(a, &e.To) {
		if len(e.To) == 0 {
			d.attrError(a, "Empty to", "List at least one recipient.")
		}
		ranges := elementRanges(a.Expr, len(e.To))
		for i, to := range e.To {
			if _, err := mail.ParseAddress(to); err != nil {
				d.errorAt(ranges[i], "Invalid e-mail address", fmt.Sprintf("%q does not look like an e-mail address such as ops@example.com.", to))
			}
		}
	}
	e.CABundle = d.caBundle(c.Attributes["ca_bundle"])
	return e
}
