package config

import (
	"cmp"
	"fmt"
	"io"
	"slices"
	"strings"

	"github.com/hashicorp/hcl/v2"
)

// Errors is every problem found in a configuration: the main file and its
// conf.d files. Parse and Load return it (as error) whenever one is not valid.
type Errors struct {
	Diags hcl.Diagnostics      // sorted by position: file in the order read, then offset
	Files map[string]*hcl.File // sources of the files with problems, for WriteText's snippets
}

// newErrors sorts diags by file, in the order of order, then by position.
func newErrors(diags hcl.Diagnostics, files map[string]*hcl.File, order []string) *Errors {
	ranks := make(map[string]int, len(order))
	for i, f := range order {
		ranks[f] = i + 1
	}
	rank := func(file string) int { return ranks[file] } // 0: none of order's files
	slices.SortStableFunc(diags, func(a, b *hcl.Diagnostic) int {
		switch {
		case a.Subject == nil && b.Subject == nil:
			return 0
		case a.Subject == nil:
			return -1
		case b.Subject == nil:
			return 1
		}
		return cmp.Or(cmp.Compare(rank(a.Subject.Filename), rank(b.Subject.Filename)),
			strings.Compare(a.Subject.Filename, b.Subject.Filename),
			cmp.Compare(a.Subject.Start.Byte, b.Subject.Start.Byte))
	})
	return &Errors{Diags: diags, Files: files}
}

// Error returns one line per error: "file:line:col: summary; detail".
func (e *Errors) Error() string {
	var b strings.Builder
	for _, d := range e.Diags {
		if d.Severity != hcl.DiagError {
			continue
		}
		if b.Len() > 0 {
			b.WriteByte('\n')
		}
		if s := d.Subject; s != nil {
			fmt.Fprintf(&b, "%s:%d:%d: ", s.Filename, s.Start.Line, s.Start.Column)
		}
		b.WriteString(d.Summary)
		if d.Detail != "" {
			b.WriteString("; ")
			b.WriteString(strings.NewReplacer("\r\n", " ", "\n", " ").Replace(d.Detail))
		}
	}
	return b.String()
}

// WriteText writes every diagnostic with a source snippet, without colour,
// wrapped at 78 columns.
func (e *Errors) WriteText(w io.Writer) {
	_ = hcl.NewDiagnosticTextWriter(w, e.Files, 78, false).WriteDiagnostics(e.Diags)
}
