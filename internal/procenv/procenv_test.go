package procenv

import (
	"os"
	"slices"
	"sync"
	"testing"
)

func TestWithRestores(t *testing.T) {
	t.Setenv("PROCENV_SET", "before")
	os.Unsetenv("PROCENV_UNSET")
	err := With(map[string]string{"PROCENV_SET": "during", "PROCENV_UNSET": "x"}, func() error {
		if os.Getenv("PROCENV_SET") != "during" || os.Getenv("PROCENV_UNSET") != "x" {
			t.Error("variables not set inside With")
		}
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
	if v := os.Getenv("PROCENV_SET"); v != "before" {
		t.Errorf("PROCENV_SET = %q after With, want before", v)
	}
	if _, ok := os.LookupEnv("PROCENV_UNSET"); ok {
		t.Error("PROCENV_UNSET still set after With")
	}
}

// A child's environment taken concurrently with With never holds the
// variables With sets.
func TestEnvironNeverSeesWith(t *testing.T) {
	// Both sides a fixed number of times, so that a busy machine makes the
	// test longer, not a spinning side burn more CPU.
	const n = 2000
	var wg sync.WaitGroup
	start := make(chan struct{})
	wg.Go(func() {
		<-start
		for range n {
			_ = With(map[string]string{"PROCENV_SECRET": "a"}, func() error { return nil })
		}
	})
	close(start)
	for range n {
		if slices.ContainsFunc(Environ(), func(s string) bool { return s == "PROCENV_SECRET=a" }) {
			t.Fatal("Environ saw a variable set by With")
		}
	}
	wg.Wait()
}
