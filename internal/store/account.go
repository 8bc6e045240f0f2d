package store

import "context"

// AccountUpdater is implemented by a Shared that can replace the fleet's
// ACME account (internal/fleet does): a key rollover changes the account's
// key for every node. It is a separate interface so that a Shared without
// it (a test double) still is one; `renewer account rollover` refuses in
// fleet mode without it.
type AccountUpdater interface {
	// UpdateAccount holds the fleet's lock of the account named key (the
	// one SyncAccount takes) while update runs. update gets the shared
	// account (nil when the fleet has none) and publish, which replaces
	// it (fenced: it fails with ErrClaimLost, writing nothing, once the
	// lock is no longer this node's). Other nodes take the published
	// account at their next SyncAccount.
	UpdateAccount(ctx context.Context, key string, update func(ctx context.Context, current []byte, publish func(context.Context, []byte) error) error) error
}
