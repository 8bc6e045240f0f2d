package config

import (
	"encoding/base64"
	"fmt"
	"net/mail"
	"net/url"
	"strings"

	"github.com/hashicorp/hcl/v2"
)

// CA is one ACME certificate authority renewer may order from.
type CA struct {
	Directory        string // resolved URL
	StagingDirectory string // its staging twin for --dry-run; equals Directory when unknown
	CABundle         string // extra PEM roots for the CA's TLS (path resolved)
	EAB              *EAB
	PreferredChain   string
}

// EAB is an external account binding (RFC 8555 §7.3.4): the key identifier
// and base64url HMAC key the CA gave you.
type EAB struct {
	KID  string
	HMAC string
}

// CAs returns the primary CA followed by the fallbacks, in the order tried.
func (a ACME) CAs() []CA {
	return append([]CA{{
		Directory: a.Directory, StagingDirectory: a.StagingDirectory, CABundle: a.CABundle,
		EAB: a.EAB, PreferredChain: a.PreferredChain,
	}}, a.Fallback...)
}

// knownDirectories are the directory shorthands accepted besides a URL,
// with their staging twins.
var knownDirectories = map[string][2]string{
	"letsencrypt":         {LetsEncrypt, LetsEncryptStaging},
	"letsencrypt-staging": {LetsEncryptStaging, LetsEncryptStaging},
	"zerossl":             {"https://acme.zerossl.com/v2/DV90", "https://acme.zerossl.com/v2/DV90"},
	"google":              {"https://dv.acme-v02.api.pki.goog/directory", "https://dv.acme-v02.test-api.pki.goog/directory"},
	"google-staging":      {"https://dv.acme-v02.test-api.pki.goog/directory", "https://dv.acme-v02.test-api.pki.goog/directory"},
	"buypass":             {"https://api.buypass.com/acme/directory", "https://api.test4.buypass.no/acme/directory"},
	"buypass-staging":     {"https://api.test4.buypass.no/acme/directory", "https://api.test4.buypass.no/acme/directory"},
}

// directory resolves a directory attribute into its URL and staging twin.
func (d *decoder) directory(attr *hcl.Attribute, dir, staging *string) {
	var s string
	if !d.eval(attr, &s) {
		return
	}
	if k, ok := knownDirectories[s]; ok {
		*dir, *staging = k[0], k[1]
		return
	}
	u, err := url.Parse(s)
	if err != nil || (u.Scheme != "https" && u.Scheme != "http") || u.Host == "" {
		d.attrError(attr, "Invalid ACME directory", fmt.Sprintf(
			`%q is not an https:// URL or one of "letsencrypt", "letsencrypt-staging", "zerossl", "google", "google-staging", "buypass", "buypass-staging".`, s))
	}
	*dir, *staging = s, s
}

func (d *decoder) acme(b *hcl.Block) ACME {
	c := d.content(b.Body, []string{"directory", "email", "accept_terms", "ca_bundle", "preferred_chain"},
		hcl.BlockHeaderSchema{Type: "eab"}, hcl.BlockHeaderSchema{Type: "fallback"})
	a := ACME{Directory: LetsEncrypt, StagingDirectory: LetsEncryptStaging}
	d.directory(c.Attributes["directory"], &a.Directory, &a.StagingDirectory)
	if attr := c.Attributes["email"]; d.eval(attr, &a.Email) {
		if addr, err := mail.ParseAddress(a.Email); err != nil || addr.Name != "" || addr.Address != a.Email {
			d.attrError(attr, "Invalid e-mail address",
				fmt.Sprintf("%q does not look like an e-mail address such as ops@example.com.", a.Email))
		}
	}
	d.eval(c.Attributes["accept_terms"], &a.AcceptTerms)
	a.CABundle = d.caBundle(c.Attributes["ca_bundle"])
	d.eval(c.Attributes["preferred_chain"], &a.PreferredChain)
	blocks := c.Blocks.ByType()
	if eb := d.single(blocks["eab"]); eb != nil {
		a.EAB = d.eab(eb, "acme.eab.hmac")
	}
	seen := map[string]int{a.Directory: b.DefRange.Start.Line}
	for i, fb := range blocks["fallback"] {
		fc := d.content(fb.Body, []string{"directory", "ca_bundle", "preferred_chain"}, hcl.BlockHeaderSchema{Type: "eab"})
		ca := CA{CABundle: a.CABundle}
		attr := fc.Attributes["directory"]
		if attr == nil {
			d.missing(fb, "directory")
		}
		d.directory(attr, &ca.Directory, &ca.StagingDirectory)
		if line, dup := seen[ca.Directory]; dup && ca.Directory != "" {
			d.attrError(attr, "Duplicate ACME directory", fmt.Sprintf(
				"%s is already used by the block at line %d; a fallback must be another CA.", ca.Directory, line))
		} else if ca.Directory != "" {
			seen[ca.Directory] = fb.DefRange.Start.Line
		}
		if ab := fc.Attributes["ca_bundle"]; ab != nil {
			ca.CABundle = d.caBundle(ab)
		}
		d.eval(fc.Attributes["preferred_chain"], &ca.PreferredChain)
		if eb := d.single(fc.Blocks.ByType()["eab"]); eb != nil {
			ca.EAB = d.eab(eb, fmt.Sprintf("acme.fallback[%d].eab.hmac", i))
		}
		a.Fallback = append(a.Fallback, ca)
	}
	return a
}

func (d *decoder) caBundle(attr *hcl.Attribute) string {
	if attr == nil {
		return ""
	}
	p, raw, ok := d.path(attr)
	if !ok {
		return ""
	}
	if err := checkPEMCerts(p); err != nil {
		d.attrError(attr, "Invalid ca_bundle", fmt.Sprintf("ca_bundle %q %s.", raw, err))
	}
	return p
}

func (d *decoder) eab(b *hcl.Block, field string) *EAB {
	c := d.content(b.Body, []string{"kid", "hmac"})
	e := &EAB{}
	kid, hmac := c.Attributes["kid"], c.Attributes["hmac"]
	if kid == nil {
		d.missing(b, "kid")
	}
	if hmac == nil {
		d.missing(b, "hmac")
	}
	if d.eval(kid, &e.KID) && e.KID == "" {
		d.attrError(kid, "Empty kid", "kid must be the key identifier your CA gave you.")
	}
	d.noteSecret(field, hmac)
	if d.eval(hmac, &e.HMAC) {
		e.HMAC = strings.TrimRight(strings.TrimSpace(e.HMAC), "=")
		// The secret itself never appears in a message.
		if _, err := base64.RawURLEncoding.DecodeString(e.HMAC); err != nil || e.HMAC == "" {
			d.attrError(hmac, "Invalid hmac", "hmac must be the base64url-encoded HMAC key your CA gave you (its value is not shown).")
		}
	}
	return e
}
