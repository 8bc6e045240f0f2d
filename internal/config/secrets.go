package config

import (
	"cmp"
	"fmt"
	"os"
	"slices"
	"strings"

	"github.com/hashicorp/hcl/v2"
	"github.com/hashicorp/hcl/v2/hclsyntax"
	"github.com/zclconf/go-cty/cty"

	"github.com/renewer/renewer/internal/dnsmeta"
)

// SecretField is a secret written literally in the config file (not read
// with env() or file()): an EAB HMAC key, a DNS provider credential, a
// webhook URL or header, an SMTP password.
type SecretField struct {
	Field string // e.g. "acme.eab.hmac", `dns env "DNSUPDATE_TSIG_SECRET"`
	Range hcl.Range
}

func (s SecretField) String() string {
	return fmt.Sprintf("%s (line %d)", s.Field, s.Range.Start.Line)
}

// literal reports whether expr calls no function: its value is written in
// the file itself.
func literal(expr hcl.Expression) bool {
	node, ok := expr.(hclsyntax.Node)
	if !ok {
		return true
	}
	calls := false
	_ = hclsyntax.VisitAll(node, func(n hclsyntax.Node) hcl.Diagnostics {
		if _, ok := n.(*hclsyntax.FunctionCallExpr); ok {
			calls = true
		}
		return nil
	})
	return !calls
}

// noteSecret records a when its value is written in the file.
func (d *decoder) noteSecret(field string, a *hcl.Attribute) {
	if a != nil && literal(a.Expr) {
		d.secrets = append(d.secrets, SecretField{Field: field, Range: a.Range})
	}
}

// noteSecretMap records each element of the map a whose key secret()
// accepts and whose value is written in the file.
func (d *decoder) noteSecretMap(field string, a *hcl.Attribute, secret func(string) bool) {
	if a == nil {
		return
	}
	pairs, diags := hcl.ExprMap(a.Expr)
	if diags.HasErrors() { // not a literal map: one verdict for the whole
		if literal(a.Expr) {
			d.secrets = append(d.secrets, SecretField{Field: field, Range: a.Range})
		}
		return
	}
	for _, p := range pairs {
		k, kd := p.Key.Value(d.ctx)
		if kd.HasErrors() || !k.IsKnown() || k.IsNull() || k.Type() != cty.String || !secret(k.AsString()) {
			continue
		}
		if literal(p.Value) {
			d.secrets = append(d.secrets, SecretField{Field: fmt.Sprintf("%s %q", field, k.AsString()), Range: p.Value.Range()})
		}
	}
}

// isCredentialName: a DNS provider variable that holds a credential.
func isCredentialName(k string) bool { return dnsmeta.IsSecret(k) }

// PermissionWarning returns a warning when a config file (the main file or
// a conf.d file) holds secrets written in it and other users may read it
// (any "others" permission bit for reading); "" when all is well. A
// group-readable file (0640, root:renewer) is fine. Secrets read with env()
// or file() do not count. Several files give one sentence each, joined by "; ".
func PermissionWarning(cfg *Config) string {
	var files []string
	fields := map[string][]string{}
	for _, s := range cfg.LiteralSecrets {
		f := cmp.Or(s.Range.Filename, cfg.File)
		if fields[f] == nil {
			files = append(files, f)
		}
		fields[f] = append(fields[f], s.String())
	}
	var warnings []string
	for _, f := range files {
		fi, err := os.Stat(f)
		if f == "" || err != nil || fi.Mode().Perm()&0o004 == 0 {
			continue
		}
		fs := slices.Compact(fields[f])
		warnings = append(warnings, fmt.Sprintf("%s is readable by other users (mode %04o) and holds %s written in it: %s; "+
			"chmod 600 it (or 640 with renewer's group), or read the %s with env() or file()",
			f, fi.Mode().Perm(), plural(len(fs), "secret"), strings.Join(fs, ", "), plural(len(fs), "secret")))
	}
	return strings.Join(warnings, "; ")
}

func plural(n int, word string) string {
	if n == 1 {
		return word
	}
	return word + "s"
}
