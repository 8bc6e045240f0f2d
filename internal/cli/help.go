package cli

import (
	"flag"
	"fmt"
	"io"
	"strings"

	"github.com/renewer/renewer/internal/docs"
)

// cmdHelp is `renewer help [TOPIC]`: without a topic, the usage and the
// list of documentation topics; with one, that page (internal/docs).
func cmdHelp(e *env, top *flag.FlagSet, args []string) int {
	switch len(args) {
	case 0:
		usage(e.stdout, top)
		listTopics(e.stdout)
		return ExitOK
	case 1:
		if args[0] == "-h" || args[0] == "-help" || args[0] == "--help" {
			usage(e.stderr, top)
			return ExitOK
		}
		t, ok := docs.Lookup(args[0])
		if !ok {
			fmt.Fprintf(e.stderr, "renewer help: no topic %q\n\n", args[0])
			listTopics(e.stderr)
			return ExitUsage
		}
		fmt.Fprint(e.stdout, docs.Text(t.Body))
		return ExitOK
	}
	fmt.Fprintf(e.stderr, "renewer help: one topic at a time, got %s\n", strings.Join(args, " "))
	return ExitUsage
}

func listTopics(w io.Writer) {
	fmt.Fprintf(w, "\nDocumentation (renewer help TOPIC):\n")
	contributor := false
	for _, t := range docs.Topics() {
		if t.Contributor && !contributor {
			fmt.Fprintf(w, "\nFor contributors:\n")
			contributor = true
		}
		fmt.Fprintf(w, "  %-16s %s\n", t.Name, t.Title)
	}
}
