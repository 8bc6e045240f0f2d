package testca

import (
	"bytes"
	"context"
	"sync"
	"testing"
)

// StartT starts a CA for one test (or one package's tests), stopped by
// t.Cleanup. Pebble is a pinned tool dependency, so this never skips: a CA
// that will not start fails the test with the servers' output.
func StartT(t testing.TB, o Options) *CA {
	t.Helper()
	if o.Dir == "" {
		o.Dir = t.TempDir()
	}
	var buf syncBuffer
	if o.Log == nil {
		o.Log = &buf
	}
	ca, err := Start(context.Background(), o)
	if err != nil {
		t.Fatalf("start Pebble: %v\n%s", err, buf.String())
	}
	t.Cleanup(func() {
		ca.Stop()
		if t.Failed() && buf.Len() > 0 {
			t.Logf("CA output:\n%s", buf.String())
		}
	})
	return ca
}

// StartStepCAT starts a step-ca for one test, stopped by t.Cleanup (see
// StartT). step-ca is a pinned tool dependency: this never skips.
func StartStepCAT(t testing.TB, o Options) *CA {
	t.Helper()
	if o.Dir == "" {
		o.Dir = t.TempDir()
	}
	var buf syncBuffer
	if o.Log == nil {
		o.Log = &buf
	}
	ca, err := StartStepCA(context.Background(), o)
	if err != nil {
		t.Fatalf("start step-ca: %v\n%s", err, buf.String())
	}
	t.Cleanup(func() {
		ca.Stop()
		if t.Failed() && buf.Len() > 0 {
			t.Logf("CA output:\n%s", buf.String())
		}
	})
	return ca
}

type syncBuffer struct {
	mu sync.Mutex
	b  bytes.Buffer
}

func (s *syncBuffer) Write(p []byte) (int, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.b.Write(p)
}

func (s *syncBuffer) String() string {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.b.String()
}

func (s *syncBuffer) Len() int {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.b.Len()
}
