package config

import (
	"fmt"
	"strings"
	"time"

	"github.com/hashicorp/hcl/v2"
)

// DNSPersist is the setting of a challenge "dns-persist" block
// (dns-persist-01): the domain owner publishes, once, the TXT record
// `renewer dns-persist record` prints; renewer needs no DNS credentials.
type DNSPersist struct {
	// Wildcard is policy = "wildcard": the record also covers the name's
	// wildcard and subdomains. Required when a name is a wildcard.
	Wildcard bool
	// PersistUntil is the persistUntil the printed record carries (the CA
	// stops accepting the record after it); zero: none. status warns
	// PersistWarn before it passes.
	PersistUntil time.Time
	// Resolvers are asked for the record before every order (host:port);
	// empty: the system resolvers.
	Resolvers []string
	Range     hcl.Range // the challenge block
}

// PersistWarn is how long before persist_until passes status and the
// notifications warn.
const PersistWarn = 30 * 24 * time.Hour

func (d *decoder) persistChallenge(b *hcl.Block) Challenge {
	c := d.content(b.Body, []string{"policy", "persist_until", "resolvers"})
	p := &DNSPersist{Range: b.DefRange}
	if a := c.Attributes["policy"]; a != nil {
		var policy string
		if d.eval(a, &policy) {
			if strings.EqualFold(policy, "wildcard") {
				p.Wildcard = true
			} else {
				d.attrError(a, "Invalid policy", fmt.Sprintf(
					`%q is not a dns-persist policy; the only one is "wildcard" (the record then covers the name's wildcard and subdomains). Leave policy out for the names alone.`, policy))
			}
		}
	}
	if a := c.Attributes["persist_until"]; a != nil {
		var s string
		if d.eval(a, &s) {
			t, err := parsePersistUntil(s)
			if err != nil {
				d.attrError(a, "Invalid persist_until", fmt.Sprintf(
					`%q is not a date ("2027-06-30") or an RFC 3339 time ("2027-06-30T12:00:00Z").`, s))
			}
			p.PersistUntil = t
		}
	}
	p.Resolvers = d.resolvers(c.Attributes["resolvers"])
	return Challenge{Type: ChallengeDNSPersist, Persist: p}
}

// parsePersistUntil reads an RFC 3339 time or a date (its midnight UTC).
func parsePersistUntil(s string) (time.Time, error) {
	if t, err := time.Parse(time.RFC3339, s); err == nil {
		return t.UTC(), nil
	}
	return time.Parse(time.DateOnly, s)
}

// checkPersistPolicy: a wildcard validated with dns-persist-01 needs a
// record with policy=wildcard, so the block must say so.
func (d *decoder) checkPersistPolicy(c Certificate) {
	p := c.Challenge.Persist
	if p == nil || p.Wildcard {
		return
	}
	for _, n := range c.Domains {
		if strings.HasPrefix(n, "*.") {
			d.errorAt(p.Range, "Wildcard needs policy = \"wildcard\"", fmt.Sprintf(
				`%q is a wildcard: its dns-persist-01 record must carry policy=wildcard. Add policy = "wildcard" to this challenge block.`, n))
			return
		}
	}
}
