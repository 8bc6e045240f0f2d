package cli

import (
	"fmt"
	"log/slog"

	"github.com/renewer/renewer/internal/config"
	"github.com/renewer/renewer/internal/store"
)

// FleetBackend is the shared storage of fleet mode, open until Close (an
// alias, so that fleet.Opener is a FleetOpener without importing cli).
type FleetBackend = interface {
	store.Shared
	Close() error
}

// FleetOpener opens the shared storage a fleet block describes.
type FleetOpener func(f *config.Fleet, log *slog.Logger) (FleetBackend, error)

// openFleetBlock opens f with open, the binary's opener (Deps.Fleet:
// internal/fleet on etcd in the full build, nil in the lean one, which
// leaves the etcd client out).
func openFleetBlock(open FleetOpener, f *config.Fleet, log *slog.Logger) (FleetBackend, error) {
	if open == nil {
		return nil, fmt.Errorf("%s:%d: this build of renewer has no fleet mode (it was built with -tags lean); use the full build (make build)",
			f.Range.Filename, f.Range.Start.Line)
	}
	return open(f, log)
}
