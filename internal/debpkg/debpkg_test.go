package debpkg

import (
	"strings"
	"testing"
	"time"
)

func TestDebVersion(t *testing.T) {
	for in, want := range map[string]string{
		"v1.2.3":                "1.2.3",
		"v1.2.3-4-gabc123":      "1.2.3+4.gabc123",
		"3483cd2":               "0.0.0~git.3483cd2",
		"3483cd2-dirty":         "0.0.0~git.3483cd2.dirty",
		"devel":                 "0.0.0~git.devel",
		"v0.9.0-12-g1a2b-dirty": "0.9.0+12.g1a2b.dirty",
	} {
		got := DebVersion(in)
		if got != want {
			t.Errorf("DebVersion(%q) = %q, want %q", in, got, want)
		}
		if !debVersion.MatchString(got) {
			t.Errorf("DebVersion(%q) = %q is not a Debian version", in, got)
		}
	}
}

func TestManPage(t *testing.T) {
	usage := "renewer keeps ACME certificates renewed.\n\nUsage: renewer [global flags] COMMAND\n\nCommands:\n  run       \n            the daemon\n.danger\n"
	m := ManPage(usage, "1.0", time.Date(2026, 12, 4, 0, 0, 0, 0, time.UTC))
	for _, want := range []string{".TH RENEWER 1 \"2026-12-04\"", ".SH NAME\nrenewer \\- ", "renewer keeps ACME certificates renewed.", "  run", "\\&.danger", ".SH FILES"} {
		if !strings.Contains(m, want) {
			t.Errorf("man page lacks %q:\n%s", want, m)
		}
	}
	if strings.Contains(m, "Usage:") {
		t.Errorf("man page keeps the Usage line:\n%s", m)
	}
}
