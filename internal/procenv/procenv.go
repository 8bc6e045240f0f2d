// Package procenv guards the process environment. lego's DNS providers read
// their settings from environment variables when they are built, so renewer
// sets one certificate's variables, builds its provider and restores the
// environment, all under one lock. Everything else that reads the
// environment while a certificate's variables might be set (starting a
// child process, running a DNS provider's code) takes the lock for reading,
// so it never sees another certificate's credentials.
package procenv

import (
	"os"
	"sync"
)

var mu sync.RWMutex

// With sets vars, runs fn, and restores every variable to what it was
// (unset ones are unset again), holding the lock throughout. fn must not
// start long work: every reader waits for it.
func With(vars map[string]string, fn func() error) error {
	mu.Lock()
	defer mu.Unlock()
	old := make(map[string]saved, len(vars))
	defer restore(old)
	for k, v := range vars {
		prev, ok := os.LookupEnv(k)
		old[k] = saved{prev, ok}
		if err := os.Setenv(k, v); err != nil {
			return err
		}
	}
	return fn()
}

type saved struct {
	val string
	set bool
}

func restore(old map[string]saved) {
	for k, s := range old {
		if s.set {
			_ = os.Setenv(k, s.val)
		} else {
			_ = os.Unsetenv(k)
		}
	}
}

// Do runs fn while no certificate's variables are set. Calls of Do run
// concurrently with each other.
func Do(fn func() error) error {
	mu.RLock()
	defer mu.RUnlock()
	return fn()
}

// Environ is os.Environ taken while no certificate's variables are set: the
// environment to give a child process.
func Environ() []string {
	mu.RLock()
	defer mu.RUnlock()
	return os.Environ()
}
