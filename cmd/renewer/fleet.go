//go:build !lean

package main

import (
	"github.com/renewer/renewer/internal/cli"
	"github.com/renewer/renewer/internal/fleet"
)

// Fleet mode keeps its shared storage in etcd (internal/fleet). A lean build
// leaves the etcd client (and gRPC) out; a fleet block is refused there.
func init() { cli.SetFleet(fleet.Opener) }
