package cli

import (
	"context"
	"errors"
	"fmt"
	"net"
	"os"
	"os/signal"
	"syscall"
	"time"

	"github.com/coreos/go-systemd/v22/daemon"

	"github.com/renewer/renewer/internal/agent"
	"github.com/renewer/renewer/internal/config"
	"github.com/renewer/renewer/internal/metrics"
	"github.com/renewer/renewer/internal/notify"
	"github.com/renewer/renewer/internal/report"
	"github.com/renewer/renewer/internal/store"
)

// cmdRun is the daemon. SIGHUP reloads the config; SIGTERM and SIGINT (the
// context) stop it. Under systemd (Type=notify) it reports READY, RELOADING,
// STOPPING and STATUS, and pings the watchdog when WatchdogSec is set.
func cmdRun(ctx context.Context, e *env, g *globals, args []string) int {
	fs := flags(e, g, "run", "")
	if code, ok := parse(fs, args); !ok {
		return code
	}
	if fs.NArg() > 0 {
		fmt.Fprintf(e.stderr, "renewer run: unexpected arguments %v\n", fs.Args())
		return ExitUsage
	}
	log, err := g.logger(e.stderr)
	if err != nil {
		fmt.Fprintf(e.stderr, "renewer: %v\n", err)
		return ExitUsage
	}
	cfg, ok := loadConfig(e, g)
	if !ok {
		return ExitUsage
	}

	hup := make(chan os.Signal, 1)
	signal.Notify(hup, syscall.SIGHUP)
	defer signal.Stop(hup)
	reload := make(chan struct{})
	go func() {
		for {
			select {
			case <-hup:
				select {
				case reload <- struct{}{}:
				case <-ctx.Done():
					return
				}
			case <-ctx.Done():
				return
			}
		}
	}()

	sdNotify := func(state string) {
		if _, err := daemon.SdNotify(false, state); err != nil {
			log.Warn("sd_notify failed", "err", err)
		}
	}
	if interval, err := daemon.SdWatchdogEnabled(false); err == nil && interval > 0 {
		go watchdog(ctx, interval/2, sdNotify)
	}

	m := metrics.New(version()) // one per process: counters survive reloads
	if cfg.Metrics != nil {
		ln, err := net.Listen("tcp", cfg.Metrics.Listen)
		if err != nil {
			fmt.Fprintf(e.stderr, "renewer run: metrics: %v\n", err)
			return ExitFailure
		}
		go func() {
			if err := m.Serve(ctx, ln, log); err != nil {
				log.Error("metrics server stopped", "err", err)
			}
		}()
	}

	opts := agent.Options{Log: log, Version: version(), DNSProviders: e.deps.DNSProviders}
	err = agent.RunDaemon(ctx, cfg, agent.DaemonOptions{
		// The daemon opens the fleet connection, and on a reload that
		// changed the fleet block opens, checks and swaps in another one.
		OpenFleet: func(f *config.Fleet) (agent.FleetConn, error) {
			b, err := openFleetBlock(e.deps.Fleet, f, log)
			if h, ok := b.(interface{ SetRequestErrorHook(func()) }); ok && err == nil {
				h.SetRequestErrorHook(m.EtcdRequestError) // renewer_fleet_etcd_request_errors_total
			}
			return b, err
		},
		NewReporter: func(c *config.Config, st *store.Store) (agent.PassReporter, error) {
			return report.New(c, report.Options{Log: log, Version: version(), Metrics: m, WatchEvery: report.DefaultWatchEvery,
				Notify: notify.Options{WriteFile: st.WriteFile}})
		},
		Options: opts,
		Load: func() (*config.Config, error) {
			c, err := config.Load(g.config)
			var errs *config.Errors
			if errors.As(err, &errs) { // every problem, one per line, in the log
				return nil, fmt.Errorf("%s is not valid:\n%s", g.config, errs.Error())
			}
			if err == nil {
				if w := config.PermissionWarning(c); w != "" {
					log.Warn(w)
				}
			}
			return c, err
		},
		Reload: reload,
		Notify: sdNotify,
	})
	if err != nil {
		fmt.Fprintf(e.stderr, "renewer run: %v\n", err)
		return ExitFailure
	}
	return ExitOK
}

// The daemon's fleet rounds reach the reporter (fleet metrics, notifications).
var _ agent.FleetObserver = (*report.Reporter)(nil)

func watchdog(ctx context.Context, every time.Duration, notify func(string)) {
	t := time.NewTicker(every)
	defer t.Stop()
	for {
		select {
		case <-ctx.Done():
			return
		case <-t.C:
			notify("WATCHDOG=1")
		}
	}
}
