package notify_test

import (
	"bytes"
	"crypto/tls"
	"encoding/base64"
	"errors"
	"io"
	"mime/quotedprintable"
	"net"
	"net/mail"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/emersion/go-sasl"
	"github.com/emersion/go-smtp"

	"github.com/renewer/renewer/internal/certinfo/certtest"
)

// smtpServer is a real SMTP server on loopback (emersion/go-smtp): it
// offers STARTTLS (or speaks implicit TLS), accepts AUTH PLAIN only over
// TLS and only with the right password, and keeps what it receives.
type smtpServer struct {
	Addr   string
	CAFile string // PEM of the CA that issued the server's certificate

	mu   sync.Mutex
	msgs []received
	user string
	pass string
}

type received struct {
	From  string
	To    []string
	User  string // authenticated as
	TLS   bool   // the message came over TLS
	Msg   *mail.Message
	Body  string
	Raw   []byte
	After time.Time
}

func startSMTP(t *testing.T, implicitTLS bool) *smtpServer {
	t.Helper()
	ca := certtest.NewCA(t, "smtp test CA")
	full, key := certtest.Issue(t, certtest.Options{Names: []string{"localhost", "127.0.0.1"}, CA: ca})
	pair, err := tls.X509KeyPair(full, key)
	if err != nil {
		t.Fatal(err)
	}
	s := &smtpServer{user: "renewer", pass: "s3cr3t-smtp-pa55"}
	s.CAFile = filepath.Join(t.TempDir(), "ca.pem")
	if err := os.WriteFile(s.CAFile, ca.CertPEM, 0o600); err != nil {
		t.Fatal(err)
	}
	srv := smtp.NewServer(smtp.BackendFunc(func(c *smtp.Conn) (smtp.Session, error) {
		return &smtpSession{s: s, c: c}, nil
	}))
	srv.Domain = "localhost"
	srv.TLSConfig = &tls.Config{Certificates: []tls.Certificate{pair}}
	srv.AllowInsecureAuth = false
	srv.ReadTimeout, srv.WriteTimeout = 10*time.Second, 10*time.Second
	var ln net.Listener
	if implicitTLS {
		ln, err = tls.Listen("tcp", "127.0.0.1:0", srv.TLSConfig)
	} else {
		ln, err = net.Listen("tcp", "127.0.0.1:0")
	}
	if err != nil {
		t.Fatal(err)
	}
	s.Addr = ln.Addr().String()
	go srv.Serve(ln)
	t.Cleanup(func() { srv.Close() })
	return s
}

func (s *smtpServer) messages() []received {
	s.mu.Lock()
	defer s.mu.Unlock()
	return append([]received(nil), s.msgs...)
}

type smtpSession struct {
	s    *smtpServer
	c    *smtp.Conn
	user string
	from string
	to   []string
}

func (ss *smtpSession) AuthMechanisms() []string { return []string{sasl.Plain} }

func (ss *smtpSession) Auth(mech string) (sasl.Server, error) {
	return sasl.NewPlainServer(func(identity, username, password string) error {
		if username != ss.s.user || password != ss.s.pass {
			return errors.New("invalid credentials")
		}
		ss.user = username
		return nil
	}), nil
}

func (ss *smtpSession) Mail(from string, _ *smtp.MailOptions) error {
	if ss.user == "" {
		return smtp.ErrAuthRequired
	}
	ss.from = from
	return nil
}

func (ss *smtpSession) Rcpt(to string, _ *smtp.RcptOptions) error {
	ss.to = append(ss.to, to)
	return nil
}

func (ss *smtpSession) Data(r io.Reader) error {
	raw, err := io.ReadAll(r)
	if err != nil {
		return err
	}
	m, err := mail.ReadMessage(bytes.NewReader(raw))
	if err != nil {
		return err
	}
	var body []byte
	switch strings.ToLower(m.Header.Get("Content-Transfer-Encoding")) {
	case "quoted-printable":
		body, err = io.ReadAll(quotedprintable.NewReader(m.Body))
	case "base64":
		body, err = io.ReadAll(base64.NewDecoder(base64.StdEncoding, m.Body))
	default:
		body, err = io.ReadAll(m.Body)
	}
	if err != nil {
		return err
	}
	_, isTLS := ss.c.TLSConnectionState()
	ss.s.mu.Lock()
	ss.s.msgs = append(ss.s.msgs, received{From: ss.from, To: ss.to, User: ss.user, TLS: isTLS, Msg: m, Body: string(body), Raw: raw, After: time.Now()})
	ss.s.mu.Unlock()
	return nil
}

func (ss *smtpSession) Reset()        { ss.from, ss.to = "", nil }
func (ss *smtpSession) Logout() error { return nil }
