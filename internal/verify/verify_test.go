package verify

import (
	"context"
	"crypto/tls"
	"crypto/x509"
	"errors"
	"log/slog"
	"net"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/renewer/renewer/internal/certinfo"
	"github.com/renewer/renewer/internal/certinfo/certtest"
	"github.com/renewer/renewer/internal/config"
)

// server is a real TLS server on loopback whose certificate can be swapped,
// like a web server that reloads. It records the SNI names it saw.
type server struct {
	addr      string
	cert      atomic.Pointer[tls.Certificate]
	alternate atomic.Pointer[tls.Certificate] // when set, every other handshake gets it
	n         atomic.Int64
	sni       atomic.Value
}

func newServer(t *testing.T, c *tls.Certificate) *server {
	t.Helper()
	s := &server{}
	s.cert.Store(c)
	l, err := tls.Listen("tcp", "127.0.0.1:0", &tls.Config{
		GetCertificate: func(h *tls.ClientHelloInfo) (*tls.Certificate, error) {
			s.sni.Store(h.ServerName)
			if alt := s.alternate.Load(); alt != nil && s.n.Add(1)%2 == 0 {
				return alt, nil
			}
			return s.cert.Load(), nil
		},
	})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { l.Close() })
	go func() {
		for {
			c, err := l.Accept()
			if err != nil {
				return
			}
			go func() {
				_ = c.(*tls.Conn).Handshake()
				c.Close()
			}()
		}
	}()
	s.addr = l.Addr().String()
	return s
}

func keyPair(t *testing.T, names ...string) (*tls.Certificate, *x509.Certificate) {
	t.Helper()
	full, key := certtest.Issue(t, certtest.Options{Names: names})
	c, err := tls.X509KeyPair(full, key)
	if err != nil {
		t.Fatal(err)
	}
	f, err := certinfo.Parse(full, nil)
	if err != nil {
		t.Fatal(err)
	}
	return &c, f.Leaf
}

var quiet = slog.New(slog.DiscardHandler)

func TestServedSendsSNI(t *testing.T) {
	c, leaf := keyPair(t, "www.example.test")
	s := newServer(t, c)
	got, err := Served(context.Background(), s.addr, "www.example.test")
	if err != nil {
		t.Fatal(err)
	}
	if !got.Equal(leaf) {
		t.Error("served leaf differs from the server's certificate")
	}
	if sni, _ := s.sni.Load().(string); sni != "www.example.test" {
		t.Errorf("server saw SNI %q", sni)
	}
}

func TestWaitMatches(t *testing.T) {
	c, leaf := keyPair(t, "a.example.test")
	s := newServer(t, c)
	v := config.Verify{Endpoint: s.addr, ServerName: "a.example.test", Timeout: 5 * time.Second}
	if err := Wait(context.Background(), quiet, v, leaf); err != nil {
		t.Fatal(err)
	}
}

// The server switches to the new certificate a little later (a reload in
// progress): Wait keeps trying and succeeds.
func TestWaitRetriesUntilServed(t *testing.T) {
	oldC, _ := keyPair(t, "a.example.test")
	newC, newLeaf := keyPair(t, "a.example.test")
	s := newServer(t, oldC)
	time.AfterFunc(700*time.Millisecond, func() { s.cert.Store(newC) })
	v := config.Verify{Endpoint: s.addr, ServerName: "a.example.test", Timeout: 10 * time.Second}
	start := time.Now()
	if err := Wait(context.Background(), quiet, v, newLeaf); err != nil {
		t.Fatal(err)
	}
	if time.Since(start) < 700*time.Millisecond {
		t.Error("Wait succeeded before the server switched")
	}
}

// Another certificate served until the timeout is a MismatchError naming
// both serials.
func TestWaitMismatch(t *testing.T) {
	oldC, oldLeaf := keyPair(t, "a.example.test")
	_, newLeaf := keyPair(t, "a.example.test")
	s := newServer(t, oldC)
	v := config.Verify{Endpoint: s.addr, ServerName: "a.example.test", Timeout: time.Second}
	start := time.Now()
	err := Wait(context.Background(), quiet, v, newLeaf)
	var mm *MismatchError
	if !errors.As(err, &mm) {
		t.Fatalf("err = %v, want a MismatchError", err)
	}
	if mm.Got != certinfo.FormatSerial(oldLeaf.SerialNumber) || mm.Want != certinfo.FormatSerial(newLeaf.SerialNumber) ||
		!strings.Contains(err.Error(), mm.Got) || !strings.Contains(err.Error(), "after 1s") {
		t.Errorf("err = %v", err)
	}
	if took := time.Since(start); took < time.Second || took > 4*time.Second {
		t.Errorf("Wait took %s with a 1s timeout", took)
	}
}

func TestWaitNothingListening(t *testing.T) {
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	addr := l.Addr().String()
	l.Close()
	_, leaf := keyPair(t, "a.example.test")
	err = Wait(context.Background(), quiet, config.Verify{Endpoint: addr, ServerName: "a.example.test", Timeout: 600 * time.Millisecond}, leaf)
	if err == nil || !strings.Contains(err.Error(), "connection refused") {
		t.Fatalf("err = %v", err)
	}
}

// During a graceful reload old workers still answer for a moment: a server
// that answers with the old and the new certificate in turn is not
// verified until it serves only the new one.
func TestWaitNeedsStableAnswers(t *testing.T) {
	oldC, _ := keyPair(t, "a.example.test")
	newC, newLeaf := keyPair(t, "a.example.test")
	s := newServer(t, newC)
	s.alternate.Store(oldC) // every other handshake gets the old certificate
	time.AfterFunc(time.Second, func() { s.alternate.Store(nil) })
	start := time.Now()
	v := config.Verify{Endpoint: s.addr, ServerName: "a.example.test", Timeout: 10 * time.Second}
	if err := Wait(context.Background(), quiet, v, newLeaf); err != nil {
		t.Fatal(err)
	}
	if took := time.Since(start); took < time.Second {
		t.Errorf("verified after %s while the server still answered with both", took)
	}
}
