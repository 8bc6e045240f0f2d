package fleet_test

import (
	"log/slog"

	"github.com/renewer/renewer/internal/cli"
	"github.com/renewer/renewer/internal/config"
	"github.com/renewer/renewer/internal/fleet"
)

// The tests that run commands through cli.Run open fleets as the binary
// does (cmd/renewer/fleet.go).
func init() {
	cli.SetFleet(func(f *config.Fleet, log *slog.Logger) (cli.FleetBackend, error) {
		b, err := fleet.OpenConfig(f, log)
		if err != nil {
			return nil, err
		}
		return b, nil
	})
}
