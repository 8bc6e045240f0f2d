package cli

import (
	"fmt"
	"log/slog"
	"sync"

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

var (
	fleetMu   sync.Mutex
	openFleet FleetOpener
)

// SetFleet installs how a fleet block is opened. The binary's wiring does
// (cmd/renewer/fleet.go, with internal/fleet on etcd), so that a lean build
// can leave the etcd client out.
func SetFleet(f FleetOpener) {
	fleetMu.Lock()
	defer fleetMu.Unlock()
	openFleet = f
}

// openFleetBlock opens f with the installed opener.
func openFleetBlock(f *config.Fleet, log *slog.Logger) (FleetBackend, error) {
	fleetMu.Lock()
	open := openFleet
	fleetMu.Unlock()
	if open == nil {
		return nil, fmt.Errorf("%s:%d: this build of renewer has no fleet mode (it was built with -tags lean); use the full build (make build)",
			f.Range.Filename, f.Range.Start.Line)
	}
	return open(f, log)
}
