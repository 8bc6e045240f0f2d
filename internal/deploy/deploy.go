// Package deploy is the stage after a pass's installs: it puts the live
// certificates into service. For each certificate it writes the install
// copies and runs its own hooks; then it runs each distinct reload once for
// all the certificates that name it (consul-template's rule: 20 renewals
// sharing one nginx reload it once, after all of them are written); then
// it checks each verify endpoint. A step runs for a certificate only when
// its steps before succeeded. Nothing here undoes an install.
package deploy

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/renewer/renewer/internal/certinfo"
	"github.com/renewer/renewer/internal/config"
	"github.com/renewer/renewer/internal/hook"
	"github.com/renewer/renewer/internal/store"
	"github.com/renewer/renewer/internal/verify"
)

// Steps, as StepError and State.FailedStep name them.
const (
	StepInstall = store.StepInstall
	StepHook    = store.StepHook
	StepReload  = store.StepReload
	StepVerify  = store.StepVerify
)

// StepError is a deploy error with the step it happened in; its text is the
// error's own.
type StepError struct {
	Step string
	Err  error
}

func (e StepError) Error() string { return e.Err.Error() }
func (e StepError) Unwrap() error { return e.Err }

// Step is the step of the first error of errs that has one, else "".
func Step(errs []error) string {
	for _, err := range errs {
		var se StepError
		if errors.As(err, &se) {
			return se.Step
		}
	}
	return ""
}

// Item is one live certificate to put into service.
type Item struct {
	Cert    config.Certificate
	Version *store.Version
	Facts   *certinfo.Facts
}

// Options wire Run.
type Options struct {
	Log *slog.Logger
	// WriteTarget writes the install copies (the store's, so disk-fault
	// tests reach it).
	WriteTarget func(*store.Version, store.Target) error
	// Reload finds a reload block by name.
	Reload func(name string) (config.Hook, bool)
	// HookRan is told of each hook and reload run, per certificate; may be nil.
	HookRan     func(cert, hook string, err error)
	Concurrency int // certificates worked on at once in the copy and verify steps
}

// Run deploys items and returns, for each, the errors of its failed steps
// (nil when it is applied).
func Run(ctx context.Context, items []Item, o Options) [][]error {
	if o.Log == nil {
		o.Log = slog.New(slog.DiscardHandler)
	}
	if o.HookRan == nil {
		o.HookRan = func(string, string, error) {}
	}
	errs := make([][]error, len(items))
	// 1. Each certificate's own files and hooks.
	each(items, o.Concurrency, func(i int) { errs[i] = own(ctx, o, items[i]) })
	// 2. Each distinct reload once, for the certificates that are ready for it.
	var names []string
	users := map[string][]int{}
	for i, it := range items {
		for _, n := range it.Cert.Reloads {
			if len(errs[i]) > 0 {
				continue // its files or hooks failed: not reloaded for it (retried)
			}
			if _, seen := users[n]; !seen {
				names = append(names, n)
			}
			users[n] = append(users[n], i)
		}
	}
	for _, n := range names {
		err := reload(ctx, o, n, items, users[n])
		for _, i := range users[n] {
			o.HookRan(items[i].Cert.Name, n, err)
			if err != nil {
				errs[i] = append(errs[i], StepError{StepReload, err})
			}
		}
	}
	// 3. What the servers now serve.
	each(items, o.Concurrency, func(i int) {
		it := items[i]
		log := o.Log.With("cert", it.Cert.Name)
		if len(errs[i]) > 0 {
			if len(it.Cert.Verify) > 0 {
				log.Warn("served certificate not verified: an earlier deploy step failed")
			}
		} else {
			for _, vb := range it.Cert.Verify {
				if err := verify.Wait(ctx, log, vb, it.Facts.Leaf); err != nil {
					errs[i] = append(errs[i], StepError{StepVerify, fmt.Errorf("verify %s: %w", vb.Endpoint, err)})
				}
			}
		}
		switch {
		case len(errs[i]) > 0:
			log.Error("certificate not applied; the deploy is retried on the next run", "serial", it.Facts.Serial)
		default:
			log.Info("certificate applied", "serial", it.Facts.Serial)
		}
	})
	return errs
}

// own writes it's install copies, then runs its own hooks in order.
func own(ctx context.Context, o Options, it Item) []error {
	log := o.Log.With("cert", it.Cert.Name)
	if in := it.Cert.Install; in != nil {
		var where []any
		if in.Dir != "" {
			where = append(where, "dir", in.Dir)
		}
		if in.HAProxyBundle != "" {
			where = append(where, "haproxy_bundle", in.HAProxyBundle)
		}
		if err := o.WriteTarget(it.Version, TargetOf(in)); err != nil {
			log.Error("install failed", append(where, "err", err)...)
			return []error{StepError{StepInstall, fmt.Errorf("install: %w", err)}}
		}
		log.Info("installed", where...)
	}
	var errs []error
	env := HookEnv(it.Cert, it.Version, it.Facts)
	for _, h := range it.Cert.Hooks {
		err := hook.Run(ctx, log, h, env)
		o.HookRan(it.Cert.Name, h.Name, err)
		if err != nil {
			errs = append(errs, StepError{StepHook, err})
		}
	}
	return errs
}

// reload runs reload block name once for items[users...].
func reload(ctx context.Context, o Options, name string, items []Item, users []int) error {
	h, ok := o.Reload(name)
	if !ok { // config validation refuses this
		return fmt.Errorf("reload %q: no such reload block", name)
	}
	var certs []string
	for _, i := range users {
		certs = append(certs, items[i].Cert.Name)
	}
	env := map[string]string{"RENEWER_NAMES": strings.Join(certs, " ")}
	if len(users) == 1 { // one certificate: its variables too, as a hook has them
		it := items[users[0]]
		env = HookEnv(it.Cert, it.Version, it.Facts)
		env["RENEWER_NAMES"] = it.Cert.Name
	}
	log := o.Log.With("reload", name, "certificates", len(certs))
	start := time.Now()
	err := hook.Run(ctx, log, h, env)
	if err != nil {
		return fmt.Errorf("reload %q: %w", name, err)
	}
	log.Info("reloaded", "for", certs, "took", time.Since(start).Round(time.Millisecond).String())
	return nil
}

// TargetOf is the store's view of an install block.
func TargetOf(in *config.Install) store.Target {
	return store.Target{
		Dir: in.Dir, HAProxyBundle: in.HAProxyBundle,
		Chown: in.UID >= 0 || in.GID >= 0, UID: in.UID, GID: in.GID,
		CertMode: in.CertMode, KeyMode: in.KeyMode,
	}
}

// HookEnv is the RENEWER_* environment a hook sees.
func HookEnv(c config.Certificate, v *store.Version, f *certinfo.Facts) map[string]string {
	env := map[string]string{
		"RENEWER_NAME":      c.Name,
		"RENEWER_DOMAINS":   strings.Join(c.Domains, " "),
		"RENEWER_CERT":      v.Cert,
		"RENEWER_CHAIN":     v.Chain,
		"RENEWER_FULLCHAIN": v.Fullchain,
		"RENEWER_KEY":       v.Key,
		"RENEWER_VERSION":   v.ID,
		"RENEWER_SERIAL":    f.Serial,
		"RENEWER_NOT_AFTER": f.NotAfter.UTC().Format(time.RFC3339),
	}
	if c.Install != nil {
		if c.Install.Dir != "" {
			env["RENEWER_INSTALL_DIR"] = c.Install.Dir
		}
		if c.Install.HAProxyBundle != "" {
			env["RENEWER_HAPROXY_BUNDLE"] = c.Install.HAProxyBundle
		}
	}
	return env
}

// each calls f(i) for every item, n at a time.
func each(items []Item, n int, f func(int)) {
	var next atomic.Int64
	var wg sync.WaitGroup
	for range min(max(n, 1), len(items)) {
		wg.Go(func() {
			for i := int(next.Add(1) - 1); i < len(items); i = int(next.Add(1) - 1) {
				f(i)
			}
		})
	}
	wg.Wait()
}
