package e2e

import (
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"testing"

	"github.com/renewer/renewer/internal/testca"
)

// certbotDirs are the --config-dir, --work-dir and --logs-dir of a test's certbot.
type certbotDirs struct{ config, work, logs string }

func newCertbotDirs(t *testing.T, root string) certbotDirs {
	t.Helper()
	d := certbotDirs{filepath.Join(root, "letsencrypt"), filepath.Join(root, "certbot-work"), filepath.Join(root, "certbot-logs")}
	for _, p := range []string{d.config, d.work, d.logs} {
		if err := os.MkdirAll(p, 0o755); err != nil {
			t.Fatal(err)
		}
	}
	return d
}

// certbot runs the real certbot against the test CA.
func certbot(t *testing.T, ca *testca.CA, d certbotDirs, args ...string) string {
	t.Helper()
	bin := need(t, "certbot", "certbot")
	argv := append([]string{"--non-interactive", "--config-dir", d.config, "--work-dir", d.work, "--logs-dir", d.logs}, args...)
	cmd := exec.Command(bin, argv...)
	cmd.Env = append(os.Environ(), "REQUESTS_CA_BUNDLE="+ca.CABundle)
	out, err := cmd.CombinedOutput()
	t.Logf("$ certbot %s\n%s", strings.Join(argv, " "), out)
	if err != nil {
		t.Fatalf("certbot %s: %v", args[0], err)
	}
	return string(out)
}

// certbotIssue obtains a certificate with certbot's certonly from the test CA.
func certbotIssue(t *testing.T, ca *testca.CA, d certbotDirs, name string, extra ...string) {
	t.Helper()
	args := append([]string{"certonly", "--server", ca.Directory, "--agree-tos", "-m", "ops@example.test",
		"--no-eff-email", "--cert-name", name, "--http-01-port", strconv.Itoa(ca.HTTPPort), "--http-01-address", "127.0.0.1"}, extra...)
	certbot(t, ca, d, args...)
}
