package agent

import (
	"context"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"log/slog"
	"os"
	"slices"
	"strings"

	"github.com/renewer/renewer/internal/config"
	"github.com/renewer/renewer/internal/status"
	"github.com/renewer/renewer/internal/store"
)

// The daemon's fleet connection, and a reload that changes the fleet block:
// the new connection is opened and checked (etcd answers with the new
// credentials, the fleet key opens what the fleet has sealed) before
// anything is swapped; if it fails, the whole reload is refused with the
// reason and the running config and connection stay. When it works, the
// node withdraws its reports from the fleet it leaves (another name,
// prefix or cluster), closes the old connection, watches the new one,
// opens its challenge listeners again and reports at once what it serves.

// FleetConn is a fleet's shared storage the daemon opened itself and
// closes (internal/fleet's Backend; cli.FleetBackend).
type FleetConn interface {
	store.Shared
	Close() error
}

// fleetChecker is what a fleet connection offers to prove itself before a
// reload swaps it in (internal/fleet's Backend.Check).
type fleetChecker interface {
	Check(ctx context.Context) error
}

// fleetWithdrawer deletes a node's reports from the fleet it leaves
// (internal/fleet's Backend.Withdraw).
type fleetWithdrawer interface {
	Withdraw(ctx context.Context, node string) error
}

// daemonFleet is the daemon's current fleet connection; conn is nil for a
// single node.
type daemonFleet struct {
	log     *slog.Logger
	open    func(*config.Fleet) (FleetConn, error) // DaemonOptions.OpenFleet
	block   *config.Fleet                          // the block conn was opened for
	print   string                                 // fleetPrint(block)
	conn    store.Shared
	owned   bool               // opened here: closed when replaced or at the end
	stop    context.CancelFunc // ends conn's watch
	changes <-chan struct{}    // conn's watch; nil (never ready) for a single node
}

// fleetChange is a checked connection for a changed fleet block, not yet
// swapped in.
type fleetChange struct {
	block *config.Fleet
	print string
	conn  FleetConn // nil: the new config has no fleet block
}

// startFleet is the daemon's connection for cfg: o.Fleet when the caller
// gave one (the caller closes it), else one opened with o.OpenFleet.
func startFleet(cfg *config.Config, o DaemonOptions) (*daemonFleet, error) {
	f := &daemonFleet{log: o.Log, open: o.OpenFleet, block: cfg.Fleet, print: fleetPrint(cfg.Fleet), conn: o.Fleet}
	if f.conn == nil && cfg.Fleet != nil {
		if o.OpenFleet == nil {
			return nil, errors.New("fleet mode: this daemon cannot open a fleet connection")
		}
		c, err := o.OpenFleet(cfg.Fleet)
		if err != nil {
			return nil, fmt.Errorf("fleet mode: %w", err)
		}
		f.conn, f.owned = c, true
	}
	return f, nil
}

// serve starts watching the connection for new versions and keeps the
// challenge listeners of a open for the other nodes' challenges.
func (f *daemonFleet) serve(ctx context.Context, a *Agent) {
	if f.conn == nil {
		return
	}
	if f.changes == nil {
		wctx, stop := context.WithCancel(ctx)
		f.stop, f.changes = stop, f.conn.Changes(wctx)
	}
	f.listen(a)
}

// listen opens a's challenge listeners (again, after a reload replaced the
// agent).
func (f *daemonFleet) listen(a *Agent) {
	if f.conn == nil {
		return
	}
	if err := a.ServeChallenges(); err != nil {
		// Its own orders open the port when they need it; until then
		// the CA cannot reach the other nodes' tokens here.
		f.log.Error("fleet: cannot keep the http-01 port open for the other nodes' challenges", "err", err)
	}
	if err := a.ServeTLSALPN(); err != nil {
		f.log.Error("fleet: cannot keep the tls-alpn-01 port open for the other nodes' challenges", "err", err)
	}
}

// prepare opens and checks the connection for next, the fleet block of a
// reloaded config; nil when the block (with the files it names) did not
// change. An error refuses the reload.
func (f *daemonFleet) prepare(ctx context.Context, next *config.Fleet) (*fleetChange, error) {
	p := fleetPrint(next)
	if p == f.print {
		return nil, nil
	}
	ch := &fleetChange{block: next, print: p}
	if next == nil {
		return ch, nil
	}
	at := fmt.Sprintf("%s:%d", next.Range.Filename, next.Range.Start.Line)
	if f.open == nil {
		return nil, fmt.Errorf("%s: the fleet block changed, and this daemon cannot open another fleet connection; restart it", at)
	}
	c, err := f.open(next)
	if err != nil {
		if strings.HasPrefix(err.Error(), at) { // errors of the files it names say where already
			return nil, fmt.Errorf("the changed fleet block: %w", err)
		}
		return nil, fmt.Errorf("%s: the changed fleet block: %w", at, err)
	}
	if chk, ok := c.(fleetChecker); ok {
		if err := chk.Check(ctx); err != nil {
			_ = c.Close()
			return nil, fmt.Errorf("%s: the changed fleet block does not work: %w", at, err)
		}
	}
	ch.conn = c
	return ch, nil
}

// discard closes a checked connection that was not swapped in.
func (ch *fleetChange) discard() {
	if ch != nil && ch.conn != nil {
		_ = ch.conn.Close()
	}
}

// shared is the connection an agent of the reloaded config gets.
func (f *daemonFleet) shared(ch *fleetChange) store.Shared {
	if ch == nil {
		return f.conn
	}
	if ch.conn == nil {
		return nil
	}
	return ch.conn
}

// commit swaps ch in, once a, the reloaded config's agent, uses it.
func (f *daemonFleet) commit(ctx context.Context, ch *fleetChange, a *Agent) {
	old, oldBlock := f.conn, f.block
	if old != nil {
		if leaves(oldBlock, ch.block) {
			// In the same fleet (only the name changed) the new connection
			// withdraws the old name: the old credentials may be revoked.
			via := old
			if ch.conn != nil && sameFleet(oldBlock, ch.block) {
				via = ch.conn
			}
			if w, ok := via.(fleetWithdrawer); ok {
				if err := w.Withdraw(ctx, old.Node()); err != nil {
					f.log.Warn("fleet: could not withdraw this node's reports from the fleet it leaves; they stay until forgotten", "node", old.Node(), "err", err)
				}
			}
		}
		if f.stop != nil {
			f.stop()
		}
		if c, ok := old.(interface{ Close() error }); ok && f.owned {
			_ = c.Close()
		}
	}
	f.block, f.print, f.stop, f.changes = ch.block, ch.print, nil, nil
	f.conn, f.owned = nil, false
	if ch.conn == nil {
		f.log.Info("fleet mode off: the fleet block was removed", "was", nodeName(old))
		return
	}
	f.conn, f.owned = ch.conn, true
	f.serve(ctx, a)
	a.rejoin(ctx)
	f.log.Info("fleet block applied", "node", ch.conn.Node(), "was", nodeName(old), "endpoints", ch.block.Etcd.Endpoints,
		"prefix", ch.block.Etcd.Prefix, "lock_ttl", ch.block.LockTTL)
}

// close ends the watch and closes a connection the daemon opened.
func (f *daemonFleet) close() {
	if f.stop != nil {
		f.stop()
	}
	if c, ok := f.conn.(interface{ Close() error }); ok && f.owned {
		_ = c.Close()
	}
}

func nodeName(s store.Shared) string {
	if s == nil {
		return ""
	}
	return s.Node()
}

// sameFleet reports whether two fleet blocks reach the same etcd keys: the
// same prefix and set of endpoints.
func sameFleet(a, b *config.Fleet) bool {
	if a == nil || b == nil {
		return false
	}
	ea, eb := slices.Clone(a.Etcd.Endpoints), slices.Clone(b.Etcd.Endpoints)
	slices.Sort(ea)
	slices.Sort(eb)
	return a.Etcd.Prefix == b.Etcd.Prefix && slices.Equal(ea, eb)
}

// leaves reports whether a node going from fleet block old to next leaves
// the fleet it reported to under old's name: another node name, prefix or
// set of endpoints, or no fleet at all. (Endpoints of the same cluster
// that changed cost one withdrawal and one report again, at once.)
func leaves(old, next *config.Fleet) bool {
	if old == nil {
		return false
	}
	return next == nil || old.Node != next.Node || !sameFleet(old, next)
}

// fleetPrint identifies a fleet block with what it reads: every setting
// (its place in the file aside) and the contents of the files it names,
// so a rotated password or fleet key in the same file counts as a change.
// "" for no fleet block.
func fleetPrint(f *config.Fleet) string {
	if f == nil {
		return ""
	}
	c := *f
	c.Range = config.Fleet{}.Range
	h := sha256.New()
	raw, err := json.Marshal(c)
	if err != nil {
		fmt.Fprintf(h, "%+v", c)
	}
	h.Write(raw)
	for _, p := range []string{f.KeyFile, f.Etcd.PasswordFile, f.Etcd.CAFile, f.Etcd.CertFile, f.Etcd.KeyFile} {
		if p == "" {
			continue
		}
		b, err := os.ReadFile(p)
		if err != nil {
			fmt.Fprintf(h, "\x00%s: %v", p, err)
			continue
		}
		fmt.Fprintf(h, "\x00%s: %x", p, sha256.Sum256(b))
	}
	return hex.EncodeToString(h.Sum(nil))
}

// rejoin reports what this node serves of every certificate to the fleet
// it has just joined (a reload changed the fleet block): the other nodes'
// status shows it at once, not only after its next renewal. A certificate
// whose last attempt failed is reported with that error.
func (a *Agent) rejoin(ctx context.Context) {
	for _, c := range a.cfg.Certificates {
		st, err := a.loadState(c.Name)
		// The action only has to be one reportFleet reports; what is
		// reported is read from the store.
		res := status.Result{Name: c.Name, Action: status.Applied}
		switch {
		case err != nil:
			res.Err = fmt.Errorf("state: %w", err)
		case st.LastError != "" && (st.Failures > 0 || st.FailedStep != ""):
			res.Err = errors.New(st.LastError)
		}
		a.reportFleet(ctx, c, res)
	}
}
