package agent

import (
	"fmt"
	"strings"
	"syscall"
	"testing"

	"github.com/renewer/renewer/internal/status"
	"github.com/renewer/renewer/internal/store"
	"github.com/renewer/renewer/internal/store/disktest"
	"github.com/renewer/renewer/internal/testca"
)

// Issue 14 #7: on a disk that refuses writes (read-only, or failing), an
// attempt fails before it orders, with an error saying so: the CA sees no
// request at all (before, every attempt obtained a certificate and threw
// it away). Once the disk is healthy, the renewal goes through.
func TestReadOnlyStorageOrdersNothing(t *testing.T) {
	t.Parallel()
	ca := testca.StartT(t, testca.Options{})
	proxy, err := testca.StartFaultProxy(ca, 0, 1) // no faults: it counts the requests that reach the CA
	if err != nil {
		t.Fatal(err)
	}
	defer proxy.Close()
	direct := ca.Directory
	ca.Directory = proxy.Directory
	a, cfg := setup(t, ca, fmt.Sprintf(`
certificate "www" {
  domains = ["ro.example.test"]
  ari     = false
  challenge "http" { listen = "127.0.0.1:%d" }
}`, ca.HTTPPort))
	ca.Directory = direct
	disk := disktest.New()
	st, err := store.OpenFS(cfg.Storage.Path, cfg.Storage.KeepVersions, disk)
	if err != nil {
		t.Fatal(err)
	}
	a.store = st

	if res := pass(t, a, PassOptions{}); res[0].Action != status.Obtained || !res[0].OK() {
		t.Fatalf("first issuance: %+v", res[0])
	}
	before := proxy.Requests()
	disk.Fail(disktest.Fault{Op: disktest.Create, Path: "/certs/www/", Err: syscall.EROFS})
	for _, o := range []PassOptions{{Force: true}, {Names: []string{"www"}, Force: true}} {
		res := pass(t, a, o)[0]
		if res.Action != status.Failed || res.Err == nil || !strings.Contains(res.Err.Error(), "storage is not writable") ||
			!strings.Contains(res.Err.Error(), "read-only file system") {
			t.Fatalf("pass on a read-only disk: %+v", res)
		}
		if n := proxy.Requests() - before; n != 0 {
			t.Fatalf("the CA got %d requests while the storage could not take a certificate", n)
		}
	}
	disk.Heal()
	if res := pass(t, a, PassOptions{Force: true}); res[0].Action != status.Renewed || !res[0].OK() {
		t.Fatalf("renewal on a healthy disk: %+v", res[0])
	}
	if proxy.Requests() == before {
		t.Fatal("the renewal did not go through the counting proxy")
	}
}
