package e2e

import (
	"fmt"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"testing"

	"github.com/go-acme/lego/v4/providers/dns/rfc2136"

	"github.com/renewer/renewer/internal/acme"
	"github.com/renewer/renewer/internal/cli"
	"github.com/renewer/renewer/internal/testca"
)

// deps is what the e2e tests wire into renewer: the one DNS provider they
// use, and no fleet mode.
var deps = cli.Deps{DNSProviders: func(name string) (acme.DNSProvider, error) {
	if name != "rfc2136" {
		return nil, fmt.Errorf("provider %q not linked into the e2e tests", name)
	}
	p, err := rfc2136.NewDNSProvider()
	if err != nil {
		return nil, err
	}
	return p, nil
}}

// `renewer check` against real servers: Knot serving A, AAAA and CAA
// records, nginx serving one webroot (and not another), step-ca (and a
// fallback step-ca) listing CAA identities. A correct setup reports
// nothing; each kind of problem is reported with what to fix; unwritable
// storage is blocking (exit 2).
func TestCheckCommand(t *testing.T) {
	t.Parallel()
	knot := testca.StartKnot(t, testca.KnotZone{Name: "example.test", Key: "renewer", Records: []string{
		`@ CAA 0 issue "ca.example.test"`,
		`www A 127.0.0.1`,
		`standalone A 127.0.0.2`,
		`elsewhere A 127.0.0.3`,
		`unserved A 127.0.0.1`,
		`v6 AAAA ::1`,
		`forbid A 127.0.0.1`,
		`forbid CAA 0 issue "someone-else.test"`,
	}})
	ca := testca.StartStepCAT(t, testca.Options{DNSServer: knot.Addr, CAAIdentities: []string{"ca.example.test"}})
	fallback := testca.StartStepCAT(t, testca.Options{DNSServer: knot.Addr, CAAIdentities: []string{"fallback.example.org"}})

	dir := t.TempDir()
	webroot, unserved := filepath.Join(dir, "webroot"), filepath.Join(dir, "unserved")
	for _, d := range []string{webroot, unserved} {
		if err := os.MkdirAll(d, 0o755); err != nil {
			t.Fatal(err)
		}
	}
	httpPort := testca.FreePortT(t)
	cert, key := bootstrapCert(t, dir, "www.example.test")
	startNginx(t, filepath.Join(dir, "nginx"), cert, key, httpPort, webroot)

	acmeBlock := func(withFallback bool) string {
		fb := ""
		if withFallback {
			fb = fmt.Sprintf("\n  fallback {\n    directory = %q\n    ca_bundle = %q\n  }", fallback.Directory, fallback.CABundle)
		}
		return fmt.Sprintf(`acme {
  directory    = %q
  ca_bundle    = %q
  email        = "ops@example.test"
  accept_terms = true%s
}`, ca.Directory, ca.CABundle, fb)
	}
	dnsBlock := func(withCreds bool) string {
		env := ""
		if withCreds {
			env = fmt.Sprintf(`env = {
      DNSUPDATE_NAMESERVER     = %q
      DNSUPDATE_TSIG_KEY       = "renewer"
      DNSUPDATE_TSIG_SECRET    = %q
      DNSUPDATE_TSIG_ALGORITHM = "hmac-sha256"
    }`, knot.Addr, knot.Keys["renewer"])
		}
		return fmt.Sprintf(`challenge "dns" {
    provider  = "rfc2136"
    %s
    resolvers = [%q]
  }`, env, knot.Addr)
	}
	check := func(name, storage, body string, names ...string) (int, string) {
		t.Helper()
		d := filepath.Join(dir, name)
		file := filepath.Join(d, "renewer.hcl")
		write(t, file, fmt.Sprintf("storage { path = %q }\n%s\n%s", storage, body, ""))
		args := append([]string{"--config", file, "check", "--resolver", knot.Addr, "--http-port", strconv.Itoa(httpPort)}, names...)
		code, out, _ := renewer(t, args...)
		return code, out
	}

	good := acmeBlock(false) + fmt.Sprintf(`
certificate "www" {
  domains = ["www.example.test"]
  challenge "http" { webroot = %[1]q }
  install { dir = %[2]q }
  hook "reload" { command = ["/bin/true"] }
}
certificate "standalone" {
  domains = ["standalone.example.test"]
  challenge "http" { listen = "127.0.0.2:%[4]d" }
}
certificate "v6" {
  domains = ["v6.example.test"]
  challenge "tls-alpn" { listen = "127.0.0.1:8443" }
}
certificate "wild" {
  domains = ["*.example.test", "example.test"]
  %[3]s
}`, webroot, filepath.Join(dir, "installed", "www"), dnsBlock(true), httpPort)
	code, out := check("good", filepath.Join(dir, "good", "state"), good)
	if code != 0 || strings.Count(out, "\n") != 1 || !strings.Contains(out, "all checks passed for 4 certificates") {
		t.Errorf("correct setup: exit %d\n%s", code, out)
	}
	if left, _ := filepath.Glob(filepath.Join(webroot, ".well-known", "acme-challenge", "*")); len(left) != 0 {
		t.Errorf("probe files left in the webroot: %v", left)
	}

	bad := acmeBlock(true) + fmt.Sprintf(`
certificate "noaddr" {
  domains = ["noaddr.example.test"]
  challenge "http" { webroot = %[1]q }
}
certificate "unserved" {
  domains = ["unserved.example.test"]
  challenge "http" { webroot = %[2]q }
}
certificate "forbid" {
  domains = ["forbid.example.test"]
  challenge "http" { webroot = %[1]q }
}
certificate "nocreds" {
  domains = ["nocreds.example.test"]
  %[3]s
}
certificate "elsewhere" {
  domains = ["elsewhere.example.test"]
  challenge "http" { listen = "127.0.0.2:%[4]d" }
}
certificate "nohook" {
  domains = ["www.example.test"]
  challenge "http" { webroot = %[1]q }
  hook "reload" { command = ["/usr/local/sbin/no-such-reload", "nginx"] }
}`, webroot, unserved, dnsBlock(false), httpPort)
	code, out = check("bad", filepath.Join(dir, "bad", "state"), bad)
	if code != 1 {
		t.Errorf("warnings only: exit %d, want 1", code)
	}
	for _, want := range []string{
		"warning: noaddr: resolve: noaddr.example.test has no A or AAAA record; fix: add an A (or AAAA) record",
		"warning: unserved: http-01: a probe file in the webroot " + unserved + " is not served at http://unserved.example.test/.well-known/acme-challenge/...: 127.0.0.1:" + strconv.Itoa(httpPort) + ": 404 Not Found; fix: serve " + unserved,
		"warning: forbid: caa: forbid.example.test: CAA at forbid.example.test forbids the CA " + ca.Directory + ` (it permits only 0 issue "someone-else.test"); fix: add a CAA record at forbid.example.test: 0 issue "ca.example.test"`,
		"warning: elsewhere: http-01: a probe file in renewer's listener on 127.0.0.2:" + strconv.Itoa(httpPort) + " is not served at http://elsewhere.example.test/.well-known/acme-challenge/...: 127.0.0.3:" + strconv.Itoa(httpPort) + ": ",
		"warning: nocreds: dns-01: ",
		"DNSUPDATE_NAMESERVER",
		`warning: nohook: hook: hook "reload": /usr/local/sbin/no-such-reload does not exist; fix: install the program`,
		"warning: nohook: caa: www.example.test: CAA at example.test forbids fallback CA " + fallback.Directory,
	} {
		if !strings.Contains(out, want) {
			t.Errorf("check output lacks %q", want)
		}
	}
	for _, clean := range []string{"noaddr: http-01", "forbid: http-01", "nohook: http-01", "nohook: resolve", "BLOCKING"} {
		if strings.Contains(out, clean) {
			t.Errorf("check output has %q, which is fine in this setup", clean)
		}
	}

	// plan shows the local findings (no network) beside its decisions.
	_, planOut, _ := renewer(t, "--config", filepath.Join(dir, "bad", "renewer.hcl"), "plan", "nohook", "nocreds")
	for _, want := range []string{" hook: hook \"reload\": /usr/local/sbin/no-such-reload does not exist", " dns-01: dns provider \"rfc2136\""} {
		if !strings.Contains(planOut, want) {
			t.Errorf("plan output lacks %q", want)
		}
	}
	if n := strings.Count(planOut, "pre-flight warning"); n != 2 {
		t.Errorf("plan shows %d pre-flight warnings, want 2", n)
	}

	// Unwritable storage blocks: exit 2.
	code, out = check("ro", filepath.Join(testca.ReadOnlyDir(t), "state"), good, "www")
	if code != 2 || !strings.Contains(out, "BLOCKING: (config): storage: storage ") || !strings.Contains(out, "not writable") {
		t.Errorf("read-only storage: exit %d\n%s", code, out)
	}
}
