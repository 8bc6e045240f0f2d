package acme

import (
	"bytes"
	"context"
	"crypto/sha256"
	"crypto/tls"
	"encoding/asn1"
	"net"
	"sync"
	"testing"
	"time"

	"github.com/go-acme/lego/v4/challenge/tlsalpn01"
)

// memALPN is a fleet's shared challenges in memory (internal/fleet keeps
// them in etcd; its tests run the real thing).
type memALPN struct {
	mu    sync.Mutex
	m     map[string][2]string
	reads int
}

func (s *memALPN) PutALPN(_ context.Context, name, identifier, keyAuth string) error {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.m[name] = [2]string{identifier, keyAuth}
	return nil
}

func (s *memALPN) DeleteALPN(_ context.Context, name string) error {
	s.mu.Lock()
	defer s.mu.Unlock()
	delete(s.m, name)
	return nil
}

func (s *memALPN) ALPN(_ context.Context, name string) (string, string, bool, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.reads++
	v, ok := s.m[name]
	return v[0], v[1], ok, nil
}

func (s *memALPN) readCount() int {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.reads
}

func listenAddr(t *testing.T, s *TLSALPNSolver) string {
	t.Helper()
	s.mu.Lock()
	defer s.mu.Unlock()
	for _, l := range s.servers {
		return l.ln.Addr().String()
	}
	t.Fatal("no listener")
	return ""
}

// validationOf dials addr as a TLS-ALPN-01 validator for sni and returns
// the SHA-256 in the certificate's acmeIdentifier extension (nil when the
// handshake fails), after checking the certificate names identifier.
func validationOf(t *testing.T, addr, sni, identifier string) []byte {
	t.Helper()
	conn, err := tls.DialWithDialer(&net.Dialer{Timeout: 5 * time.Second}, "tcp", addr,
		&tls.Config{ServerName: sni, NextProtos: []string{tlsalpn01.ACMETLS1Protocol}, InsecureSkipVerify: true}) //nolint:gosec // a challenge certificate is self-signed
	if err != nil {
		return nil
	}
	defer conn.Close()
	leaf := conn.ConnectionState().PeerCertificates[0]
	if err := leaf.VerifyHostname(identifier); err != nil {
		t.Errorf("challenge certificate for %s: %v", identifier, err)
	}
	for _, e := range leaf.Extensions {
		if e.Id.Equal(asn1.ObjectIdentifier{1, 3, 6, 1, 5, 5, 7, 1, 31}) {
			var v []byte
			if _, err := asn1.Unmarshal(e.Value, &v); err != nil {
				t.Fatal(err)
			}
			return v
		}
	}
	t.Errorf("challenge certificate for %s has no acmeIdentifier extension", sni)
	return nil
}

// Fleet mode: a node answers, on the listener it keeps open, the challenge
// another node presented (building the certificate from the shared key
// authorization), only for its own names and only while it is pending; a
// `renew` beside the daemon that holds the port still presents its
// challenge (to the fleet); without a fleet the busy port is an error.
func TestTLSALPNSolverAnswersFleetChallenges(t *testing.T) {
	t.Parallel()
	store := &memALPN{m: map[string][2]string{}}
	daemon := NewTLSALPNSolver(nil)
	defer daemon.Close()
	daemon.SetShared(store, []string{"a.example.test", "192.0.2.7"})
	if err := daemon.Keep("127.0.0.1:0"); err != nil {
		t.Fatal(err)
	}
	addr := listenAddr(t, daemon)

	orderer := NewTLSALPNSolver(nil)
	defer orderer.Close()
	orderer.SetShared(store, nil)
	p := orderer.Provider("127.0.0.1:0")
	if err := p.Present("a.example.test", "tok", "tok.thumb"); err != nil {
		t.Fatal(err)
	}
	want := sha256.Sum256([]byte("tok.thumb"))
	if got := validationOf(t, addr, "a.example.test", "a.example.test"); !bytes.Equal(got, want[:]) {
		t.Fatalf("daemon's answer for the orderer's challenge: %x, want %x", got, want)
	}
	reads := store.readCount()
	if got := validationOf(t, addr, "A.example.test", "a.example.test"); !bytes.Equal(got, want[:]) {
		t.Errorf("second validation (upper case SNI): %x", got)
	}
	// An IP identifier: the validator sends its reverse name.
	if err := p.Present("192.0.2.7", "tok2", "tok2.thumb"); err != nil {
		t.Fatal(err)
	}
	want2 := sha256.Sum256([]byte("tok2.thumb"))
	if got := validationOf(t, addr, "7.2.0.192.in-addr.arpa", "192.0.2.7"); !bytes.Equal(got, want2[:]) {
		t.Errorf("daemon's answer for an IP identifier (reverse name): %x, want %x", got, want2)
	}

	// A name that is not the daemon's is never looked up.
	if err := p.Present("c.example.test", "tok3", "tok3.thumb"); err != nil {
		t.Fatal(err)
	}
	before := store.readCount()
	if got := validationOf(t, addr, "c.example.test", "c.example.test"); got != nil {
		t.Error("the daemon answered for a name none of its certificates has")
	}
	if store.readCount() != before {
		t.Error("the daemon read the fleet's challenges for a name that is not its own")
	}
	if reads < 1 {
		t.Error("the daemon answered without reading the fleet")
	}

	// Withdrawn: no answer any more.
	if err := p.CleanUp("a.example.test", "tok", "tok.thumb"); err != nil {
		t.Fatal(err)
	}
	if got := validationOf(t, addr, "a.example.test", "a.example.test"); got != nil {
		t.Error("the daemon still answers a withdrawn challenge")
	}

	// A `renew` beside the daemon: the port is the daemon's.
	beside := NewTLSALPNSolver(nil)
	defer beside.Close()
	beside.SetShared(store, nil)
	if err := beside.Provider(addr).Present("a.example.test", "tok4", "tok4.thumb"); err != nil {
		t.Fatalf("present with the port held by the daemon, in fleet mode: %v", err)
	}
	want4 := sha256.Sum256([]byte("tok4.thumb"))
	if got := validationOf(t, addr, "a.example.test", "a.example.test"); !bytes.Equal(got, want4[:]) {
		t.Errorf("daemon's answer for the challenge of a renew beside it: %x", got)
	}
	alone := NewTLSALPNSolver(nil)
	defer alone.Close()
	if err := alone.Provider(addr).Present("a.example.test", "tok5", "tok5.thumb"); err == nil {
		t.Error("a single node presented a challenge on a port another process holds")
	}
}
