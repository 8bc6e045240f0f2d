package acme

import (
	"crypto/tls"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"slices"
	"strings"
	"sync"
	"syscall"
	"time"

	"github.com/go-acme/lego/v4/challenge"
	"github.com/go-acme/lego/v4/challenge/tlsalpn01"
	"github.com/miekg/dns"
)

// TLSALPNSolver answers TLS-ALPN-01 challenges for the whole process, like
// HTTPSolver does for HTTP-01: lego's own server binds its port for every
// challenge, so concurrent orders would collide. Here one listener per
// address serves the challenge certificates of every pending order, chosen
// by SNI; it is open only while a challenge is pending.
type TLSALPNSolver struct {
	log *slog.Logger

	mu      sync.Mutex
	certs   map[string]*tls.Certificate // SNI name -> challenge certificate
	servers map[string]*tlsListener
	closed  bool // after Close, an order abandoned mid-flight opens nothing

	// Fleet mode (tlsalpn_shared.go): challenges of every node, answered
	// for the names in answers only.
	shared  ChallengeCertStore
	answers map[string]bool                // SNI names this node answers from the fleet
	built   map[string]sharedChallengeCert // SNI name -> certificate built from the fleet's key authorization

	handshakeTimeout time.Duration // 0: tlsHandshakeTimeout (tests shorten it)
}

type tlsListener struct {
	ln      net.Listener
	pending int
}

// tlsHandshakeTimeout bounds each connection to the TLS-ALPN-01 server: a
// validator completes its handshake at once; a client that stalls is cut off.
const tlsHandshakeTimeout = 10 * time.Second

// NewTLSALPNSolver returns a solver with no listener open yet.
func NewTLSALPNSolver(log *slog.Logger) *TLSALPNSolver {
	if log == nil {
		log = slog.New(slog.DiscardHandler)
	}
	return &TLSALPNSolver{log: log, certs: map[string]*tls.Certificate{}, servers: map[string]*tlsListener{},
		built: map[string]sharedChallengeCert{}}
}

// Provider returns a lego challenge provider that publishes challenge
// certificates here and makes sure a listener runs on addr.
func (s *TLSALPNSolver) Provider(addr string) challenge.Provider {
	return &tlsProvider{solver: s, addr: addr}
}

type tlsProvider struct {
	solver *TLSALPNSolver
	addr   string
}

// sniName is the server name a validator sends for identifier: the name
// itself, or the reverse-mapping name of an IP address (RFC 8738 §6).
func sniName(identifier string) string {
	if ip := net.ParseIP(identifier); ip != nil {
		if rev, err := dns.ReverseAddr(ip.String()); err == nil {
			return strings.TrimSuffix(rev, ".")
		}
	}
	return strings.ToLower(identifier)
}

func (p *tlsProvider) Present(domain, token, keyAuth string) error {
	cert, err := tlsalpn01.ChallengeCert(domain, keyAuth)
	if err != nil {
		return fmt.Errorf("tls-alpn-01 certificate for %s: %w", domain, err)
	}
	name := sniName(domain)
	if err := p.solver.share(name, domain, keyAuth); err != nil {
		return err
	}
	return p.solver.add(p.addr, name, cert)
}

func (p *tlsProvider) CleanUp(domain, token, keyAuth string) error {
	name := sniName(domain)
	p.solver.withdraw(name)
	p.solver.remove(p.addr, name)
	return nil
}

// getCertificate hands out a challenge certificate only to a client that
// asks for the acme-tls/1 protocol (RFC 8737 §3) and names a pending name.
func (s *TLSALPNSolver) getCertificate(hello *tls.ClientHelloInfo) (*tls.Certificate, error) {
	if !slices.Contains(hello.SupportedProtos, tlsalpn01.ACMETLS1Protocol) {
		return nil, fmt.Errorf("tls-alpn-01: client did not offer %s", tlsalpn01.ACMETLS1Protocol)
	}
	name := strings.ToLower(hello.ServerName)
	s.mu.Lock()
	cert := s.certs[name]
	s.mu.Unlock()
	if cert == nil {
		cert = s.fromFleet(hello.Context(), name)
	}
	if cert == nil {
		return nil, fmt.Errorf("no tls-alpn-01 challenge pending for %q", hello.ServerName)
	}
	return cert, nil
}

func (s *TLSALPNSolver) add(addr, name string, cert *tls.Certificate) error {
	s.mu.Lock()
	defer s.mu.Unlock()
	if err := s.listenLocked(addr); err != nil {
		if s.shared == nil || !errors.Is(err, syscall.EADDRINUSE) {
			return err
		}
		// Fleet mode: the daemon on this node holds the port (a `renew`
		// beside it) and answers from the fleet's challenges, as every node does.
		s.log.Debug("tls-alpn-01 port in use; the challenge is answered from the fleet", "listen", addr)
	}
	s.certs[name] = cert
	return nil
}

// listenLocked makes sure a listener runs on addr and counts one more user
// of it; s.mu is held.
func (s *TLSALPNSolver) listenLocked(addr string) error {
	if s.closed {
		return errors.New("tls-alpn-01 solver is shut down")
	}
	l := s.servers[addr]
	if l == nil {
		cfg := &tls.Config{
			NextProtos:     []string{tlsalpn01.ACMETLS1Protocol},
			MinVersion:     tls.VersionTLS12,
			GetCertificate: s.getCertificate,
		}
		ln, err := tls.Listen("tcp", addr, cfg)
		if err != nil {
			return fmt.Errorf("tls-alpn-01 server: %w", err)
		}
		l = &tlsListener{ln: ln}
		s.servers[addr] = l
		go s.serve(ln)
		s.log.Debug("tls-alpn-01 server listening", "listen", ln.Addr().String())
	}
	l.pending++
	return nil
}

// serve completes each handshake (the validator only needs the
// certificate) and closes the connection.
func (s *TLSALPNSolver) serve(ln net.Listener) {
	for {
		conn, err := ln.Accept()
		if err != nil {
			if !errors.Is(err, net.ErrClosed) {
				s.log.Error("tls-alpn-01 server stopped", "err", err)
			}
			return
		}
		go func() {
			defer conn.Close()
			timeout := s.handshakeTimeout
			if timeout <= 0 {
				timeout = tlsHandshakeTimeout
			}
			_ = conn.SetDeadline(time.Now().Add(timeout))
			if tc, ok := conn.(*tls.Conn); ok {
				_ = tc.Handshake()
			}
		}()
	}
}

func (s *TLSALPNSolver) remove(addr, name string) {
	s.mu.Lock()
	defer s.mu.Unlock()
	delete(s.certs, name)
	l := s.servers[addr]
	if l == nil {
		return
	}
	if l.pending--; l.pending <= 0 {
		delete(s.servers, addr)
		_ = l.ln.Close()
	}
}

// Close stops every listener still open; the solver answers no more
// challenges.
func (s *TLSALPNSolver) Close() {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.closed = true
	for addr, l := range s.servers {
		_ = l.ln.Close()
		delete(s.servers, addr)
	}
	clear(s.certs)
	clear(s.built)
}
