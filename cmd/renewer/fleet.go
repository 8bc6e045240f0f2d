//go:build !lean

package main

import (
	"log/slog"

	"github.com/renewer/renewer/internal/cli"
	"github.com/renewer/renewer/internal/config"
	"github.com/renewer/renewer/internal/fleet"
)

// Fleet mode keeps its shared storage in etcd (internal/fleet). A lean build
// leaves the etcd client (and gRPC) out; a fleet block is refused there.
func init() {
	cli.SetFleet(func(f *config.Fleet, log *slog.Logger) (cli.FleetBackend, error) {
		b, err := fleet.OpenConfig(f, log)
		if err != nil {
			return nil, err // not b: a typed nil would look like a backend
		}
		return b, nil
	})
}
