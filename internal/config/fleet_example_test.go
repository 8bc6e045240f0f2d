package config

import (
	"os"
	"strings"
	"testing"
)

// The fleet block in the reference config is commented out (it needs a
// live etcd to run); uncommented, it must parse as documented.
func TestReferenceFleetBlockParses(t *testing.T) {
	src, err := os.ReadFile("../../renewer.hcl.example")
	if err != nil {
		t.Fatal(err)
	}
	var block []string
	in := false
	for line := range strings.Lines(string(src)) {
		line = strings.TrimRight(line, "\n")
		if strings.HasPrefix(line, "# fleet {") {
			in = true
		}
		if in {
			block = append(block, strings.TrimPrefix(strings.TrimPrefix(line, "#"), " "))
			if line == "# }" {
				break
			}
		}
	}
	if len(block) < 3 {
		t.Fatal("no commented fleet block in renewer.hcl.example")
	}
	cfg, err := Parse("/etc/renewer/renewer.hcl", []byte("acme { directory = \"letsencrypt\" }\n"+strings.Join(block, "\n")+"\n"))
	if err != nil {
		t.Fatalf("the example's fleet block: %v\n%s", err, strings.Join(block, "\n"))
	}
	f := cfg.Fleet
	if f == nil || f.Node != "edge-1" || len(f.Etcd.Endpoints) != 3 || f.KeyFile != "/etc/renewer/fleet.key" ||
		f.Etcd.Username != "renewer" || f.Etcd.CertFile == "" || f.LockTTL != DefaultLockTTL || f.NodeGoneAfter != DefaultNodeGoneAfter {
		t.Errorf("fleet block: %+v", f)
	}
}
