package fleet

import (
	"context"
	"encoding/json"
	"fmt"
	"strings"
	"time"

	clientv3 "go.etcd.io/etcd/client/v3"

	"github.com/renewer/renewer/internal/store"
)

// Departed nodes. A node's reports (P/nodes/<name>/<node>) say when they
// were written; a live daemon writes its own at least every quarter of
// node_gone_after (agent's fleet round), even when nothing changed, so a
// node whose reports are older than node_gone_after is gone (status.IsGone):
// stopped, cut off, or removed from the fleet. `renewer fleet forget NODE`
// removes a departed node's reports (Forget).

// nodeReport is one stored report and its revision.
type nodeReport struct {
	rep store.NodeReport
	rev int64
}

// nodeReports lists node's reports by certificate name, of every
// certificate the fleet holds one for.
func (b *Backend) nodeReports(ctx context.Context, node string) (map[string]nodeReport, error) {
	octx, cancel := b.op(ctx)
	defer cancel()
	pfx := b.Key("nodes") + "/"
	resp, err := b.cli.Get(octx, pfx, clientv3.WithPrefix())
	if err != nil {
		return nil, fmt.Errorf("fleet: reports of %s: %w", node, explain(octx, err))
	}
	out := map[string]nodeReport{}
	for _, kv := range resp.Kvs {
		name, n, ok := strings.Cut(strings.TrimPrefix(string(kv.Key), pfx), "/")
		if !ok || n != node {
			continue
		}
		var r store.NodeReport
		if err := json.Unmarshal(kv.Value, &r); err != nil {
			return nil, fmt.Errorf("fleet: report %s: %w", kv.Key, err)
		}
		out[name] = nodeReport{rep: r, rev: kv.ModRevision}
	}
	return out, nil
}

// LastReport is when node last reported on any certificate, and the
// certificates it reported on; zero and none when it never did.
func (b *Backend) LastReport(ctx context.Context, node string) (time.Time, []string, error) {
	reps, err := b.nodeReports(ctx, node)
	if err != nil {
		return time.Time{}, nil, err
	}
	var last time.Time
	var names []string
	for name, r := range reps {
		names = append(names, name)
		if r.rep.At.After(last) {
			last = r.rep.At
		}
	}
	return last, names, nil
}

// Forget removes every report of node (`renewer fleet forget NODE`), in
// one transaction, and returns the certificates it had reported on. A
// node still running reports again at its next pass or heartbeat: stop it
// first.
func (b *Backend) Forget(ctx context.Context, node string) ([]string, error) {
	reps, err := b.nodeReports(ctx, node)
	if err != nil {
		return nil, err
	}
	var ops []clientv3.Op
	var names []string
	for name := range reps {
		names = append(names, name)
		ops = append(ops, clientv3.OpDelete(b.Key("nodes", name, node)))
	}
	for len(ops) > 0 { // etcd allows 128 operations per transaction by default
		n := min(len(ops), 128)
		octx, cancel := b.op(ctx)
		_, err := b.cli.Txn(octx).Then(ops[:n]...).Commit()
		err = explain(octx, err)
		cancel()
		if err != nil {
			return nil, fmt.Errorf("fleet: forget %s: %w", node, err)
		}
		ops = ops[n:]
	}
	if len(names) > 0 {
		b.log.Info("forgot a node of the fleet", "forgotten", node, "certificates", len(names))
	}
	return names, nil
}
