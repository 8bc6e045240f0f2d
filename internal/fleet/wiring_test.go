package fleet_test

import (
	"github.com/renewer/renewer/internal/cli"
	"github.com/renewer/renewer/internal/fleet"
)

// The tests that run commands through cli.Run open fleets as the binary
// does (cmd/renewer/fleet.go).
var deps = cli.Deps{Fleet: fleet.Opener}
