package fleet

import (
	"context"
	"encoding/json"
	"fmt"
	"strings"

	clientv3 "go.etcd.io/etcd/client/v3"
)

// What the daemon asks of a connection when a reload changes the fleet
// block (agent's daemonfleet.go): Check before it swaps the new one in,
// Withdraw on the old one when the node leaves that fleet.

// Check proves the connection before a reload swaps it in: etcd answers
// within the dial timeout with these credentials, and the fleet key opens
// what the fleet has sealed (a published version, else the ACME account),
// so a node given the wrong key is refused rather than cut off from every
// version.
func (b *Backend) Check(ctx context.Context) error {
	eps := strings.Join(b.cli.Endpoints(), ", ")
	for _, dir := range []string{"certs", "accounts"} {
		octx, cancel := b.op(ctx)
		resp, err := b.cli.Get(octx, b.Key(dir)+"/", clientv3.WithPrefix(), clientv3.WithLimit(1))
		cancel()
		if err != nil {
			return fmt.Errorf("fleet: etcd at %s does not answer: %w", eps, err)
		}
		if len(resp.Kvs) == 0 {
			continue
		}
		kv := resp.Kvs[0]
		sealed := kv.Value
		if dir == "certs" {
			var r record
			if err := json.Unmarshal(kv.Value, &r); err != nil {
				return fmt.Errorf("fleet: %s: %w", kv.Key, err)
			}
			sealed = r.Key
		}
		if _, err := b.key.open(string(kv.Key), sealed); err != nil {
			return fmt.Errorf("fleet: the fleet key does not open what the fleet holds: %w", err)
		}
		return nil
	}
	return nil
}

// withdrawBatch bounds the deletes of one transaction (etcd's default
// --max-txn-ops is 128).
const withdrawBatch = 100

// Withdraw deletes the reports of node (P/nodes/*/<node>): this node
// leaves this fleet, or goes on in it under another name (then the new
// connection withdraws the old name: the old one may hold credentials
// etcd no longer accepts).
func (b *Backend) Withdraw(ctx context.Context, node string) error {
	pfx := b.Key("nodes") + "/"
	octx, cancel := b.op(ctx)
	resp, err := b.cli.Get(octx, pfx, clientv3.WithPrefix(), clientv3.WithKeysOnly())
	cancel()
	if err != nil {
		return fmt.Errorf("fleet: reports of %s: %w", node, err)
	}
	var ops []clientv3.Op
	for _, kv := range resp.Kvs {
		rest := strings.TrimPrefix(string(kv.Key), pfx) // <name>/<node>
		if i := strings.LastIndexByte(rest, '/'); i > 0 && rest[i+1:] == node {
			ops = append(ops, clientv3.OpDelete(string(kv.Key)))
		}
	}
	for len(ops) > 0 {
		n := min(len(ops), withdrawBatch)
		octx, cancel := b.op(ctx)
		_, err := b.cli.Txn(octx).Then(ops[:n]...).Commit()
		cancel()
		if err != nil {
			return fmt.Errorf("fleet: withdraw the reports of %s: %w", node, err)
		}
		ops = ops[n:]
	}
	b.log.Info("reports withdrawn from the fleet", "of", node, "prefix", b.prefix)
	return nil
}
