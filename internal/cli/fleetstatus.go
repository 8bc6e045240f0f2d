package cli

import (
	"context"
	"fmt"
	"io"
	"text/tabwriter"
	"time"

	"github.com/renewer/renewer/internal/plan"
	"github.com/renewer/renewer/internal/store"
)

// FleetNode is one node of the fleet in `status --json` (fleet mode only).
type FleetNode struct {
	Node     string    `json:"node"`
	Serial   string    `json:"serial"`
	Applied  bool      `json:"applied"`
	Verified bool      `json:"verified"`
	Behind   bool      `json:"behind"` // it does not serve the fleet's current serial
	Error    string    `json:"error,omitempty"`
	Reported time.Time `json:"reported"`
}

// fleetStatus adds the fleet's view of cs: the published serial and what
// every node reported, and returns the health that view calls for: a
// warning for a node behind or a fleet that cannot be read.
//
// *down carries the first failure over to the other certificates, so an
// unreachable etcd costs one timeout, not one per certificate.
func fleetStatus(ctx context.Context, sh store.Shared, cs *CertStatus, down *error) plan.Health {
	if *down != nil {
		cs.FleetError = (*down).Error()
		return plan.Warning
	}
	health := plan.OK
	p, err := sh.Latest(ctx, cs.Name)
	if err == nil {
		var reps []store.NodeReport
		if reps, err = sh.Reports(ctx, cs.Name); err == nil {
			if p != nil {
				cs.FleetSerial = p.Serial
			}
			cs.Fleet = []FleetNode{}
			for _, r := range reps {
				n := FleetNode{Node: r.Node, Serial: r.Serial, Applied: r.Applied, Verified: r.Verified, Error: r.Error, Reported: r.At,
					Behind: p != nil && r.Serial != p.Serial}
				cs.Fleet = append(cs.Fleet, n)
				if n.Behind || !n.Applied {
					health = plan.Warning
				}
			}
		}
	}
	if err != nil {
		*down = err
		cs.FleetError = err.Error()
		health = plan.Warning
	}
	return health
}

func printFleet(w io.Writer, node string, certs []CertStatus, now time.Time) {
	fmt.Fprintf(w, "\nFLEET (this node: %s)\n", node)
	tw := tabwriter.NewWriter(w, 0, 4, 2, ' ', 0)
	fmt.Fprintln(tw, "NAME\tNODE\tSERIAL\tAPPLIED\tREPORTED\tSTATE")
	for _, c := range certs {
		if c.FleetError != "" {
			fmt.Fprintf(tw, "%s\t-\t-\t-\t-\tfleet unreachable: %s\n", c.Name, oneLine(c.FleetError))
			continue
		}
		if len(c.Fleet) == 0 {
			fmt.Fprintf(tw, "%s\t-\t%s\t-\t-\tno node reported yet\n", c.Name, or(c.FleetSerial, "-"))
		}
		for _, n := range c.Fleet {
			state := "current"
			if n.Behind {
				state = "BEHIND (fleet serves " + c.FleetSerial + ")"
			}
			if n.Error != "" {
				state += ": " + oneLine(n.Error)
			}
			applied := "no"
			if n.Applied {
				applied = "yes"
				if n.Verified {
					applied = "yes, verified"
				}
			}
			fmt.Fprintf(tw, "%s\t%s\t%s\t%s\t%s\t%s\n", c.Name, n.Node, n.Serial, applied, when(n.Reported, now), state)
		}
	}
	tw.Flush()
}
