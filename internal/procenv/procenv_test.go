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
	var wg sync.WaitGroup
	stop := make(chan struct{})
	wg.Go(func() {
		for {
			select {
			case <-stop:
				return
			default:
			}
			_ = With(map[string]string{"PROCENV_SECRET": "a"}, func() error { return nil })
		}
	})
	for range 2000 {
		if slices.ContainsFunc(Environ(), func(s string) bool { return s == "PROCENV_SECRET=a" }) {
			t.Fatal("Environ saw a variable set by With")
		}
	}
	close(stop)
	wg.Wait()
}
