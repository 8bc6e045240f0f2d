package cli

import (
	"context"
	"fmt"
	"io"
	"strings"
	"text/tabwriter"
	"time"

	"github.com/renewer/renewer/internal/agent"
	"github.com/renewer/renewer/internal/plan"
	"github.com/renewer/renewer/internal/status"
	"github.com/renewer/renewer/internal/store"
)

// FleetNode is one node of the fleet in `status --json` (fleet mode only).
type FleetNode struct {
	Node string `json:"node"`
	// State: "current" (it installed the fleet's version, deployed it and
	// its verify endpoints serve it), "behind" or "gone" (no report for
	// node_gone_after).
	State    string `json:"state"`
	Serial   string `json:"serial"` // installed
	Applied  bool   `json:"applied"`
	Verified bool   `json:"verified"`
	Behind   bool   `json:"behind"` // it has not installed the fleet's current serial
	// ServedSerial is what its verify endpoints serve (the first that
	// differs from the fleet's serial); absent when it has no verify
	// endpoint or one could not be reached.
	ServedSerial   string                 `json:"served_serial,omitempty"`
	ServedNotAfter time.Time              `json:"served_not_after,omitzero"`
	Endpoints      []store.EndpointReport `json:"endpoints,omitempty"`
	Error          string                 `json:"error,omitempty"` // its own error, else why it is behind or gone
	Reported       time.Time              `json:"reported"`
}

// fleetStatus adds the fleet's view of cs (agent.FleetCondition, which is
// status.AssessFleet): the fleet's version, converged or not and since
// when, and every node; it returns the health that view calls for.
//
// *down carries the first failure over to the other certificates, so an
// unreachable etcd costs one timeout, not one per certificate.
func fleetStatus(ctx context.Context, a *agent.Agent, cs *CertStatus, down *error) plan.Health {
	if *down != nil {
		cs.FleetError = (*down).Error()
		return plan.Warning
	}
	k, err := a.FleetCondition(ctx, cs.Name)
	if err != nil {
		*down = err
		cs.FleetError = err.Error()
		return plan.Warning
	}
	cs.FleetSerial, cs.FleetPublished, cs.FleetPublishedBy = k.Serial, k.Published, k.PublishedBy
	converged := k.Converged
	cs.FleetConverged = &converged
	cs.FleetUnconvergedSince = k.UnconvergedSince
	cs.Fleet = []FleetNode{}
	for _, n := range k.Nodes {
		cs.Fleet = append(cs.Fleet, FleetNode{Node: n.Node, State: string(n.State), Serial: n.Serial, Applied: n.Applied,
			Verified: n.Verified, Behind: k.Serial != "" && n.Serial != k.Serial, ServedSerial: n.Served,
			ServedNotAfter: n.ServedNotAfter, Endpoints: n.Endpoints, Error: n.Error, Reported: n.Reported})
	}
	for _, p := range k.Problems {
		cs.FleetProblems = append(cs.FleetProblems, string(p.Kind)+": "+p.Message)
	}
	return k.Health
}

func printFleet(w io.Writer, node string, certs []CertStatus, now time.Time) {
	fmt.Fprintf(w, "\nFLEET (this node: %s)\n", node)
	tw := tabwriter.NewWriter(w, 0, 4, 2, ' ', 0)
	fmt.Fprintln(tw, "NAME\tVERSION\tPUBLISHED\tCONVERGED")
	for _, c := range certs {
		switch {
		case c.FleetError != "":
			fmt.Fprintf(tw, "%s\t-\t-\tunknown: fleet unreachable: %s\n", c.Name, oneLine(c.FleetError))
		case c.FleetSerial == "":
			fmt.Fprintf(tw, "%s\t-\t-\tno version published yet\n", c.Name)
		default:
			conv := "yes"
			if c.FleetConverged == nil || !*c.FleetConverged {
				var behind []string
				for _, n := range c.Fleet {
					if n.State == string(status.NodeBehind) {
						behind = append(behind, n.Node)
					}
				}
				conv = "NO, since " + when(c.FleetUnconvergedSince, now)
				if len(behind) > 0 {
					conv += ": behind: " + strings.Join(behind, ", ")
				}
			}
			fmt.Fprintf(tw, "%s\t%s\t%s by %s\t%s\n", c.Name, c.FleetSerial, when(c.FleetPublished, now), or(c.FleetPublishedBy, "?"), conv)
		}
	}
	tw.Flush()
	fmt.Fprintln(w)
	tw = tabwriter.NewWriter(w, 0, 4, 2, ' ', 0)
	fmt.Fprintln(tw, "NAME\tNODE\tINSTALLED\tSERVED\tAPPLIED\tREPORTED\tSTATE")
	for _, c := range certs {
		if c.FleetError == "" && len(c.Fleet) == 0 {
			fmt.Fprintf(tw, "%s\t-\t-\t-\t-\t-\tno node reported yet\n", c.Name)
		}
		for _, n := range c.Fleet {
			state := n.State
			if n.State != string(status.NodeCurrent) {
				state = strings.ToUpper(state)
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
			served := or(n.ServedSerial, "-")
			fmt.Fprintf(tw, "%s\t%s\t%s\t%s\t%s\t%s\t%s\n", c.Name, n.Node, or(n.Serial, "-"), served, applied, when(n.Reported, now), state)
		}
	}
	tw.Flush()
	for _, c := range certs {
		for _, p := range c.FleetProblems {
			fmt.Fprintf(w, "%s: %s\n", c.Name, p)
		}
	}
}
