package cli

import (
	"strings"
	"testing"

	"github.com/renewer/renewer/internal/docs"
)

// `renewer help` lists the commands and every documentation topic;
// `renewer help config` prints the configuration page.
func TestHelpTopics(t *testing.T) {
	dir := t.TempDir()
	code, out, _ := runCLI(t, dir, "help")
	if code != ExitOK || !strings.Contains(out, "Usage: renewer") || !strings.Contains(out, "renewer help TOPIC") {
		t.Fatalf("renewer help: exit %d\n%s", code, out)
	}
	for _, tp := range docs.Topics() {
		if !strings.Contains(out, "  "+tp.Name+" ") || !strings.Contains(out, tp.Title) {
			t.Errorf("renewer help does not list %s (%s):\n%s", tp.Name, tp.Title, out)
		}
	}

	for _, name := range []string{"config", "configuration"} {
		code, out, _ = runCLI(t, dir, "help", name)
		if code != ExitOK || !strings.HasPrefix(out, "# Configuration\n") || !strings.Contains(out, "keep_versions") {
			t.Errorf("renewer help %s: exit %d\n%.300s", name, code, out)
		}
		if strings.Contains(out, "](") {
			t.Errorf("renewer help %s shows Markdown link targets", name)
		}
	}

	code, out, errOut := runCLI(t, dir, "help", "nosuchtopic")
	if code != ExitUsage || out != "" || !strings.Contains(errOut, `no topic "nosuchtopic"`) || !strings.Contains(errOut, "troubleshooting") {
		t.Errorf("renewer help nosuchtopic: exit %d\n%s%s", code, out, errOut)
	}

	// --help and -h keep printing the usage to standard error, exit 0.
	for _, args := range [][]string{{"--help"}, {"-h"}, {"help", "--help"}} {
		code, out, errOut = runCLI(t, dir, args...)
		if code != ExitOK || out != "" || !strings.Contains(errOut, "Usage: renewer") {
			t.Errorf("renewer %v: exit %d, stdout %q\n%s", args, code, out, errOut)
		}
	}
}
