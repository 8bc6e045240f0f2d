package cli

import (
	"context"
	"fmt"
	"slices"
	"strings"

	"github.com/renewer/renewer/internal/agent"
	"github.com/renewer/renewer/internal/config"
	"github.com/renewer/renewer/internal/preflight"
)

type listFlag []string

func (l *listFlag) String() string     { return strings.Join(*l, ",") }
func (l *listFlag) Set(s string) error { *l = append(*l, s); return nil }

// cmdCheck runs the pre-flight checks (internal/preflight) for the named
// certificates (all when none are named) and prints each finding with what
// to fix. Exit 0: nothing found; 1: warnings; 2: a blocking problem.
func cmdCheck(ctx context.Context, e *env, g *globals, args []string) int {
	fs := flags(e, g, "check", "[--resolver HOST:PORT]... [NAME...]")
	var resolvers listFlag
	fs.Var(&resolvers, "resolver", "nameserver to ask (host:port; repeatable); default: the certificate's dns resolvers, else /etc/resolv.conf")
	httpPort := fs.Int("http-port", 80, "port the CA fetches HTTP-01 answers from (80; other values only for test CAs)")
	if code, ok := parse(fs, args); !ok {
		return code
	}
	cfg, ok := loadConfig(e, g)
	if !ok {
		return ExitUsage
	}
	certs := cfg.Certificates
	if names := fs.Args(); len(names) > 0 {
		certs = nil
		for _, n := range names {
			i := slices.IndexFunc(cfg.Certificates, func(c config.Certificate) bool { return c.Name == n })
			if i < 0 {
				fmt.Fprintf(e.stderr, "renewer check: no certificate %q in %s\n", n, g.config)
				return ExitUsage
			}
			certs = append(certs, cfg.Certificates[i])
		}
	}
	findings := preflight.Storage(cfg.Storage.Path)
	cas := preflight.CAs(ctx, cfg.ACME)
	for _, ca := range cas {
		if ca.Err != nil {
			findings = append(findings, preflight.Finding{Check: "caa", Level: preflight.Warning,
				Problem: fmt.Sprintf("cannot read the CA's directory to learn its CAA identities: %v", ca.Err),
				Fix:     "check the directory URL, the network and ca_bundle"})
		}
	}
	o := preflight.Options{Resolvers: resolvers, HTTPPort: *httpPort, CAs: cas, Credentials: func(c config.Certificate) error { return agent.CheckCredential(c, e.deps.DNSProviders) }}
	for _, c := range certs {
		findings = append(findings, preflight.Certificate(ctx, c, o)...)
	}
	for _, f := range findings {
		fmt.Fprintln(e.stdout, f)
	}
	switch preflight.Worst(findings) {
	case preflight.Blocking:
		fmt.Fprintf(e.stdout, "%d %s; renewer will not order until the blocking ones are fixed\n", len(findings), plural(len(findings), "problem"))
		return ExitCritical
	case preflight.Warning:
		fmt.Fprintf(e.stdout, "%d %s (warnings: an order may still succeed)\n", len(findings), plural(len(findings), "problem"))
		return ExitFailure
	}
	fmt.Fprintf(e.stdout, "all checks passed for %d %s\n", len(certs), plural(len(certs), "certificate"))
	return ExitOK
}
