package metrics_test

import (
	"os"
	"os/exec"
	"strings"
	"testing"
)

// The example alerting rules are valid for Prometheus and their unit tests
// (alerts fire when they should, and only then) pass. promtool comes from
// Debian's prometheus package, which .ci/run installs: in CI a missing
// promtool is a failure, elsewhere the test is skipped, loudly.
func TestExampleRulesWithPromtool(t *testing.T) {
	promtool, err := exec.LookPath("promtool")
	if err != nil {
		if os.Getenv("CI") != "" {
			t.Fatalf("promtool is not installed, and CI is set: .ci/run must install it (apt-get install prometheus): %v", err)
		}
		t.Skip("SKIPPED: promtool not installed (apt-get install prometheus); the example rules were NOT checked")
	}
	for _, args := range [][]string{
		{"check", "rules", "renewer-rules.yml"},
		{"test", "rules", "renewer-rules.test.yml"},
	} {
		cmd := exec.Command(promtool, args...)
		cmd.Dir = "../../examples/prometheus"
		out, err := cmd.CombinedOutput()
		if err != nil {
			t.Errorf("promtool %s: %v\n%s", strings.Join(args, " "), err, out)
		} else if !strings.Contains(string(out), "SUCCESS") {
			t.Errorf("promtool %s did not say SUCCESS:\n%s", strings.Join(args, " "), out)
		}
	}
}
