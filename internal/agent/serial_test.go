package agent

import (
	"fmt"
	"math/big"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/renewer/renewer/internal/certinfo"
	"github.com/renewer/renewer/internal/certinfo/certtest"
	"github.com/renewer/renewer/internal/status"
	"github.com/renewer/renewer/internal/store"
)

// Issue 14 #10, upgrade: a certificate applied by an older renewer, whose
// state holds its serial lowercase and without the leading zero, is still
// applied after the upgrade to openssl's form: nothing is pending, its hook
// does not run again, it is not due. (Its CA is never contacted.)
func TestUpgradeOlderSerialFormStillApplied(t *testing.T) {
	dir := t.TempDir()
	root := filepath.Join(dir, "state")
	st, err := store.Open(root, 3)
	if err != nil {
		t.Fatal(err)
	}
	ca := certtest.NewCA(t, "upgrade CA")
	serial := big.NewInt(0x32b47f1a2) // openssl: 032B47F1A2
	chain, key := certtest.Issue(t, certtest.Options{Names: []string{"www.example.test"}, CA: ca, Serial: serial})
	leaf, _, _ := strings.Cut(string(chain), "-----END CERTIFICATE-----\n")
	_, err = st.Install("www", []string{"www.example.test"}, store.Bundle{Cert: []byte(leaf + "-----END CERTIFICATE-----\n"), Chain: ca.CertPEM, Key: key}, time.Now())
	if err != nil {
		t.Fatal(err)
	}
	old := serial.Text(16) // "32b47f1a2", as renewer wrote it before
	raw := fmt.Sprintf(`{"last_result":"renewed","installed_serial":%q,"applied_serial":%q}`, old, old)
	if err := os.WriteFile(filepath.Join(root, "state", "www.json"), []byte(raw), 0o600); err != nil {
		t.Fatal(err)
	}
	ran := filepath.Join(dir, "hook-ran")
	a, _ := setupHCL(t, dir, fmt.Sprintf(`
storage { path = %q }
acme {
  directory    = "https://127.0.0.1:1/never-contacted"
  accept_terms = true
}
certificate "www" {
  domains = ["www.example.test"]
  ari     = false
  challenge "http" { listen = "127.0.0.1:1" }
  hook "reload" { command = ["/bin/sh", "-c", "touch \"$0\"", %q] }
}`, root, ran))

	in := a.Inspect(a.cfg.Certificates[0])
	if in.Facts == nil || in.Facts.Serial != "032B47F1A2" {
		t.Fatalf("live serial: %+v (%v)", in.Facts, in.Problem)
	}
	if !certinfo.SameSerial(in.State.AppliedSerial, in.Facts.Serial) || in.DeployPending {
		t.Errorf("older state's applied serial %q not taken for %q: deploy pending", in.State.AppliedSerial, in.Facts.Serial)
	}
	res := pass(t, a, PassOptions{})
	if res[0].Action != status.Skipped || !res[0].OK() {
		t.Errorf("pass after the upgrade: %+v", res[0])
	}
	if _, err := os.Stat(ran); err == nil {
		t.Error("the hook ran again for a certificate already applied")
	}

}
