package testca

import (
	"bytes"
	"context"
	"strings"
	"sync"
	"testing"
	"time"
)

type lockedBuffer struct {
	mu sync.Mutex
	b  bytes.Buffer
}

func (l *lockedBuffer) Write(p []byte) (int, error) {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.b.Write(p)
}

func (l *lockedBuffer) String() string {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.b.String()
}

// Responsive answers for a running Pebble; after Quit, Pebble is gone and
// its goroutine stacks are in the CA's log.
func TestResponsiveAndQuit(t *testing.T) {
	var log lockedBuffer
	ca, err := Start(context.Background(), Options{Dir: t.TempDir(), Log: &log})
	if err != nil {
		t.Fatal(err)
	}
	defer ca.Stop()
	if err := ca.Responsive(10 * time.Second); err != nil {
		t.Fatalf("running Pebble: %v", err)
	}
	ca.Quit()
	deadline := time.Now().Add(20 * time.Second)
	for ca.Responsive(2*time.Second) == nil {
		if time.Now().After(deadline) {
			t.Fatal("Pebble still answers after SIGQUIT")
		}
		time.Sleep(50 * time.Millisecond)
	}
	for !strings.Contains(log.String(), "goroutine ") {
		if time.Now().After(deadline) {
			t.Fatalf("no goroutine stacks in the CA log:\n%s", log.String())
		}
		time.Sleep(50 * time.Millisecond)
	}
}
