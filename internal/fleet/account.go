package fleet

import (
	"context"
	"fmt"

	clientv3 "go.etcd.io/etcd/client/v3"
	"go.etcd.io/etcd/client/v3/concurrency"

	"github.com/renewer/renewer/internal/store"
)

var _ store.AccountUpdater = (*Backend)(nil)

// UpdateAccount implements store.AccountUpdater: under the account's lock
// (P/locks/accounts/<acct>, as SyncAccount), update reads the sealed
// account and may replace it; each write is fenced on the lock.
func (b *Backend) UpdateAccount(ctx context.Context, acct string, update func(ctx context.Context, current []byte, publish func(context.Context, []byte) error) error) error {
	k := b.Key("accounts", acct)
	s, err := b.session(ctx)
	if err != nil {
		return fmt.Errorf("fleet: account %s: %w", acct, err)
	}
	defer s.Close()
	m := concurrency.NewMutex(s, b.Key("locks", "accounts", acct))
	lctx, cancel := context.WithTimeout(ctx, accountLockWait)
	defer cancel()
	if err := m.Lock(lctx); err != nil {
		return fmt.Errorf("fleet: account %s: lock: %w", acct, err)
	}
	defer func() {
		uctx, cancel := b.op(context.Background())
		defer cancel()
		_ = m.Unlock(uctx)
	}()
	octx, ocancel := b.op(ctx)
	resp, err := b.cli.Get(octx, k)
	ocancel()
	if err != nil {
		return fmt.Errorf("fleet: account %s: %w", acct, err)
	}
	var current []byte
	if len(resp.Kvs) > 0 {
		if current, err = b.key.open(k, resp.Kvs[0].Value); err != nil {
			return fmt.Errorf("fleet: account %s: %w", acct, err)
		}
	}
	publish := func(ctx context.Context, plain []byte) error {
		sealed, err := b.key.seal(k, plain)
		if err != nil {
			return err
		}
		octx, ocancel := b.op(ctx)
		defer ocancel()
		tr, err := b.cli.Txn(octx).If(m.IsOwner()).Then(clientv3.OpPut(k, string(sealed))).Commit()
		if err != nil {
			return fmt.Errorf("fleet: account %s: %w", acct, err)
		}
		if !tr.Succeeded {
			return fmt.Errorf("fleet: account %s: %w", acct, store.ErrClaimLost)
		}
		return nil
	}
	return update(ctx, current, publish)
}
