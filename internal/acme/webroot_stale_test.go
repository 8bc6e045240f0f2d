package acme

import (
	"os"
	"path/filepath"
	"slices"
	"testing"
	"time"
)

// Issue 14 #6: a renewer killed during an HTTP-01 webroot challenge
// leaves its answer file in the webroot for good. CleanWebroot removes
// such leftovers: files named as a token holding a key authorization for
// that token (what Present writes), older than StaleToken and not pending
// in this process; nothing else in the webroot.
func TestCleanWebrootLeftovers(t *testing.T) {
	webroot := t.TempDir()
	dir := filepath.Join(webroot, ".well-known", "acme-challenge")
	if err := os.MkdirAll(dir, 0o755); err != nil {
		t.Fatal(err)
	}
	now := time.Now()
	thumb := "Xk3Qp0c1vT2m9S8r7bYzq6WdL5nE4hJ3gF2aD1sA0oK" // 43 base64url characters
	write := func(name, content string, age time.Duration) string {
		t.Helper()
		p := filepath.Join(dir, name)
		if err := os.WriteFile(p, []byte(content), 0o644); err != nil {
			t.Fatal(err)
		}
		if err := os.Chtimes(p, now.Add(-age), now.Add(-age)); err != nil {
			t.Fatal(err)
		}
		return p
	}
	stale := write("tok-stale_1", "tok-stale_1."+thumb, 2*time.Hour)
	keep := []string{
		write("tok-fresh", "tok-fresh."+thumb, time.Minute),     // another order may be under way
		write("tok-other", "tok-different."+thumb, 2*time.Hour), // not an answer for its own name
		write("tok-short", "tok-short.abc", 2*time.Hour),        // not a key authorization
		write("index.html", "<html>", 2*time.Hour),              // the site's own
		write("tok.dot", "tok.dot."+thumb, 2*time.Hour),         // not a token name
		write("tok-nl", "tok-nl."+thumb+"\nmore", 2*time.Hour),  // more than an answer
		filepath.Join(webroot, "tok-root"),                      // outside acme-challenge
	}
	if err := os.WriteFile(keep[len(keep)-1], []byte("tok-root."+thumb), 0o644); err != nil {
		t.Fatal(err)
	}
	// An answer this process presents right now, however old its file.
	p, err := newWebrootProvider(webroot)
	if err != nil {
		t.Fatal(err)
	}
	if err := p.Present("example.test", "tok-pending", "tok-pending."+thumb); err != nil {
		t.Fatal(err)
	}
	pending := filepath.Join(dir, "tok-pending")
	if err := os.Chtimes(pending, now.Add(-3*time.Hour), now.Add(-3*time.Hour)); err != nil {
		t.Fatal(err)
	}
	keep = append(keep, pending)

	removed, err := CleanWebroot(webroot, now)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := os.Stat(stale); !os.IsNotExist(err) || !slices.Equal(removed, []string{stale}) {
		t.Errorf("stale answer: removed %v, stat %v", removed, err)
	}
	for _, k := range keep {
		if _, err := os.Stat(k); err != nil {
			t.Errorf("removed %s: %v", k, err)
		}
	}
	// Once cleaned up, the answer is no longer pending: a later run removes it.
	if err := p.CleanUp("example.test", "tok-pending", ""); err != nil {
		t.Fatal(err)
	}
	write("tok-pending", "tok-pending."+thumb, 3*time.Hour)
	if removed, err := CleanWebroot(webroot, now); err != nil || len(removed) != 1 {
		t.Errorf("after CleanUp: removed %v, %v", removed, err)
	}
	// A webroot without a challenge directory is nothing to clean.
	if removed, err := CleanWebroot(t.TempDir(), now); err != nil || len(removed) != 0 {
		t.Errorf("empty webroot: %v %v", removed, err)
	}
}
