// Package cli is renewer's command line: it parses flags, loads the config,
// calls the agent and prints. No renewal logic lives here.
package cli

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"io"
	"log/slog"
	"os"
	"path/filepath"
	"runtime/debug"
	"strings"

	"github.com/renewer/renewer/internal/agent"
	"github.com/renewer/renewer/internal/config"
)

// Exit codes. 0, 1 and 2 follow the monitoring-plugin convention for
// `status`; every command uses them in the same sense.
const (
	ExitOK       = 0 // all is well
	ExitFailure  = 1 // something failed, or (status) a warning: due or failing
	ExitCritical = 2 // (status) a certificate is expired or in its last tenth of life
	ExitUsage    = 3 // bad flags or an invalid config: nothing was attempted
)

// DefaultConfig is used when neither --config nor $RENEWER_CONFIG is set.
const DefaultConfig = "/etc/renewer/renewer.hcl"

// Version is set at build time with -ldflags "-X .../internal/cli.Version=v1.2.3".
var Version = ""

func version() string {
	if Version != "" {
		return Version
	}
	if bi, ok := debug.ReadBuildInfo(); ok && bi.Main.Version != "" && bi.Main.Version != "(devel)" {
		return bi.Main.Version
	}
	return "devel"
}

// env is the process environment as Run sees it (tests swap it).
type env struct {
	stdout, stderr io.Writer
	getenv         func(string) string
	deps           Deps
}

// Deps are what the binary wires in, chosen by build tag (cmd/renewer):
// the DNS providers it links and how a fleet block is opened. A zero Deps
// has neither: a dns challenge or a fleet block then fails with a message
// that says so.
type Deps struct {
	DNSProviders agent.DNSProviderFunc
	Fleet        FleetOpener // nil: no fleet mode (the lean build)
}

// globals are the flags every command takes.
type globals struct {
	config    string
	logFormat string
	logLevel  string
}

func (g *globals) register(fs *flag.FlagSet, getenv func(string) string) {
	def := getenv("RENEWER_CONFIG")
	if def == "" {
		def = DefaultConfig
	}
	if g.config == "" {
		g.config = def
	}
	fs.StringVar(&g.config, "config", g.config, "configuration file (default $RENEWER_CONFIG or "+DefaultConfig+")")
	fs.StringVar(&g.logFormat, "log-format", or(g.logFormat, "text"), "log format: text or json")
	fs.StringVar(&g.logLevel, "log-level", or(g.logLevel, "info"), "log level: debug, info, warn or error")
}

func or(s, def string) string {
	if s == "" {
		return def
	}
	return s
}

type command struct {
	name, args, help string
	run              func(ctx context.Context, e *env, g *globals, args []string) int
}

var commands []command

func init() {
	commands = []command{
		{"run", "", "the daemon: renew on schedule until SIGTERM; SIGHUP reloads the config", cmdRun},
		{"renew", "[--force] [--dry-run] [NAME...]", "renew what is due (or the named certificates, with --force), once, then exit", cmdRenew},
		{"status", "[--json] [NAME...]", "show each certificate's expiry, next renewal and last result; exit 0 ok, 1 warning, 2 critical", cmdStatus},
		{"plan", "[NAME...]", "show what would be renewed, when, and why", cmdPlan},
		{"validate", "", "check the configuration and print every problem with file:line:column", cmdValidate},
		{"check", "[--resolver HOST:PORT]... [NAME...]", "pre-flight checks: writable storage, DNS, HTTP-01 reachability, CAA, DNS-01 zone and credentials, hooks; exit 0 ok, 1 warnings, 2 blocking", cmdCheck},
		{"inspect", "[NAME...] | --cert FILE [--key FILE]", "show the facts of installed certificates or of any PEM files", cmdInspect},
		{"revoke", "[--reason R] [--no-renew] NAME", "revoke the live certificate at the CA that issued it, then renew it", cmdRevoke},
		{"account", accountArgs, "give the ACME account a new key at the CA (RFC 8555 key rollover); the old key stays until the CA took the new one", cmdAccount},
		{"import", importArgs, "write a configuration for certbot's lineages (default /etc/letsencrypt) and adopt their certificates", cmdImport},
		{"dns-persist", persistArgs, "print the TXT record each dns-persist certificate needs at each CA (zone-file line, name and value) and whether it is published; exit 0 published, 1 missing or wrong", cmdDNSPersist},
		{"fleet", fleetArgs, "fleet mode: forget a node that left the fleet (its reports in etcd), so status stops showing it", cmdFleet},
		{"systemd", systemdArgs, "helpers of the shipped systemd units: list the directories the config makes renewer write (paths), the generator, ExecStartPre and ExecReload", cmdSystemd},
		{"version", "", "print the version", cmdVersion},
	}
}

// Run is the whole program, with the dependencies the binary wires in: it
// returns the exit code.
func Run(ctx context.Context, deps Deps, args []string, stdout, stderr io.Writer) int {
	return run(ctx, &env{stdout: stdout, stderr: stderr, getenv: os.Getenv, deps: deps}, args)
}

func run(ctx context.Context, e *env, args []string) int {
	var g globals
	top := flag.NewFlagSet("renewer", flag.ContinueOnError)
	top.SetOutput(e.stderr)
	g.register(top, e.getenv)
	top.Usage = func() { usage(e.stderr, top) }
	if err := top.Parse(args); err != nil {
		if errors.Is(err, flag.ErrHelp) {
			return ExitOK
		}
		return ExitUsage
	}
	if top.NArg() == 0 {
		usage(e.stderr, top)
		return ExitUsage
	}
	name, rest := top.Arg(0), top.Args()[1:]
	for _, c := range commands {
		if c.name == name {
			return c.run(ctx, e, &g, rest)
		}
	}
	if name == "help" {
		return cmdHelp(e, top, rest) // help.go
	}
	fmt.Fprintf(e.stderr, "renewer: unknown command %q (see renewer help)\n", name)
	return ExitUsage
}

func usage(w io.Writer, top *flag.FlagSet) {
	fmt.Fprintf(w, "renewer keeps ACME certificates renewed, installed and deployed.\n\nUsage: renewer [global flags] COMMAND [flags] [args]\n\nCommands:\n")
	for _, c := range commands {
		fmt.Fprintf(w, "  %-9s %s\n            %s\n", c.name, c.args, c.help)
	}
	fmt.Fprintf(w, "  %-9s %s\n            %s\n", "help", "[TOPIC]", "list the documentation topics, or print one (renewer help config)")
	fmt.Fprintf(w, "\nGlobal flags (also accepted after the command):\n")
	top.SetOutput(w)
	top.PrintDefaults()
}

// flags makes a command's flag set with the global flags included.
func flags(e *env, g *globals, name, args string) *flag.FlagSet {
	fs := flag.NewFlagSet("renewer "+name, flag.ContinueOnError)
	fs.SetOutput(e.stderr)
	g.register(fs, e.getenv)
	fs.Usage = func() {
		fmt.Fprintf(e.stderr, "Usage: renewer %s %s\n", name, args)
		fs.PrintDefaults()
	}
	return fs
}

// parse parses a command's flags; ok=false means return code.
func parse(fs *flag.FlagSet, args []string) (code int, ok bool) {
	if err := fs.Parse(args); err != nil {
		if errors.Is(err, flag.ErrHelp) {
			return ExitOK, false
		}
		return ExitUsage, false
	}
	return 0, true
}

func (g *globals) logger(w io.Writer) (*slog.Logger, error) {
	var level slog.Level
	if err := level.UnmarshalText([]byte(g.logLevel)); err != nil {
		return nil, fmt.Errorf("--log-level: %w", err)
	}
	o := &slog.HandlerOptions{Level: level}
	switch g.logFormat {
	case "text":
		return slog.New(slog.NewTextHandler(w, o)), nil
	case "json":
		return slog.New(slog.NewJSONHandler(w, o)), nil
	}
	return nil, fmt.Errorf("--log-format must be text or json, not %q", g.logFormat)
}

// loadConfig loads and validates the config, printing every problem.
func loadConfig(e *env, g *globals) (*config.Config, bool) {
	cfg, err := config.Load(g.config)
	if err != nil {
		var errs *config.Errors
		if errors.As(err, &errs) {
			fmt.Fprintln(e.stderr, errs.Error())
			fmt.Fprintf(e.stderr, "renewer: %s is not valid (%d %s)\n", g.config, len(errs.Diags.Errs()), plural(len(errs.Diags.Errs()), "error"))
		} else {
			fmt.Fprintf(e.stderr, "renewer: %v\n", err)
		}
		return nil, false
	}
	if w := config.PermissionWarning(cfg); w != "" {
		fmt.Fprintf(e.stderr, "renewer: warning: %s\n", w)
	}
	return cfg, true
}

// newAgent loads the config and opens the agent for commands that work on it.
func newAgent(e *env, g *globals) (*agent.Agent, *config.Config, int) {
	log, err := g.logger(e.stderr)
	if err != nil {
		fmt.Fprintf(e.stderr, "renewer: %v\n", err)
		return nil, nil, ExitUsage
	}
	cfg, ok := loadConfig(e, g)
	if !ok {
		return nil, nil, ExitUsage
	}
	o := agent.Options{Log: log, Version: version(), CloseFleet: true, DNSProviders: e.deps.DNSProviders}
	if cfg.Fleet != nil {
		b, err := openFleetBlock(e.deps.Fleet, cfg.Fleet, log)
		if err != nil {
			fmt.Fprintf(e.stderr, "renewer: fleet mode: %v\n", err)
			return nil, nil, ExitFailure
		}
		o.Fleet = b
	}
	a, err := agent.New(cfg, o)
	if err != nil {
		if b, ok := o.Fleet.(FleetBackend); ok {
			b.Close()
		}
		fmt.Fprintf(e.stderr, "renewer: %v\n", err)
		return nil, nil, ExitFailure
	}
	return a, cfg, ExitOK
}

// openSelected opens the agent and selects the named certificates (all when
// none are named); on failure it has printed why and returns the exit code.
func openSelected(e *env, g *globals, cmd string, names []string) (*agent.Agent, []config.Certificate, int) {
	a, _, code := newAgent(e, g)
	if a == nil {
		return nil, nil, code
	}
	certs, err := a.Select(names)
	if err != nil {
		a.Close()
		fmt.Fprintf(e.stderr, "renewer %s: %v\n", cmd, err)
		return nil, nil, ExitUsage
	}
	return a, certs, ExitOK
}

func plural(n int, word string) string {
	if n == 1 {
		return word
	}
	return word + "s"
}

func cmdVersion(_ context.Context, e *env, _ *globals, _ []string) int {
	fmt.Fprintf(e.stdout, "renewer %s\n", version())
	return ExitOK
}

func cmdValidate(_ context.Context, e *env, g *globals, args []string) int {
	fs := flags(e, g, "validate", "")
	if code, ok := parse(fs, args); !ok {
		return code
	}
	if fs.NArg() > 0 {
		fmt.Fprintf(e.stderr, "renewer validate: unexpected arguments %s\n", strings.Join(fs.Args(), " "))
		return ExitUsage
	}
	cfg, ok := loadConfig(e, g)
	if !ok {
		return ExitUsage // an invalid config: the code every command gives it
	}
	// DNS providers are built (no CA is contacted): missing credentials show
	// now. The file is valid; a renewal with it would fail (exit 1, as
	// `renew` would).
	if errs := agent.CheckCredentials(cfg, e.deps.DNSProviders); len(errs) > 0 {
		for _, err := range errs {
			fmt.Fprintln(e.stderr, err)
		}
		fmt.Fprintf(e.stderr, "renewer: %s is not usable (%d %s)\n", g.config, len(errs), plural(len(errs), "error"))
		return ExitFailure
	}
	for _, w := range agent.RuleWarnings(cfg) {
		fmt.Fprintln(e.stderr, "warning: "+w)
	}
	fmt.Fprintf(e.stdout, "%s: valid, %d %s", g.config, len(cfg.Certificates), plural(len(cfg.Certificates), "certificate"))
	if n := len(cfg.ConfD); n > 0 {
		fmt.Fprintf(e.stdout, " (with %d %s of %s)", n, plural(n, "file"), filepath.Dir(cfg.ConfD[0]))
	}
	fmt.Fprintln(e.stdout)
	return ExitOK
}
