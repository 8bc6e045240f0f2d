package docs_test

import (
	"os/exec"
	"slices"
	"strings"
	"testing"
)

const (
	archPage = "internal/docs/architecture.md"
	module   = "github.com/renewer/renewer/"
)

// archRows are the rows of the architecture page's package table: package
// path -> the short names of the packages it may import.
func archRows(page string) map[string][]string {
	rows := map[string][]string{}
	for _, sec := range sections(page) {
		if !strings.HasPrefix(sec.heading, "Packages and what each may import") {
			continue
		}
		for _, l := range strings.Split(sec.body, "\n") {
			cells := strings.Split(l, "|")
			if len(cells) < 5 || strings.HasPrefix(l, "|---") {
				continue
			}
			pkg := codes(cells[1])
			if len(pkg) != 1 {
				continue
			}
			var may []string
			for _, w := range strings.Split(cells[3], ",") {
				if w = strings.TrimSpace(w); w != "" && w != "—" {
					may = append(may, w)
				}
			}
			rows[pkg[0]] = may
		}
	}
	return rows
}

// rowOf is the row a package belongs to: its own, or its nearest parent's.
func rowOf(rows map[string][]string, pkg string) (string, bool) {
	for p := pkg; p != "." && p != ""; p = p[:max(strings.LastIndex(p, "/"), 0)] {
		if _, ok := rows[p]; ok {
			return p, true
		}
		if !strings.Contains(p, "/") {
			break
		}
	}
	return "", false
}

func short(row string) string { return strings.TrimPrefix(row, "internal/") }

// disallowedImports compares the imports go list reports (package ->
// imported packages of this module, module prefix removed) with the page.
func disallowedImports(imports map[string][]string, page string) []string {
	rows := archRows(page)
	var problems []string
	var pkgs []string
	for p := range imports {
		pkgs = append(pkgs, p)
	}
	slices.Sort(pkgs)
	for _, p := range pkgs {
		row, ok := rowOf(rows, p)
		if !ok {
			problems = append(problems, archPage+": package "+p+" has no row: add \"| `"+p+"` | its job | the packages it may import |\" to the table of \"## Packages and what each may import\"")
			continue
		}
		for _, imp := range imports[p] {
			target, ok := rowOf(rows, imp)
			if !ok {
				target = imp
			}
			if target == row || slices.Contains(rows[row], short(target)) {
				continue
			}
			problems = append(problems, archPage+": "+p+" imports "+imp+", which the row of `"+row+"` does not allow: if the design allows it, add "+short(target)+" to that row's \"may import\"; otherwise remove the import")
		}
	}
	return problems
}

func goListImports(t *testing.T) map[string][]string {
	t.Helper()
	cmd := exec.Command("go", "list", "-f", `{{.ImportPath}}{{range .Imports}} {{.}}{{end}}`, "./...")
	cmd.Dir = repo
	out, err := cmd.Output()
	if err != nil {
		t.Fatalf("go list: %v", err)
	}
	imports := map[string][]string{}
	for _, l := range strings.Split(strings.TrimSpace(string(out)), "\n") {
		f := strings.Fields(l)
		pkg := strings.TrimPrefix(f[0], module)
		imports[pkg] = nil
		for _, imp := range f[1:] {
			if rest, ok := strings.CutPrefix(imp, module); ok {
				imports[pkg] = append(imports[pkg], rest)
			}
		}
	}
	if len(imports["internal/agent"]) == 0 {
		t.Fatalf("go list gave no imports of internal/agent:\n%s", out)
	}
	return imports
}

func TestArchitectureImports(t *testing.T) {
	report(t, disallowedImports(goListImports(t), read(t, archPage)))
}

func TestArchitectureCheckerCatchesNewEdges(t *testing.T) {
	imports := goListImports(t)
	imports["internal/plan"] = append(slices.Clone(imports["internal/plan"]), "internal/acme")
	imports["internal/newthing"] = []string{"internal/config"}
	got := strings.Join(disallowedImports(imports, read(t, archPage)), "\n")
	for _, want := range []string{
		archPage + ": internal/plan imports internal/acme, which the row of `internal/plan` does not allow",
		archPage + ": package internal/newthing has no row",
	} {
		if !strings.Contains(got, want) {
			t.Errorf("not reported as %q; got:\n%s", want, got)
		}
	}
}
