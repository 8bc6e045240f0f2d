package cli

import (
	"context"
	"fmt"
	"syscall"

	"github.com/renewer/renewer/internal/config"
	"github.com/renewer/renewer/internal/unitpaths"
)

const systemdArgs = "paths | generate DIR [DIR DIR] | prepare [--unit UNIT] | reload --pid PID [--unit UNIT]"

// cmdSystemd holds the helpers of the shipped systemd units (the generator,
// ExecStartPre= and ExecReload=); `paths` shows users what they grant.
func cmdSystemd(_ context.Context, e *env, g *globals, args []string) int {
	fs := flags(e, g, "systemd", systemdArgs)
	pid := fs.Int("pid", 0, "reload: the daemon's process (systemd's $MAINPID)")
	unit := fs.String("unit", "", "prepare, reload: the unit (prepare: regenerate its ReadWritePaths= when the config needs more; reload: bind into it)")
	if code, ok := parse(fs, args); !ok {
		return code
	}
	if fs.NArg() == 0 {
		fs.Usage()
		return ExitUsage
	}
	action, rest := fs.Arg(0), fs.Args()[1:]
	// Flags may follow the action too (reload --pid N).
	if code, ok := parse(fs, rest); !ok {
		return code
	}
	rest = fs.Args()
	switch action {
	case "paths":
		cfg, ok := loadConfig(e, g)
		if !ok {
			return ExitUsage
		}
		for _, p := range unitpaths.Writable(cfg) {
			fmt.Fprintf(e.stdout, "%s\t%s\n", p.Dir, p.Why)
		}
		return ExitOK
	case "generate":
		// A systemd generator: never fail the boot. Without a valid config
		// the units keep their own ReadWritePaths=, and `renewer run`
		// reports the config's problems (exit 3, not restarted).
		if len(rest) < 1 {
			fmt.Fprintln(e.stderr, "renewer systemd generate: the generator's output directory is missing")
			return ExitUsage
		}
		cfg, err := config.Load(g.config)
		if err != nil {
			fmt.Fprintf(e.stderr, "renewer-generator: %s: not valid, no ReadWritePaths= written (renewer run will say why)\n", g.config)
			return ExitOK
		}
		if err := unitpaths.Generate(rest[0], unitpaths.Writable(cfg)); err != nil {
			fmt.Fprintf(e.stderr, "renewer-generator: %v\n", err)
		}
		return ExitOK
	case "prepare":
		// ExecStartPre=+ (outside the sandbox): create the directories the
		// units bind writable, so a missing one never fails the namespace
		// set-up. An invalid config is left to `renewer run` (exit 3).
		cfg, err := config.Load(g.config)
		if err != nil {
			fmt.Fprintf(e.stderr, "renewer: %s is not valid: nothing prepared\n", g.config)
			return ExitOK
		}
		ps := unitpaths.Writable(cfg)
		made, err := unitpaths.Prepare(ps)
		for _, d := range made {
			fmt.Fprintf(e.stderr, "renewer: created %s\n", d)
		}
		if err != nil {
			fmt.Fprintf(e.stderr, "renewer: %v\n", err)
			return ExitFailure
		}
		// The config changed since the generator last ran (boot or
		// daemon-reload): run it again, so this start gets every path.
		if *unit != "" {
			granted, err := unitpaths.Granted("systemctl", *unit)
			if err != nil {
				fmt.Fprintf(e.stderr, "renewer: %v\n", err)
				return ExitFailure
			}
			if missing := unitpaths.MissingFrom(granted, ps); len(missing) > 0 {
				for _, p := range missing {
					fmt.Fprintf(e.stderr, "renewer: %s (%s) is new to %s: regenerating its ReadWritePaths=\n", p.Dir, p.Why, *unit)
				}
				if err := unitpaths.DaemonReload("systemctl"); err != nil {
					fmt.Fprintf(e.stderr, "renewer: %v\n", err)
					return ExitFailure
				}
			}
		}
		return ExitOK
	case "reload":
		// ExecReload=+: refuse an invalid config visibly (the exit code makes
		// `systemctl reload` fail; the daemon keeps its config), make the
		// new config's directories writable in the daemon's namespace, then
		// SIGHUP it.
		if *unit == "" {
			*unit = "renewer.service"
		}
		if *pid <= 0 {
			fmt.Fprintln(e.stderr, "renewer systemd reload: --pid is required ($MAINPID)")
			return ExitUsage
		}
		cfg, ok := loadConfig(e, g)
		if !ok {
			fmt.Fprintf(e.stderr, "renewer: reload refused: the daemon keeps its running config\n")
			return ExitUsage
		}
		ps := unitpaths.Writable(cfg)
		made, err := unitpaths.Prepare(ps)
		for _, d := range made {
			fmt.Fprintf(e.stderr, "renewer: created %s\n", d)
		}
		if err != nil {
			fmt.Fprintf(e.stderr, "renewer: %v\n", err)
		}
		missing, err := unitpaths.NotWritableIn(*pid, ps)
		if err != nil {
			fmt.Fprintf(e.stderr, "renewer: reload: %v\n", err)
			return ExitFailure
		}
		for _, p := range missing {
			if err := unitpaths.Bind("systemctl", *unit, p.Dir); err != nil {
				fmt.Fprintf(e.stderr, "renewer: reload: %s (%s) stays read-only for the daemon: %v\n", p.Dir, p.Why, err)
				continue
			}
			fmt.Fprintf(e.stderr, "renewer: %s (%s) made writable for the daemon\n", p.Dir, p.Why)
		}
		if err := syscall.Kill(*pid, syscall.SIGHUP); err != nil {
			fmt.Fprintf(e.stderr, "renewer: reload: signal %d: %v\n", *pid, err)
			return ExitFailure
		}
		return ExitOK
	}
	fmt.Fprintf(e.stderr, "renewer systemd: unknown action %q (%s)\n", action, systemdArgs)
	return ExitUsage
}
