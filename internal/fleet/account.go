package fleet

import (
	"context"
	"fmt"
	"time"

	clientv3 "go.etcd.io/etcd/client/v3"
	"go.etcd.io/etcd/client/v3/concurrency"

	"github.com/renewer/renewer/internal/store"
)

var _ store.AccountUpdater = (*Backend)(nil)

// accountLockWait bounds the wait for another node holding the account's
// lock (registering the account, or rolling its key over).
const accountLockWait = 2 * time.Minute

// SyncAccount implements store.Shared.
// P/accounts/<acct> holds, sealed, what get returned (acme.ExportAccount):
// under the account's lock, a node takes the fleet's account (put), or
// registers one and shares it.
func (b *Backend) SyncAccount(ctx context.Context, acct string, get func() ([]byte, error), put func([]byte) error, register func(context.Context) error) error {
	return b.underAccountLock(ctx, acct, func(current []byte, found bool, publish func(context.Context, []byte) error) error {
		if found {
			if err := put(current); err != nil {
				return fmt.Errorf("fleet: account %s: %w", acct, err)
			}
			return nil
		}
		if err := register(ctx); err != nil {
			return err
		}
		plain, err := get()
		if err != nil {
			return fmt.Errorf("fleet: account %s: %w", acct, err)
		}
		if err := publish(ctx, plain); err != nil {
			return err
		}
		b.log.Info("ACME account shared with the fleet", "account", acct)
		return nil
	})
}

// UpdateAccount implements store.AccountUpdater: under the account's lock
// (as SyncAccount), update reads the sealed account and may replace it;
// each write is fenced on the lock.
func (b *Backend) UpdateAccount(ctx context.Context, acct string, update func(ctx context.Context, current []byte, publish func(context.Context, []byte) error) error) error {
	return b.underAccountLock(ctx, acct, func(current []byte, _ bool, publish func(context.Context, []byte) error) error {
		return update(ctx, current, publish)
	})
}

// underAccountLock runs fn holding P/locks/accounts/<acct>, with the
// account as the fleet has it (found false: none yet) and a publish that
// stores a new one, sealed, fenced on the lock.
func (b *Backend) underAccountLock(ctx context.Context, acct string, fn func(current []byte, found bool, publish func(context.Context, []byte) error) error) error {
	k := b.Key("accounts", acct)
	s, err := b.session(ctx)
	if err != nil {
		return fmt.Errorf("fleet: account %s: %w", acct, err)
	}
	defer s.Close()
	m := concurrency.NewMutex(s, b.Key("locks", "accounts", acct))
	lctx, cancel := context.WithTimeout(withLastErr(ctx), accountLockWait)
	defer cancel()
	if err := m.Lock(lctx); err != nil {
		return fmt.Errorf("fleet: account %s: lock: %w", acct, explain(lctx, err))
	}
	defer func() {
		uctx, cancel := b.op(context.Background())
		defer cancel()
		_ = m.Unlock(uctx)
	}()
	octx, ocancel := b.op(ctx)
	resp, err := b.cli.Get(octx, k)
	err = explain(octx, err)
	ocancel()
	if err != nil {
		return fmt.Errorf("fleet: account %s: %w", acct, err)
	}
	var current []byte
	found := len(resp.Kvs) > 0
	if found {
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
			return fmt.Errorf("fleet: account %s: %w", acct, explain(octx, err))
		}
		if !tr.Succeeded {
			return fmt.Errorf("fleet: account %s: %w", acct, store.ErrClaimLost)
		}
		return nil
	}
	return fn(current, found, publish)
}
