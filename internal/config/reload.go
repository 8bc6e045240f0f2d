package config

import (
	"fmt"

	"github.com/hashicorp/hcl/v2"
)

// A reload block is a command shared by many certificates, such as
// reloading nginx: a pass runs it once, after every certificate of the pass
// that names it is installed (consul-template's rule), and its result counts
// for each of them. Its settings are a hook's (command, timeout, env).
//
//	reload "nginx" { command = ["systemctl", "reload", "nginx"] }
//	certificate "www" { ... reload = ["nginx"] }

// Reload returns the reload block named name.
func (c *Config) Reload(name string) (Hook, bool) {
	for _, r := range c.Reloads {
		if r.Name == name {
			return r, true
		}
	}
	return Hook{}, false
}

func (d *decoder) reloads(blocks hcl.Blocks) []Hook {
	var out []Hook
	first := map[string]*hcl.Block{}
	for _, b := range blocks {
		name := b.Labels[0]
		if f, dup := first[name]; dup {
			d.errorAt(b.LabelRanges[0], "Duplicate reload", fmt.Sprintf(
				"A reload named %q is already defined at line %d.", name, f.DefRange.Start.Line))
			continue
		}
		first[name] = b
		out = append(out, d.hook(b))
	}
	return out
}

// reloadRefs decodes a certificate's reload = ["NAME", ...].
func (d *decoder) reloadRefs(a *hcl.Attribute) ([]string, []hcl.Range) {
	var names []string
	if !d.eval(a, &names) {
		return nil, nil
	}
	ranges := elementRanges(a.Expr, len(names))
	seen := map[string]bool{}
	var out []string
	var outRanges []hcl.Range
	for i, n := range names {
		if seen[n] {
			d.errorAt(ranges[i], "Duplicate reload", fmt.Sprintf("%q is already listed.", n))
			continue
		}
		seen[n] = true
		out, outRanges = append(out, n), append(outRanges, ranges[i])
	}
	return out, outRanges
}

// checkReloadRefs reports each reload name of c that no reload block of
// cfg defines.
func (d *decoder) checkReloadRefs(cfg *Config, c Certificate) {
	for i, n := range c.Reloads {
		if _, ok := cfg.Reload(n); !ok {
			d.errorAt(c.reloadRanges[i], "Unknown reload", fmt.Sprintf(
				"No reload block is named %q; define one in the main config file, e.g. reload %q { command = [\"systemctl\", \"reload\", %q] }.", n, n, n))
		}
	}
}
