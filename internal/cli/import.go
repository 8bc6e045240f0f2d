package cli

import (
	"context"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"os"
	"path/filepath"
	"strings"
	"time"

	"github.com/renewer/renewer/internal/certbot"
	"github.com/renewer/renewer/internal/config"
	"github.com/renewer/renewer/internal/store"
)

const importArgs = "certbot [--out FILE] [--storage DIR] [--email ADDR] [--ca-bundle FILE] [--no-adopt] [DIR]"

// cmdImport is `renewer import certbot [DIR]`: read certbot's lineages,
// write an equivalent config, and adopt the current certificates into
// renewer's storage so nothing is re-issued.
func cmdImport(ctx context.Context, e *env, g *globals, args []string) int {
	if len(args) == 0 || args[0] != "certbot" {
		fmt.Fprintf(e.stderr, "Usage: renewer import %s\n(certbot is the only source so far)\n", importArgs)
		return ExitUsage
	}
	fs := flags(e, g, "import", importArgs)
	out := fs.String("out", "", "write the configuration to this file (it must not exist); default standard output")
	storage := fs.String("storage", config.DefaultStoragePath, "renewer's storage directory: written into the configuration, and where certificates are adopted")
	email := fs.String("email", "", "ACME account e-mail address for the configuration (certbot does not keep it)")
	caBundle := fs.String("ca-bundle", "", "PEM roots to trust for the CA's TLS, written into the configuration (a private CA)")
	noAdopt := fs.Bool("no-adopt", false, "only write the configuration; do not copy the current certificates into storage")
	if code, ok := parse(fs, args[1:]); !ok {
		return code
	}
	if fs.NArg() > 1 {
		fmt.Fprintf(e.stderr, "renewer import certbot: one directory at most, got %s\n", strings.Join(fs.Args(), " "))
		return ExitUsage
	}
	dir := certbot.DefaultDir
	if fs.NArg() == 1 {
		dir = fs.Arg(0)
	}
	storagePath, err := filepath.Abs(*storage)
	if err != nil {
		fmt.Fprintf(e.stderr, "renewer import certbot: --storage: %v\n", err)
		return ExitUsage
	}
	if *caBundle != "" {
		if *caBundle, err = filepath.Abs(*caBundle); err != nil {
			fmt.Fprintf(e.stderr, "renewer import certbot: --ca-bundle: %v\n", err)
			return ExitUsage
		}
	}
	if *out != "" {
		if filepath.Base(filepath.Dir(*out)) == "conf.d" {
			// It would be read after the main file, which refuses the
			// storage and acme blocks an import writes.
			fmt.Fprintf(e.stderr, "renewer import certbot: %s is in a conf.d directory, whose files hold only certificate and watch blocks; "+
				"the import writes storage and acme blocks too: write it elsewhere, then move its certificate blocks into conf.d files\n", *out)
			return ExitUsage
		}
		if _, err := os.Lstat(*out); err == nil {
			fmt.Fprintf(e.stderr, "renewer import certbot: %s exists; not overwriting it\n", *out)
			return ExitUsage
		}
	}
	log, err := g.logger(e.stderr)
	if err != nil {
		fmt.Fprintf(e.stderr, "renewer: %v\n", err)
		return ExitUsage
	}

	lineages, problems, err := certbot.Read(dir)
	if err != nil {
		fmt.Fprintf(e.stderr, "renewer import certbot: %v\n", err)
		return ExitFailure
	}
	hooks, err := certbot.ReadHooks(dir)
	if err != nil {
		problems = append(problems, certbot.Problem{Err: fmt.Errorf("renewal-hooks: %w", err)})
	}
	gen := certbot.Generate(lineages, hooks, certbot.Options{Dir: dir, Storage: storagePath, Email: *email, CABundle: *caBundle})
	failed := 0
	for _, p := range problems {
		if p.Warn {
			fmt.Fprintf(e.stderr, "renewer import certbot: warning: %v\n", p)
			continue
		}
		failed++
		fmt.Fprintf(e.stderr, "renewer import certbot: ERROR: %v\n", p)
	}
	for _, w := range gen.Warnings {
		fmt.Fprintf(e.stderr, "renewer import certbot: warning: %s\n", oneLine(w))
	}

	// Results go to standard output unless the configuration does.
	report := e.stdout
	if *out == "" {
		report = e.stderr
		fmt.Fprint(e.stdout, gen.HCL)
	} else if err := writeNewFile(*out, gen.HCL); err != nil {
		fmt.Fprintf(e.stderr, "renewer import certbot: %v\n", err)
		return ExitFailure
	}
	name := *out
	if name == "" {
		name = "renewer.hcl"
	}
	if _, err := config.Parse(name, []byte(gen.HCL)); err != nil {
		fmt.Fprintf(e.stderr, "renewer import certbot: the configuration needs editing before renewer can use it:\n%v\n", err)
	}

	if !*noAdopt && len(lineages) > 0 {
		failed += adopt(ctx, report, e.stderr, storagePath, lineages, log.With("cmd", "import"))
	}
	fmt.Fprintf(report, "imported %d certbot %s from %s", len(lineages), plural(len(lineages), "lineage"), dir)
	if *out != "" {
		fmt.Fprintf(report, " into %s", *out)
	}
	fmt.Fprintln(report)
	if failed > 0 {
		return ExitFailure
	}
	return ExitOK
}

// adopt copies each lineage's current certificate into the storage; it
// returns how many could not be adopted.
func adopt(ctx context.Context, report, stderr io.Writer, storagePath string, lineages []certbot.Lineage, log *slog.Logger) int {
	st, err := store.Open(storagePath, config.DefaultKeepVersions)
	if err != nil {
		fmt.Fprintf(stderr, "renewer import certbot: %v\n", err)
		return len(lineages)
	}
	failed := 0
	for _, l := range lineages {
		lockCtx, cancel := context.WithTimeout(ctx, 30*time.Second)
		v, err := certbot.Adopt(lockCtx, st, l, time.Now())
		cancel()
		switch {
		case errors.Is(err, certbot.ErrManaged):
			fmt.Fprintf(report, "%s: already in %s; kept renewer's certificate\n", l.Name, storagePath)
		case err != nil:
			failed++
			fmt.Fprintf(stderr, "renewer import certbot: %s: not adopted (renewer will issue a new certificate): %v\n", l.Name, err)
		default:
			log.Info("adopted certbot certificate", "cert", l.Name, "serial", l.Facts.Serial, "version", v.ID)
			fmt.Fprintf(report, "%s: adopted serial %s (expires %s) from %s\n", l.Name, l.Facts.Serial,
				l.Facts.NotAfter.UTC().Format(time.DateOnly), l.Fullchain)
		}
	}
	return failed
}

// writeNewFile creates path (0600; it must not exist) with text, synced.
func writeNewFile(path, text string) error {
	f, err := os.OpenFile(path, os.O_WRONLY|os.O_CREATE|os.O_EXCL, 0o600)
	if err != nil {
		return err
	}
	_, err = f.WriteString(text)
	if err == nil {
		err = f.Sync()
	}
	if cerr := f.Close(); err == nil {
		err = cerr
	}
	return err
}
