package store

import (
	"context"
	"fmt"
	"path/filepath"
	"sync"
	"time"

	"github.com/gofrs/flock"
)

const lockPoll = 100 * time.Millisecond

func (s *Store) flock(name string) (*flock.Flock, error) {
	if err := validName(name); err != nil {
		return nil, err
	}
	return flock.New(filepath.Join(s.root, "locks", name+".lock"), flock.SetPermissions(0o600)), nil
}

// Lock takes an exclusive flock on locks/<name>.lock, polling until it is
// free or ctx is done. The returned unlock is safe to call more than once.
func (s *Store) Lock(ctx context.Context, name string) (unlock func(), err error) {
	fl, err := s.flock(name)
	if err != nil {
		return nil, err
	}
	ok, err := fl.TryLockContext(ctx, lockPoll)
	if err != nil {
		return nil, fmt.Errorf("store: lock %s: %w", name, err)
	}
	if !ok { // not expected: TryLockContext returns an error when it gives up
		return nil, fmt.Errorf("store: lock %s: not acquired", name)
	}
	return unlocker(fl), nil
}

// TryLock takes the lock of name if it is free, without waiting.
func (s *Store) TryLock(name string) (unlock func(), ok bool, err error) {
	fl, err := s.flock(name)
	if err != nil {
		return nil, false, err
	}
	ok, err = fl.TryLock()
	if err != nil {
		return nil, false, fmt.Errorf("store: lock %s: %w", name, err)
	}
	if !ok {
		return nil, false, nil
	}
	return unlocker(fl), true, nil
}

func unlocker(fl *flock.Flock) func() {
	var once sync.Once
	return func() { once.Do(func() { _ = fl.Unlock() }) }
}
