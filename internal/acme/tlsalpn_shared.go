package acme

import (
	"context"
	"crypto/tls"
	"fmt"
	"time"

	"github.com/go-acme/lego/v4/challenge/tlsalpn01"
)

// ChallengeCertStore shares pending TLS-ALPN-01 challenges between the
// nodes of a fleet (internal/fleet implements it), as TokenStore does for
// HTTP-01: behind a load balancer the CA may reach any node, so each one
// answers the challenges any of them presented. What is shared is the key
// authorization, under the server name the validator sends (SNI); each
// node builds the challenge certificate from it.
type ChallengeCertStore interface {
	PutALPN(ctx context.Context, name, identifier, keyAuth string) error
	DeleteALPN(ctx context.Context, name string) error
	ALPN(ctx context.Context, name string) (identifier, keyAuth string, ok bool, err error)
}

// alpnLookup bounds reading a challenge from the fleet during a handshake.
const alpnLookup = 2 * time.Second

// sharedChallengeCert is a challenge certificate built from the fleet's key
// authorization, kept while that key authorization is pending (building
// one generates an RSA key).
type sharedChallengeCert struct {
	keyAuth string
	cert    *tls.Certificate
}

// SetShared makes the solver publish its challenges to cs, and answer the
// challenges found there for the given identifiers (this node's
// certificates' names: a validator asking for another name is not looked
// up). Call it before the first challenge.
func (s *TLSALPNSolver) SetShared(cs ChallengeCertStore, identifiers []string) {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.shared = cs
	s.answers = map[string]bool{}
	for _, id := range identifiers {
		s.answers[sniName(id)] = true
	}
}

// Keep opens a listener on addr now and keeps it open until Close, so that
// the node answers challenges presented by other nodes of a fleet.
func (s *TLSALPNSolver) Keep(addr string) error {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.listenLocked(addr)
}

// share publishes a challenge this node presents to the fleet.
func (s *TLSALPNSolver) share(name, identifier, keyAuth string) error {
	s.mu.Lock()
	cs := s.shared
	s.mu.Unlock()
	if cs == nil {
		return nil
	}
	ctx, cancel := context.WithTimeout(context.Background(), tokenTimeout)
	defer cancel()
	if err := cs.PutALPN(ctx, name, identifier, keyAuth); err != nil {
		return fmt.Errorf("tls-alpn-01: share the challenge for %s with the fleet: %w", identifier, err)
	}
	return nil
}

// withdraw takes a challenge this node presented off the fleet.
func (s *TLSALPNSolver) withdraw(name string) {
	s.mu.Lock()
	cs := s.shared
	s.mu.Unlock()
	if cs == nil {
		return
	}
	ctx, cancel := context.WithTimeout(context.Background(), tokenTimeout)
	defer cancel()
	if err := cs.DeleteALPN(ctx, name); err != nil {
		s.log.Warn("tls-alpn-01: could not withdraw a shared challenge (it expires with its lease)", "name", name, "err", err)
	}
}

// fromFleet is the challenge certificate for name built from the key
// authorization another node of the fleet shared; nil when there is none
// (or name is not one of this node's).
func (s *TLSALPNSolver) fromFleet(ctx context.Context, name string) *tls.Certificate {
	s.mu.Lock()
	cs, ok := s.shared, s.answers[name]
	s.mu.Unlock()
	if cs == nil || !ok {
		return nil
	}
	ctx, cancel := context.WithTimeout(ctx, alpnLookup)
	defer cancel()
	identifier, keyAuth, ok, err := cs.ALPN(ctx, name)
	if err != nil {
		s.log.Warn("tls-alpn-01: cannot read the fleet's challenge", "name", name, "err", err)
		return nil
	}
	if !ok || sniName(identifier) != name {
		return nil
	}
	s.mu.Lock()
	b, ok := s.built[name]
	s.mu.Unlock()
	if ok && b.keyAuth == keyAuth {
		return b.cert
	}
	cert, err := tlsalpn01.ChallengeCert(identifier, keyAuth)
	if err != nil {
		s.log.Warn("tls-alpn-01: cannot build the fleet's challenge certificate", "name", name, "err", err)
		return nil
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.closed {
		return nil
	}
	s.built[name] = sharedChallengeCert{keyAuth: keyAuth, cert: cert}
	s.log.Debug("tls-alpn-01 challenge answered from the fleet", "name", name)
	return cert
}
