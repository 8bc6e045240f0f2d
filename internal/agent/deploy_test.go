package agent

import (
	"crypto/tls"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/renewer/renewer/internal/certinfo"
	"github.com/renewer/renewer/internal/certinfo/certtest"
	"github.com/renewer/renewer/internal/plan"
	"github.com/renewer/renewer/internal/status"
	"github.com/renewer/renewer/internal/testca"
	"github.com/renewer/renewer/internal/verify"
)

// tlsServer is a TLS server on loopback that serves the certificate files in
// *dir, read at each handshake, or a fixed stale certificate while dir is "".
func tlsServer(t *testing.T, dir *atomic.Value, stale *tls.Certificate) string {
	t.Helper()
	l, err := tls.Listen("tcp", "127.0.0.1:0", &tls.Config{
		GetCertificate: func(*tls.ClientHelloInfo) (*tls.Certificate, error) {
			d, _ := dir.Load().(string)
			if d == "" {
				return stale, nil
			}
			c, err := tls.LoadX509KeyPair(filepath.Join(d, "fullchain.pem"), filepath.Join(d, "privkey.pem"))
			return &c, err
		},
	})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { l.Close() })
	go func() {
		for {
			c, err := l.Accept()
			if err != nil {
				return
			}
			go func() { _ = c.(*tls.Conn).Handshake(); c.Close() }()
		}
	}()
	return l.Addr().String()
}

// A certificate whose endpoint keeps serving an old certificate is installed
// but not applied: the mismatch is reported with both serials, state and
// status say so, and the next pass redeploys the same serial (no new
// certificate) and records it as applied and verified once it is served.
func TestVerifyMismatchNotAppliedThenRetried(t *testing.T) {
	t.Parallel()
	ca := testca.StartT(t, testca.Options{})
	full, key := certtest.Issue(t, certtest.Options{Names: []string{"verify.example.test"}})
	stale, err := tls.X509KeyPair(full, key)
	if err != nil {
		t.Fatal(err)
	}
	staleFacts, _ := certinfo.Parse(full, nil)
	var serving atomic.Value
	serving.Store("")
	addr := tlsServer(t, &serving, &stale)
	installDir := filepath.Join(t.TempDir(), "ssl")
	bundle := filepath.Join(t.TempDir(), "haproxy", "verify.pem")
	a, _ := setup(t, ca, fmt.Sprintf(`
certificate "v" {
  domains = ["verify.example.test"]
  challenge "http" { listen = "127.0.0.1:%d" }
  install {
    dir            = %q
    haproxy_bundle = %q
    key_mode       = "0640"
  }
  hook "reload" { command = ["true"] }
  verify {
    endpoint = %q
    timeout  = "1s"
  }
}`, ca.HTTPPort, installDir, bundle, addr))

	res := pass(t, a, PassOptions{})
	r := res[0]
	if r.Action != status.Obtained || r.Err != nil || len(r.HookErrs) != 1 {
		t.Fatalf("first pass: %+v", r)
	}
	var mm *verify.MismatchError
	if !errors.As(r.HookErrs[0], &mm) || mm.Got != staleFacts.Serial || mm.Want != r.Serial {
		t.Fatalf("verify error: %v", r.HookErrs[0])
	}
	st, _ := a.Store().LoadState("v")
	if st.AppliedSerial != "" || st.InstalledSerial != r.Serial || st.Failures != 1 ||
		!strings.HasPrefix(st.LastError, "not applied: verify "+addr) {
		t.Fatalf("state after mismatch: %+v", st)
	}
	in := a.Inspect(a.cfg.Certificates[0])
	if !in.DeployPending {
		t.Error("deploy not pending after a mismatch")
	}
	// The install target was written before verification, with its modes.
	if f, err := certinfo.Load(bundle, bundle); err != nil || f.Serial != r.Serial || !f.KeyMatches {
		t.Fatalf("bundle: %v %+v", err, f)
	}
	if fi, _ := os.Stat(bundle); fi.Mode().Perm() != 0o640 {
		t.Errorf("bundle mode %o", fi.Mode().Perm())
	}

	// The server "reloads": it now serves the installed files.
	serving.Store(installDir)
	if !st.NextAttempt.IsZero() { // a failure backoff, where there is one, has passed
		a.now = func() time.Time { return st.NextAttempt.Add(time.Second) }
	}
	res = pass(t, a, PassOptions{})
	if res[0].Action != status.Applied || !res[0].OK() || res[0].Serial != r.Serial {
		t.Fatalf("retry: %+v", res[0])
	}
	st, _ = a.Store().LoadState("v")
	if st.AppliedSerial != r.Serial || st.LastError != "" || st.Failures != 0 {
		t.Fatalf("state after retry: %+v", st)
	}
	if res = pass(t, a, PassOptions{}); res[0].Action != status.Skipped {
		t.Fatalf("after applied: %+v", res[0])
	}
}

// A failed install copy stops the deploy before the hooks: nothing reloads
// files that were not written, and the certificate is not applied.
func TestInstallFailureSkipsHooks(t *testing.T) {
	t.Parallel()
	ca := testca.StartT(t, testca.Options{})
	// The bundle's path is a directory: its parent is writable, so the
	// pre-flight check lets the order through, and the copy then fails.
	// (An install dir that cannot be written stops the order itself:
	// TestPreflightBlocksOrder.)
	notAFile := filepath.Join(t.TempDir(), "bundle.pem")
	if err := os.Mkdir(notAFile, 0o700); err != nil {
		t.Fatal(err)
	}
	marker := filepath.Join(t.TempDir(), "hook-ran")
	a, _ := setup(t, ca, fmt.Sprintf(`
certificate "i" {
  domains = ["install.example.test"]
  challenge "http" { listen = "127.0.0.1:%d" }
  install { haproxy_bundle = %q }
  hook "touch" { command = ["touch", %q] }
}`, ca.HTTPPort, notAFile, marker))
	r := pass(t, a, PassOptions{})[0]
	if r.Action != status.Obtained || len(r.HookErrs) != 1 || !strings.Contains(r.HookErrs[0].Error(), "install") {
		t.Fatalf("pass: %+v", r)
	}
	if _, err := os.Stat(marker); err == nil {
		t.Error("hook ran after a failed install")
	}
	if st, _ := a.Store().LoadState("i"); st.AppliedSerial != "" || !strings.HasPrefix(st.LastError, "not applied: install") {
		t.Errorf("state: %+v", st)
	}
}

// Defect: a certificate whose only deploy step is verify: when the served
// certificate was wrong, status warned but renewer_certificate_ready stayed
// 1 and no verify_failed was notified. One model now says: not applied,
// not ready, verify_failed.
func TestVerifyOnlyMismatchNotReady(t *testing.T) {
	t.Parallel()
	ca := testca.StartT(t, testca.Options{})
	full, key := certtest.Issue(t, certtest.Options{Names: []string{"verify-only.example.test"}})
	stale, err := tls.X509KeyPair(full, key)
	if err != nil {
		t.Fatal(err)
	}
	var serving atomic.Value
	serving.Store("")
	addr := tlsServer(t, &serving, &stale)
	a, cfg := setup(t, ca, fmt.Sprintf(`
certificate "v" {
  domains = ["verify-only.example.test"]
  challenge "http" { listen = "127.0.0.1:%d" }
  verify {
    endpoint = %q
    timeout  = "1s"
  }
}`, ca.HTTPPort, addr))
	r := pass(t, a, PassOptions{})[0]
	if r.Action != status.Obtained || len(r.HookErrs) != 1 {
		t.Fatalf("pass: %+v", r)
	}
	in := a.Inspect(cfg.Certificates[0])
	var kinds []string
	for _, p := range in.Problems {
		kinds = append(kinds, string(p.Kind))
	}
	if in.Ready || in.Applied || !in.DeployPending || in.Health != plan.Warning || !slices.Equal(kinds, []string{"verify_failed"}) {
		t.Fatalf("verify-only mismatch: ready %v applied %v pending %v health %s problems %v", in.Ready, in.Applied, in.DeployPending, in.Health, kinds)
	}
}
