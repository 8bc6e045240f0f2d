package agent

import (
	"fmt"

	"github.com/renewer/renewer/internal/certinfo"
	"github.com/renewer/renewer/internal/config"
	"github.com/renewer/renewer/internal/plan"
	"github.com/renewer/renewer/internal/store"
)

// RuleWarnings checks each certificate's renew_before against the lifetime
// of its live certificate, when one can be read, and returns one warning,
// starting with file:line:col of the certificate block, for each rule that
// does not fit (plan.FallbackNote). It reads without opening the store, so
// `renewer validate` can run it as any user.
func RuleWarnings(cfg *config.Config) []string {
	var out []string
	for _, c := range cfg.Certificates {
		if c.RenewBefore.Duration <= 0 {
			continue
		}
		f, err := certinfo.Load(store.LiveFullchain(cfg.Storage.Path, c.Name), "")
		if err != nil {
			continue
		}
		if note := plan.FallbackNote(f, c.RenewBefore); note != "" {
			r := c.DeclRange
			out = append(out, fmt.Sprintf("%s:%d:%d: certificate %q: %s", r.Filename, r.Start.Line, r.Start.Column, c.Name, note))
		}
	}
	return out
}
