package agent

import (
	"os"
	"path/filepath"
	"testing"
	"time"

	"github.com/hashicorp/hcl/v2"

	"github.com/renewer/renewer/internal/config"
)

// A reload re-opens the fleet connection when the fleet block or a file
// it names changed (a password or fleet key rotated in place), and only
// then: the block's place in the file does not count.
func TestFleetPrintSeesWhatTheBlockReads(t *testing.T) {
	dir := t.TempDir()
	pw := filepath.Join(dir, "etcd.password")
	key := filepath.Join(dir, "fleet.key")
	for _, f := range []string{pw, key} {
		if err := os.WriteFile(f, []byte("one\n"), 0o600); err != nil {
			t.Fatal(err)
		}
	}
	block := func() *config.Fleet {
		return &config.Fleet{Node: "edge-1", KeyFile: key, LockTTL: 10 * time.Second,
			Etcd:  config.Etcd{Endpoints: []string{"http://10.0.0.1:2379"}, Prefix: "/renewer", PasswordFile: pw, Username: "renewer"},
			Range: hcl.Range{Filename: "renewer.hcl", Start: hcl.Pos{Line: 3}}}
	}
	base := fleetPrint(block())
	if base == "" || fleetPrint(nil) != "" {
		t.Fatalf("prints: %q, nil: %q", base, fleetPrint(nil))
	}
	moved := block()
	moved.Range.Start.Line = 40
	if fleetPrint(moved) != base {
		t.Error("the same block elsewhere in the file counts as a change")
	}
	for name, change := range map[string]func(f *config.Fleet){
		"node":      func(f *config.Fleet) { f.Node = "edge-2" },
		"lock_ttl":  func(f *config.Fleet) { f.LockTTL = 20 * time.Second },
		"endpoints": func(f *config.Fleet) { f.Etcd.Endpoints = append(f.Etcd.Endpoints, "http://10.0.0.2:2379") },
		"username":  func(f *config.Fleet) { f.Etcd.Username = "other" },
		"timeout":   func(f *config.Fleet) { f.Etcd.DialTimeout = time.Second },
	} {
		f := block()
		change(f)
		if fleetPrint(f) == base {
			t.Errorf("a changed %s is not seen", name)
		}
	}
	for _, file := range []string{pw, key} {
		if err := os.WriteFile(file, []byte("two\n"), 0o600); err != nil {
			t.Fatal(err)
		}
		if fleetPrint(block()) == base {
			t.Errorf("%s rewritten in place is not seen", filepath.Base(file))
		}
		if err := os.WriteFile(file, []byte("one\n"), 0o600); err != nil {
			t.Fatal(err)
		}
	}
	if fleetPrint(block()) != base {
		t.Error("the same files again count as a change")
	}
	if err := os.Remove(pw); err != nil {
		t.Fatal(err)
	}
	if fleetPrint(block()) == base {
		t.Error("a password file gone is not seen")
	}
}

// The node leaves the fleet it reported to (its reports there are
// withdrawn) when its name, prefix or endpoints change, or fleet mode ends.
func TestFleetLeaves(t *testing.T) {
	f := func(node, prefix string, eps ...string) *config.Fleet {
		return &config.Fleet{Node: node, Etcd: config.Etcd{Prefix: prefix, Endpoints: eps}}
	}
	old := f("a", "/r", "http://1", "http://2")
	for _, c := range []struct {
		next *config.Fleet
		want bool
	}{
		{f("a", "/r", "http://2", "http://1"), false}, // the same endpoints in another order
		{f("a", "/r", "http://1", "http://2"), false},
		{f("b", "/r", "http://1", "http://2"), true},
		{f("a", "/s", "http://1", "http://2"), true},
		{f("a", "/r", "http://3"), true},
		{nil, true},
	} {
		if got := leaves(old, c.next); got != c.want {
			t.Errorf("leaves(%+v, %+v) = %v", old, c.next, got)
		}
	}
	if leaves(nil, old) {
		t.Error("a node joining a fleet leaves one")
	}
	if !sameFleet(old, f("b", "/r", "http://2", "http://1")) || sameFleet(old, f("a", "/s", "http://1", "http://2")) ||
		sameFleet(old, f("a", "/r", "http://1")) || sameFleet(old, nil) {
		t.Error("sameFleet: the same fleet is the same prefix and set of endpoints, whatever the node name")
	}
}
