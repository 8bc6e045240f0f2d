package notify

import (
	"bytes"
	"context"
	"crypto/tls"
	"crypto/x509"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/url"
	"os"
	"strconv"
	"strings"
	"time"

	"github.com/wneessen/go-mail"

	"github.com/renewer/renewer/internal/config"
)

// Sender delivers one event to one target.
type Sender interface {
	Send(ctx context.Context, e Event) error
}

// Webhook POSTs the event as JSON (the Event fields) to URL.
type Webhook struct {
	URL     string
	Headers map[string]string
	Client  *http.Client
	Agent   string // User-Agent
}

// Send implements Sender.
func (w *Webhook) Send(ctx context.Context, e Event) error {
	body, err := json.Marshal(e)
	if err != nil {
		return fmt.Errorf("webhook: %w", err)
	}
	return post(ctx, w.Client, w.URL, w.Agent, w.Headers, body)
}

// Slack POSTs {"text": ...} to a Slack incoming webhook, or anything that
// accepts the same (Mattermost, Rocket.Chat, Discord's /slack endpoint…).
type Slack struct {
	URL    string
	Client *http.Client
	Agent  string
}

// Send implements Sender.
func (s *Slack) Send(ctx context.Context, e Event) error {
	icon := map[string]string{Critical: ":rotating_light:", Warning: ":warning:"}[e.Severity]
	if icon == "" {
		icon = ":white_check_mark:"
	}
	text := fmt.Sprintf("%s *%s*\n```%s```", icon, e.Title(), strings.TrimSpace(e.Text()))
	body, err := json.Marshal(map[string]string{"text": text})
	if err != nil {
		return fmt.Errorf("slack: %w", err)
	}
	return post(ctx, s.Client, s.URL, s.Agent, nil, body)
}

// post sends body as JSON; any 2xx answer is success. Errors never hold the
// URL's path or query, where webhook tokens live.
func post(ctx context.Context, client *http.Client, rawURL, agent string, headers map[string]string, body []byte) error {
	shown := RedactURL(rawURL)
	req, err := http.NewRequestWithContext(ctx, http.MethodPost, rawURL, bytes.NewReader(body))
	if err != nil {
		return fmt.Errorf("POST %s: invalid request", shown)
	}
	req.Header.Set("Content-Type", "application/json")
	req.Header.Set("User-Agent", agent)
	for k, v := range headers {
		req.Header.Set(k, v)
	}
	resp, err := client.Do(req)
	if err != nil {
		var ue *url.Error
		if errors.As(err, &ue) {
			err = ue.Err
		}
		return fmt.Errorf("POST %s: %w", shown, err)
	}
	defer resp.Body.Close()
	snippet, _ := io.ReadAll(io.LimitReader(resp.Body, 512))
	_, _ = io.Copy(io.Discard, io.LimitReader(resp.Body, 1<<20))
	if resp.StatusCode < 200 || resp.StatusCode > 299 {
		return fmt.Errorf("POST %s: %s: %s", shown, resp.Status, strings.Join(strings.Fields(string(snippet)), " "))
	}
	return nil
}

// RedactURL keeps a URL's scheme and host only: "https://hooks.slack.com/[redacted]".
func RedactURL(raw string) string {
	u, err := url.Parse(raw)
	if err != nil || u.Host == "" {
		return config.Redacted
	}
	return u.Scheme + "://" + u.Host + "/" + config.Redacted
}

// Email sends the event as a plain-text e-mail over SMTP, with STARTTLS
// (required, not opportunistic), implicit TLS, or (for a local relay) none,
// authenticating when a username is configured.
type Email struct {
	Config config.Email
	Host   string // this machine's name, for the HELO and the body
	roots  *x509.CertPool
}

// NewEmail checks c and reads its ca_bundle.
func NewEmail(c config.Email, host string) (*Email, error) {
	e := &Email{Config: c, Host: host}
	if c.CABundle != "" {
		data, err := os.ReadFile(c.CABundle)
		if err != nil {
			return nil, fmt.Errorf("email ca_bundle: %w", err)
		}
		e.roots = x509.NewCertPool()
		if !e.roots.AppendCertsFromPEM(data) {
			return nil, fmt.Errorf("email ca_bundle %s holds no certificate", c.CABundle)
		}
	}
	return e, nil
}

// Send implements Sender.
func (m *Email) Send(ctx context.Context, e Event) error {
	c := m.Config
	host, portStr, err := net.SplitHostPort(c.SMTP)
	if err != nil {
		return fmt.Errorf("smtp %s: %w", c.SMTP, err)
	}
	port, err := strconv.Atoi(portStr)
	if err != nil {
		return fmt.Errorf("smtp %s: bad port", c.SMTP)
	}
	opts := []mail.Option{
		mail.WithPort(port),
		mail.WithTimeout(30 * time.Second),
		mail.WithTLSConfig(&tls.Config{ServerName: host, RootCAs: m.roots, MinVersion: tls.VersionTLS12}),
	}
	switch c.TLS {
	case "tls":
		opts = append(opts, mail.WithSSL())
	case "none":
		opts = append(opts, mail.WithTLSPolicy(mail.NoTLS))
	default:
		opts = append(opts, mail.WithTLSPolicy(mail.TLSMandatory))
	}
	if c.Username != "" {
		opts = append(opts, mail.WithSMTPAuth(mail.SMTPAuthAutoDiscover),
			mail.WithUsername(c.Username), mail.WithPassword(string(c.Password)))
	}
	if m.Host != "" {
		opts = append(opts, mail.WithHELO(m.Host))
	}
	client, err := mail.NewClient(host, opts...)
	if err != nil {
		return fmt.Errorf("smtp %s: %w", c.SMTP, err)
	}
	msg := mail.NewMsg()
	if err := msg.From(c.From); err != nil {
		return fmt.Errorf("email from: %w", err)
	}
	if err := msg.To(c.To...); err != nil {
		return fmt.Errorf("email to: %w", err)
	}
	msg.Subject("[renewer] " + e.Title())
	msg.SetDate()
	msg.SetMessageID()
	msg.SetGenHeader("X-Renewer-Event", string(e.Kind))
	msg.SetBodyString(mail.TypeTextPlain, e.Text())
	if err := client.DialAndSendWithContext(ctx, msg); err != nil {
		return fmt.Errorf("smtp %s: %w", c.SMTP, err)
	}
	return nil
}
