// Package dnsmeta knows the DNS providers of lego's by-name registry without
// importing them: their names, aliases and the environment variables each
// one reads. The table is generated from the pinned lego module's sources
// (go generate), so config validation can reject an unknown provider and
// the acme package can name missing credentials without linking 200 SDKs.
package dnsmeta

//go:generate go run ./gen

import (
	"cmp"
	"regexp"
	"slices"
	"strings"
)

// Provider is one lego DNS provider.
type Provider struct {
	Names       []string // registry names; the first is the canonical one, the rest aliases
	Credentials []string // variables lego lists as credentials (some are alternatives or aliases)
	Additional  []string // optional settings (timeouts, TTL, base URLs...)
}

// Name is the provider's canonical name.
func (p Provider) Name() string { return p.Names[0] }

// Lookup finds a provider by any of its names.
func Lookup(name string) (Provider, bool) {
	for _, p := range providers {
		if slices.Contains(p.Names, name) {
			return p, true
		}
	}
	return Provider{}, false
}

// Names returns every accepted name (aliases included), sorted.
func Names() []string {
	var out []string
	for _, p := range providers {
		out = append(out, p.Names...)
	}
	slices.Sort(out)
	return out
}

// Count is the number of providers (aliases not counted).
func Count() int { return len(providers) }

// Closest returns up to n accepted names nearest to name by edit distance,
// nearest first; names sharing a prefix with name rank first among equals.
func Closest(name string, n int) []string {
	name = strings.ToLower(name)
	type cand struct {
		name string
		dist int
	}
	var cs []cand
	for _, p := range Names() {
		d := distance(name, p)
		if strings.HasPrefix(p, name) || strings.HasPrefix(name, p) {
			d = min(d, 1)
		}
		cs = append(cs, cand{p, d})
	}
	slices.SortStableFunc(cs, func(a, b cand) int { return cmp.Compare(a.dist, b.dist) })
	var out []string
	limit := max(3, len(name)/2) // beyond this the suggestion is noise
	for _, c := range cs {
		if len(out) == n || c.dist > limit {
			break
		}
		out = append(out, c.name)
	}
	return out
}

// distance is the Levenshtein distance of a and b.
func distance(a, b string) int {
	prev := make([]int, len(b)+1)
	cur := make([]int, len(b)+1)
	for j := range prev {
		prev[j] = j
	}
	for i := 1; i <= len(a); i++ {
		cur[0] = i
		for j := 1; j <= len(b); j++ {
			cost := 1
			if a[i-1] == b[j-1] {
				cost = 0
			}
			cur[j] = min(prev[j]+1, cur[j-1]+1, prev[j-1]+cost)
		}
		prev, cur = cur, prev
	}
	return prev[len(b)]
}

// secretNameRE matches variables that hold credentials (API_TOKEN,
// TSIG_SECRET, ACCESS_KEY, PASSWORD...), as opposed to settings such as a
// nameserver or a timeout.
var secretNameRE = regexp.MustCompile(`SECRET|TOKEN|PASSW|_PASS$|_PASS_|KEY|AUTH|CREDENTIAL|PRIVATE`)

// IsSecret reports whether the variable name looks like it holds a
// credential. It errs on the side of yes (DNSUPDATE_TSIG_KEY is a key's
// name, not the key).
func IsSecret(name string) bool { return secretNameRE.MatchString(strings.ToUpper(name)) }
