package acme

import (
	"crypto"
	"errors"
	"fmt"
	"slices"
	"strconv"
	"strings"
	"time"
)

// dns-persist-01 (draft-ietf-acme-dns-persist): the domain owner publishes
// one TXT record at _validation-persist.NAME naming the CA (an issuer
// domain name) and the ACME account, and every later order validates
// against it, without DNS credentials on this machine.

// ChallengeDNSPersist01 is the challenge type.
const ChallengeDNSPersist01 = "dns-persist-01"

// PersistLabel is the label the record lives under.
const PersistLabel = "_validation-persist"

// PersistForm is a revision of the record's syntax. The CA says which one
// it validates (its challenge object); renewer builds that one, so a new
// revision needs no change in the config.
type PersistForm int

const (
	// PersistDraft01 is the form of draft-ietf-acme-dns-persist-00 and -01,
	// which Pebble v2.10.1 and Let's Encrypt's staging validate: the RFC 8659
	// issue-value "ISSUER; accounturi=ACCOUNT-URL[; policy=wildcard][;
	// persistUntil=UNIX-SECONDS]".
	PersistDraft01 PersistForm = iota + 1
	// A later form that binds the account key (-02: a hash of the account
	// URI and key) goes here, with its case in PersistSpec.Value and in
	// persistForm, which picks the form a challenge asks for.
)

func (f PersistForm) String() string {
	switch f {
	case PersistDraft01:
		return "draft-ietf-acme-dns-persist-01"
	}
	return fmt.Sprintf("dns-persist form %d", int(f))
}

// PersistSpec is what one dns-persist-01 record says.
type PersistSpec struct {
	Form         PersistForm // zero: PersistDraft01
	IssuerDomain string      // one of the CA's issuer-domain-names
	AccountURI   string      // the account's URL at the CA
	// AccountKey is the account's public key, for forms that bind it;
	// PersistDraft01 does not use it.
	AccountKey   crypto.PublicKey
	Wildcard     bool      // policy=wildcard: the name, its subdomains and its wildcard
	PersistUntil time.Time // zero: no persistUntil
}

// Value is the record's TXT value in spec's form.
func (s PersistSpec) Value() (string, error) {
	switch s.Form {
	case 0, PersistDraft01:
	default:
		return "", fmt.Errorf("dns-persist: %s is not supported by this version of renewer", s.Form)
	}
	issuer := normalizeIssuer(s.IssuerDomain)
	if issuer == "" || strings.ContainsAny(issuer, "; \t\"") {
		return "", fmt.Errorf("dns-persist: invalid issuer domain name %q", s.IssuerDomain)
	}
	if s.AccountURI == "" || !validPersistValue(s.AccountURI) {
		return "", fmt.Errorf("dns-persist: invalid account URI %q", s.AccountURI)
	}
	v := issuer + "; accounturi=" + s.AccountURI
	if s.Wildcard {
		v += "; policy=wildcard"
	}
	if !s.PersistUntil.IsZero() {
		v += "; persistUntil=" + strconv.FormatInt(s.PersistUntil.Unix(), 10)
	}
	return v, nil
}

// PersistRecord is the TXT value, in the draft -01 form, that authorizes the
// account accountURI at the CA known as issuerDomain; policy is "" or
// "wildcard"; a zero persistUntil leaves it out. See PersistSpec for other
// forms.
func PersistRecord(issuerDomain, accountURI, policy string, persistUntil time.Time) (string, error) {
	var wildcard bool
	switch strings.ToLower(policy) {
	case "":
	case "wildcard":
		wildcard = true
	default:
		return "", fmt.Errorf("dns-persist: policy %q: the only policy is \"wildcard\"", policy)
	}
	return PersistSpec{Form: PersistDraft01, IssuerDomain: issuerDomain, AccountURI: accountURI, Wildcard: wildcard, PersistUntil: persistUntil}.Value()
}

// PersistName is the fully qualified name of the record for domain (a
// wildcard's record is its base name's): "_validation-persist.example.com.".
func PersistName(domain string) string {
	d := strings.TrimSuffix(strings.TrimPrefix(strings.ToLower(domain), "*."), ".")
	return PersistLabel + "." + d + "."
}

// PersistZoneLine is the record in zone-file form, with the value split
// into quoted strings of at most 255 bytes (RFC 1035 <character-string>).
func PersistZoneLine(domain, value string, ttl int) string {
	var parts []string
	for len(value) > 255 {
		parts = append(parts, value[:255])
		value = value[255:]
	}
	parts = append(parts, value)
	for i, p := range parts {
		parts[i] = strconv.Quote(p)
	}
	return fmt.Sprintf("%s %d IN TXT %s", PersistName(domain), ttl, strings.Join(parts, " "))
}

func normalizeIssuer(s string) string {
	return strings.TrimSuffix(strings.ToLower(strings.TrimSpace(s)), ".")
}

// validPersistValue: a parameter value of RFC 8659 (printable ASCII, no
// ';', no space).
func validPersistValue(v string) bool {
	for _, r := range v {
		if (r < 0x21 || r > 0x7E) || r == ';' {
			return false
		}
	}
	return true
}

// ParsePersistValue reads a record's TXT value as a CA does (RFC 8659
// issue-value, tags case-insensitive, unknown tags ignored, a policy other
// than "wildcard" treated as none).
func ParsePersistValue(v string) (PersistSpec, error) {
	parts := strings.Split(v, ";")
	s := PersistSpec{Form: PersistDraft01, IssuerDomain: normalizeIssuer(strings.Trim(parts[0], " \t"))}
	if s.IssuerDomain == "" {
		return s, errors.New("no issuer domain name before the first ';'")
	}
	seen := map[string]bool{}
	for _, p := range parts[1:] {
		p = strings.Trim(p, " \t")
		if p == "" {
			return s, errors.New("empty parameter or trailing ';'")
		}
		tag, val, ok := strings.Cut(p, "=")
		tag, val = strings.ToLower(strings.Trim(tag, " \t")), strings.Trim(val, " \t")
		if !ok || tag == "" {
			return s, fmt.Errorf("parameter %q is not tag=value", p)
		}
		if seen[tag] {
			return s, fmt.Errorf("parameter %q appears twice", tag)
		}
		seen[tag] = true
		if !validPersistValue(val) {
			return s, fmt.Errorf("parameter %q has an invalid value %q", tag, val)
		}
		switch tag {
		case "accounturi":
			s.AccountURI = val
		case "policy":
			s.Wildcard = strings.EqualFold(val, "wildcard")
		case "persistuntil":
			n, err := strconv.ParseInt(val, 10, 64)
			if err != nil {
				return s, fmt.Errorf("persistUntil %q is not a UNIX time in seconds", val)
			}
			s.PersistUntil = time.Unix(n, 0).UTC()
		}
	}
	if s.AccountURI == "" {
		return s, errors.New("no accounturi parameter")
	}
	return s, nil
}

// PersistProblemKind says what is wrong with a name's dns-persist records.
type PersistProblemKind string

// What can be wrong, from the worst to the closest to right.
const (
	PersistLookupFailed PersistProblemKind = "lookup failed"        // the resolvers did not answer
	PersistMissing      PersistProblemKind = "no record"            // no TXT record at the name
	PersistWrongIssuer  PersistProblemKind = "wrong issuer"         // records, none naming the CA's issuer domain
	PersistMalformed    PersistProblemKind = "malformed record"     // a record for the CA that it cannot parse
	PersistOtherAccount PersistProblemKind = "another account"      // a record for the CA, naming another account
	PersistNoWildcard   PersistProblemKind = "no policy=wildcard"   // right account, but a wildcard needs the policy
	PersistExpired      PersistProblemKind = "expired persistUntil" // right account, but its persistUntil has passed
)

// PersistProblem is why the records at one name would not validate.
type PersistProblem struct {
	Domain string // the name being validated (a wildcard as configured)
	Name   string // the record's name
	Kind   PersistProblemKind
	Detail string
}

func (p PersistProblem) String() string {
	return fmt.Sprintf("%s: %s: %s", p.Name, p.Kind, p.Detail)
}

// persistWant is what a name's records must show for the CA to validate.
type persistWant struct {
	Issuers    []string // the CA's issuer domain names; empty: not known yet, any
	AccountURI string
	Wildcard   bool // the name is a wildcard: policy=wildcard is needed
}

// judgePersist says why none of the TXT values txts (at domain's record
// name) would validate for want at now, or nil when one would. Among
// several wrong records it reports the one closest to right.
func judgePersist(domain string, txts []string, want persistWant, now time.Time) *PersistProblem {
	name := PersistName(domain)
	prob := func(k PersistProblemKind, format string, args ...any) *PersistProblem {
		return &PersistProblem{Domain: domain, Name: name, Kind: k, Detail: fmt.Sprintf(format, args...)}
	}
	if len(txts) == 0 {
		return prob(PersistMissing, "there is no TXT record at %s", name)
	}
	rank := []PersistProblemKind{PersistWrongIssuer, PersistMalformed, PersistOtherAccount, PersistNoWildcard, PersistExpired}
	var best *PersistProblem
	keep := func(p *PersistProblem) {
		if best == nil || slices.Index(rank, p.Kind) > slices.Index(rank, best.Kind) {
			best = p
		}
	}
	var otherIssuers []string
	for _, v := range txts {
		issuer, _, _ := strings.Cut(v, ";")
		issuer = normalizeIssuer(strings.Trim(issuer, " \t"))
		if len(want.Issuers) > 0 && !slices.Contains(want.Issuers, issuer) {
			otherIssuers = append(otherIssuers, fmt.Sprintf("%q", issuer))
			continue
		}
		s, err := ParsePersistValue(v)
		switch {
		case err != nil:
			keep(prob(PersistMalformed, "the record %q for issuer %s cannot be read: %v", v, issuer, err))
		case s.AccountURI != want.AccountURI:
			keep(prob(PersistOtherAccount, "the record for issuer %s names the account %s, not this account %s", issuer, s.AccountURI, want.AccountURI))
		case want.Wildcard && !s.Wildcard:
			keep(prob(PersistNoWildcard, "the record for this account lacks policy=wildcard, which %s needs", domain))
		case !s.PersistUntil.IsZero() && now.After(s.PersistUntil):
			keep(prob(PersistExpired, "the record for this account has persistUntil=%d (%s), which has passed",
				s.PersistUntil.Unix(), s.PersistUntil.UTC().Format(time.RFC3339)))
		default:
			return nil
		}
	}
	if best == nil {
		slices.Sort(otherIssuers)
		return prob(PersistWrongIssuer, "the TXT records name the issuer %s, but the CA's issuer domain is %s",
			strings.Join(slices.Compact(otherIssuers), ", "), strings.Join(want.Issuers, " or "))
	}
	return best
}

// PersistRecordError is returned before any order is placed when the
// dns-persist-01 records of some names would not validate. It names what
// is wrong and the record to publish.
type PersistRecordError struct {
	Problems []PersistProblem
	// Want is the record this account needs at each name, "name TXT value".
	Want []string
}

func (e *PersistRecordError) Error() string {
	var b strings.Builder
	b.WriteString("dns-persist-01 record not usable: ")
	for i, p := range e.Problems {
		if i > 0 {
			b.WriteString("; ")
		}
		b.WriteString(p.String())
	}
	if len(e.Want) > 0 {
		b.WriteString("; publish " + strings.Join(e.Want, " and ") + " (renewer dns-persist record)")
	}
	return b.String()
}
