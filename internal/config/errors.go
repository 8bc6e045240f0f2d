package config

import (
	"cmp"
	"fmt"
	"io"
	"slices"
	"strings"

	"github.com/hashicorp/hcl/v2"
)

// Errors is every problem found in one configuration file. Parse and Load
// return it (as error) whenever the file is not valid.
type Errors struct {
	Diags hcl.Diagnostics      // sorted by position
	Files map[string]*hcl.File // sources, for WriteText's snippets
}

func newErrors(diags hcl.Diagnostics, files map[string]*hcl.File) *Errors {
	slices.SortStableFunc(diags, func(a, b *hcl.Diagnostic) int {
		switch {
		case a.Subject == nil && b.Subject == nil:
			return 0
		case a.Subject == nil:
			return -1
		case b.Subject == nil:
			return 1
		}
		return cmp.Or(strings.Compare(a.Subject.Filename, b.Subject.Filename),
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
