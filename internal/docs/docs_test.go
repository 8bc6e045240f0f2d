package docs_test

import (
	"bytes"
	"context"
	"os"
	"path/filepath"
	"regexp"
	"slices"
	"sort"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/renewer/renewer/internal/cli"
	"github.com/renewer/renewer/internal/config"
	"github.com/renewer/renewer/internal/docs"
	"github.com/renewer/renewer/internal/metrics"
)

// The tests keep the documentation honest: when one fails, its message says
// what to write where. The repository's top is two directories up.
const (
	repo       = "../.."
	readmeFile = "README.md"
	pagesDir   = "internal/docs"
	configPage = "internal/docs/config.md"
	cmdsPage   = "internal/docs/commands.md"
	metricPage = "internal/docs/metrics.md"
	exampleCfg = "renewer.hcl.example"
)

func read(t *testing.T, rel string) string {
	t.Helper()
	b, err := os.ReadFile(filepath.Join(repo, rel))
	if err != nil {
		t.Fatal(err)
	}
	return string(b)
}

func report(t *testing.T, problems []string) {
	t.Helper()
	for _, p := range problems {
		t.Error(p)
	}
}

func TestTopics(t *testing.T) {
	ts := docs.Topics()
	var names []string
	for _, tp := range ts {
		names = append(names, tp.Name)
		if tp.Title == tp.Name || tp.Body == "" {
			t.Errorf("%s.md: the first line must be \"# Title\"", tp.Name)
		}
	}
	for _, want := range []string{"config", "challenges", "dns-providers", "renewal", "commands", "storage", "deploy",
		"metrics", "notifications", "watch", "fleet", "certbot", "security", "troubleshooting",
		"architecture", "testing", "reliability", "performance"} {
		if !slices.Contains(names, want) {
			t.Errorf("no topic %q (internal/docs/%s.md); topics: %v", want, want, names)
		}
	}
	if tp, ok := docs.Lookup("configuration"); !ok || tp.Name != "config" {
		t.Errorf("Lookup(configuration) = %+v, %v", tp, ok)
	}
	if _, ok := docs.Lookup("nosuchtopic"); ok {
		t.Error("Lookup(nosuchtopic) found something")
	}
	if got := docs.Text("see [Challenges](challenges.md#dns-01), [the rules](../../examples/prometheus/renewer-rules.yml), [figures](../bench/results.md) and [lego](https://go-acme.github.io/lego/)"); got !=
		"see Challenges (renewer help challenges), the rules (examples/prometheus/renewer-rules.yml), figures (internal/bench/results.md) and lego <https://go-acme.github.io/lego/>" {
		t.Errorf("Text: %q", got)
	}
}

// dns-providers.md is generated from internal/dnsmeta.
func TestProvidersPageCurrent(t *testing.T) {
	if read(t, filepath.Join(pagesDir, docs.ProvidersFile)) != docs.ProvidersPage() {
		t.Errorf("internal/docs/%s is stale: run go generate ./internal/docs", docs.ProvidersFile)
	}
}

// ---- links ----

// brokenLinks checks every relative link of the Markdown file rel (a path
// from the repository's top): the file it names exists, and so does the
// #anchor in a Markdown target.
func brokenLinks(t *testing.T, rel string) (problems []string) {
	md := read(t, rel)
	for _, l := range links(md) {
		if strings.Contains(l.target, "://") || strings.HasPrefix(l.target, "mailto:") {
			continue
		}
		path, frag, _ := strings.Cut(l.target, "#")
		target := rel
		if path != "" {
			target = filepath.ToSlash(filepath.Clean(filepath.Join(filepath.Dir(rel), path)))
		}
		if _, err := os.Stat(filepath.Join(repo, target)); err != nil {
			problems = append(problems, rel+":"+itoa(l.line)+": link to "+l.target+": "+target+" does not exist; fix the link or add the file")
			continue
		}
		if frag != "" && strings.HasSuffix(target, ".md") && !anchors(read(t, target))[frag] {
			problems = append(problems, rel+":"+itoa(l.line)+": link to "+l.target+": "+target+" has no heading with the anchor #"+frag)
		}
	}
	return problems
}

func itoa(n int) string { return strconv.Itoa(n) }

func TestLinksResolve(t *testing.T) {
	files := []string{readmeFile}
	for _, tp := range docs.Topics() {
		files = append(files, pagesDir+"/"+tp.Name+".md")
	}
	for _, f := range files {
		report(t, brokenLinks(t, f))
	}
}

func TestLinkCheckerFindsBrokenLinks(t *testing.T) {
	dir := filepath.Join(repo, pagesDir)
	f, err := os.CreateTemp(dir, "zz-broken-*.md")
	if err != nil {
		t.Fatal(err)
	}
	defer os.Remove(f.Name())
	f.WriteString("# Broken\n\n[ok](config.md#storage) [no file](nosuch.md) [no anchor](config.md#nosuchheading) [web](https://example.com/x)\n")
	f.Close()
	problems := brokenLinks(t, pagesDir+"/"+filepath.Base(f.Name()))
	if len(problems) != 2 || !strings.Contains(problems[0], "nosuch.md does not exist") || !strings.Contains(problems[1], "#nosuchheading") {
		t.Errorf("problems = %q", problems)
	}
}

// ---- the configuration ----

// schema is what the decoder accepts, recorded while it decodes every
// example configuration of the repository (a block's own attributes are
// known once one file holds such a block; its parent lists it regardless).
func schema(t *testing.T) config.Schema {
	t.Helper()
	files := []string{exampleCfg}
	for _, pat := range []string{"internal/config/testdata/*.hcl", "examples/*/*.hcl"} {
		m, _ := filepath.Glob(filepath.Join(repo, pat))
		for _, f := range m {
			rel, _ := filepath.Rel(repo, f)
			files = append(files, rel)
		}
	}
	out := config.Schema{}
	for _, f := range files {
		s, err := config.SchemaOf(f, []byte(read(t, f)))
		if err != nil {
			continue // a syntax-error test file
		}
		for path, b := range s {
			o := out[path]
			for _, a := range b.Attributes {
				if !slices.Contains(o.Attributes, a) {
					o.Attributes = append(o.Attributes, a)
				}
			}
			for _, c := range b.Blocks {
				if !slices.Contains(o.Blocks, c) {
					o.Blocks = append(o.Blocks, c)
				}
			}
			out[path] = o
		}
	}
	if len(out[""].Blocks) == 0 || len(out["certificate"].Attributes) == 0 {
		t.Fatalf("no schema recorded: %+v", out)
	}
	return out
}

// pathsOf are the block paths a config page heading names: its code spans
// that look like one ("acme.fallback", `certificate.challenge "dns"`).
var pathRE = regexp.MustCompile(`^[a-z_]+(\.[a-z_]+)*( "[a-z-]+")?$`)

func pathsOf(heading string) []string {
	var out []string
	for _, c := range codes(heading) {
		if pathRE.MatchString(c) {
			out = append(out, c)
		}
	}
	return out
}

func join(parent, child string) string {
	if parent == "" {
		return child
	}
	return parent + "." + child
}

// undocumentedConfig compares the schema with the configuration page and
// the example file; each problem says what to write where.
func undocumentedConfig(s config.Schema, page, example string) []string {
	var problems []string
	secs := map[string]section{} // block path -> its section in page
	for _, sec := range sections(page) {
		for _, p := range pathsOf(sec.heading) {
			secs[p] = sec
		}
	}
	hasSection := func(path string) bool {
		if _, ok := secs[path]; ok {
			return true
		}
		for p := range secs { // a typed block: `certificate.challenge "dns"`
			if strings.HasPrefix(p, path+" ") {
				return true
			}
		}
		return false
	}
	exampleHas := func(word, follow string) bool {
		return regexp.MustCompile(`(?m)^[ \t]*#?[ \t]*` + regexp.QuoteMeta(word) + `[ \t]*` + follow).MatchString(example)
	}
	paths := make([]string, 0, len(s))
	for p := range s {
		paths = append(paths, p)
	}
	sort.Strings(paths)
	for _, path := range paths {
		b := s[path]
		for _, child := range b.Blocks {
			cp := join(path, child)
			if !hasSection(cp) {
				problems = append(problems, configPage+": block "+cp+" has no section: add a heading \"### `"+cp+"`\" with a table row per attribute (\"| `NAME` | default | meaning |\")")
			}
			if !exampleHas(child, `[{"]`) {
				problems = append(problems, exampleCfg+": block "+cp+" does not appear: add an example of it (commented out if it should not be active)")
			}
		}
		if path == "" {
			continue
		}
		sec, ok := secs[path]
		for _, a := range b.Attributes {
			if ok && !strings.Contains(sec.body, "`"+a+"`") {
				problems = append(problems, configPage+": attribute "+a+" of block "+path+" is not documented: add a row \"| `"+a+"` | default | meaning |\" under \"### `"+path+"`\"")
			}
			if !exampleHas(a, `=`) {
				problems = append(problems, exampleCfg+": attribute "+a+" of block "+path+" does not appear: add \""+a+" = ...\" with a comment in its block (commented out if it should not be active)")
			}
		}
	}
	// Nothing documented that the decoder does not accept.
	for _, sec := range sections(page) {
		for _, path := range pathsOf(sec.heading) {
			parent, child := "", path
			if i := strings.LastIndex(strings.Split(path, " ")[0], "."); i >= 0 {
				parent, child = path[:i], path[i+1:]
			}
			child = strings.Split(child, " ")[0]
			if !slices.Contains(s[parent].Blocks, child) {
				problems = append(problems, configPage+":"+itoa(sec.line)+": heading names block "+path+", which the config decoder does not accept: remove the section or fix its name")
				continue
			}
			b, known := s[path]
			if !known {
				continue // no example holds this block: its attributes are not recorded
			}
			for _, name := range firstCells(sec.body) {
				if !slices.Contains(b.Attributes, name) && !slices.Contains(b.Blocks, name) {
					problems = append(problems, configPage+": \"### `"+path+"`\" documents "+name+", which the decoder does not accept in that block: remove the row or fix its name")
				}
			}
		}
	}
	return problems
}

func TestConfigDocumented(t *testing.T) {
	report(t, undocumentedConfig(schema(t), read(t, configPage), read(t, exampleCfg)))
}

// The check fails when the decoder accepts an attribute or a block the
// documentation does not mention, and when the page documents one the
// decoder does not accept.
func TestConfigCheckerCatchesUndocumented(t *testing.T) {
	s := schema(t)
	page, example := read(t, configPage), read(t, exampleCfg)

	extra := config.Schema{}
	for p, b := range s {
		extra[p] = config.SchemaBlock{Attributes: slices.Clone(b.Attributes), Blocks: slices.Clone(b.Blocks)}
	}
	c := extra["certificate"]
	c.Attributes = append(c.Attributes, "fake_attribute")
	extra["certificate"] = c
	top := extra[""]
	top.Blocks = append(top.Blocks, "fake_block")
	extra[""] = top
	got := strings.Join(undocumentedConfig(extra, page, example), "\n")
	for _, want := range []string{
		configPage + ": attribute fake_attribute of block certificate is not documented: add a row \"| `fake_attribute` |",
		exampleCfg + ": attribute fake_attribute of block certificate does not appear",
		configPage + ": block fake_block has no section: add a heading \"### `fake_block`\"",
		exampleCfg + ": block fake_block does not appear",
	} {
		if !strings.Contains(got, want) {
			t.Errorf("an undocumented addition is not reported as %q; got:\n%s", want, got)
		}
	}

	bad := strings.Replace(page, "| `keep_versions` |", "| `keep_versions` |\n| `no_such_setting` | | |\n| `another` |", 1)
	got = strings.Join(undocumentedConfig(s, bad, example), "\n")
	if !strings.Contains(got, "documents no_such_setting, which the decoder does not accept") {
		t.Errorf("a documented setting the decoder does not accept is not reported; got:\n%s", got)
	}
}

// ---- commands and flags ----

// cliSpec is what `renewer --help` and each `renewer COMMAND --help` list.
type cliSpec struct {
	global   []string            // flag names
	commands map[string][]string // "renew", "import certbot" -> its own flags
}

var flagLineRE = regexp.MustCompile(`(?m)^  -([a-z][a-z0-9-]*)`)

func flagNames(usage string) []string {
	var out []string
	for _, m := range flagLineRE.FindAllStringSubmatch(usage, -1) {
		out = append(out, m[1])
	}
	return out
}

func runCLI(args ...string) (int, string) {
	var out bytes.Buffer
	code := cli.Run(context.Background(), cli.Deps{}, args, &out, &out)
	return code, out.String()
}

func cliFlags(t *testing.T) cliSpec {
	t.Helper()
	code, top := runCLI("--help")
	if code != cli.ExitOK {
		t.Fatalf("renewer --help: exit %d\n%s", code, top)
	}
	cmds, globals, ok := strings.Cut(top, "Global flags")
	if !ok {
		t.Fatalf("renewer --help lists no global flags:\n%s", top)
	}
	spec := cliSpec{global: flagNames(globals), commands: map[string][]string{}}
	cmdLineRE := regexp.MustCompile(`(?m)^  ([a-z][a-z-]*) +(.*)\n {12}\S`)
	for _, m := range cmdLineRE.FindAllStringSubmatch(cmds, -1) {
		words := []string{m[1]}
		for _, w := range strings.Fields(m[2]) { // subcommand words: "import certbot [...]"
			if strings.ToLower(w) != w || strings.ContainsAny(w, "[]|-") {
				break
			}
			words = append(words, w)
		}
		code, out := runCLI(append(slices.Clone(words), "--help")...)
		if code != cli.ExitOK {
			t.Fatalf("renewer %s --help: exit %d\n%s", strings.Join(words, " "), code, out)
		}
		var own []string
		for _, f := range flagNames(out) {
			if !slices.Contains(spec.global, f) {
				own = append(own, f)
			}
		}
		spec.commands[strings.Join(words, " ")] = own
	}
	if len(spec.commands) < 8 || len(spec.global) < 3 {
		t.Fatalf("renewer --help parsed as %+v:\n%s", spec, top)
	}
	return spec
}

var pageFlagRE = regexp.MustCompile(`--([a-z][a-z0-9-]*)`)

func undocumentedCommands(spec cliSpec, page string) []string {
	var problems []string
	secs := map[string]section{}
	for _, sec := range sections(page) {
		for _, c := range codes(sec.heading) {
			if name, ok := strings.CutPrefix(c, "renewer "); ok {
				secs[name] = sec
			}
		}
	}
	for _, f := range spec.global {
		if !strings.Contains(page, "`--"+f) {
			problems = append(problems, cmdsPage+": global flag --"+f+" is not documented: add a row \"| `--"+f+"` | default | meaning |\" under \"## Global flags\"")
		}
	}
	names := make([]string, 0, len(spec.commands))
	for n := range spec.commands {
		names = append(names, n)
	}
	sort.Strings(names)
	for _, name := range names {
		sec, ok := secs[name]
		if !ok {
			problems = append(problems, cmdsPage+": command "+name+" has no section: add \"## `renewer "+name+"`\" saying what it does, with a row per flag")
			continue
		}
		for _, f := range spec.commands[name] {
			if !regexp.MustCompile("`--" + regexp.QuoteMeta(f) + "[` ]").MatchString(sec.body) {
				problems = append(problems, cmdsPage+": flag --"+f+" of renewer "+name+" is not documented: add a row \"| `--"+f+"` | meaning |\" under \"## `renewer "+name+"`\"")
			}
		}
	}
	for name, sec := range secs {
		flags, ok := spec.commands[name]
		if !ok {
			problems = append(problems, cmdsPage+":"+itoa(sec.line)+": section of renewer "+name+", which is not a command: remove it or fix its name")
			continue
		}
		for _, m := range pageFlagRE.FindAllStringSubmatch(sec.body, -1) {
			if f := m[1]; f != "help" && !slices.Contains(flags, f) && !slices.Contains(spec.global, f) {
				problems = append(problems, cmdsPage+": \"## `renewer "+name+"`\" documents --"+f+", which renewer "+name+" does not take: remove it or fix its name")
			}
		}
	}
	return problems
}

func TestCommandsDocumented(t *testing.T) {
	report(t, undocumentedCommands(cliFlags(t), read(t, cmdsPage)))
}

// A command with a hyphen in its name is checked too (the help parser
// once skipped "dns-persist").
func TestCommandsCheckerSeesHyphenatedCommands(t *testing.T) {
	if _, ok := cliFlags(t).commands["dns-persist record"]; !ok {
		t.Error(`renewer --help lists "dns-persist record", but the checker did not see it`)
	}
}

func TestCommandsCheckerCatchesUndocumented(t *testing.T) {
	spec := cliFlags(t)
	page := read(t, cmdsPage)
	spec.commands["renew"] = append(slices.Clone(spec.commands["renew"]), "frobnicate")
	spec.commands["frob"] = []string{"quiet"}
	spec.global = append(slices.Clone(spec.global), "color")
	got := strings.Join(undocumentedCommands(spec, page), "\n")
	for _, want := range []string{
		cmdsPage + ": flag --frobnicate of renewer renew is not documented: add a row \"| `--frobnicate` | meaning |\" under \"## `renewer renew`\"",
		cmdsPage + ": command frob has no section: add \"## `renewer frob`\"",
		cmdsPage + ": global flag --color is not documented",
	} {
		if !strings.Contains(got, want) {
			t.Errorf("an undocumented addition is not reported as %q; got:\n%s", want, got)
		}
	}
	bad := strings.Replace(page, "| `--force` |", "| `--forse` |", 1)
	got = strings.Join(undocumentedCommands(cliFlags(t), bad), "\n")
	if !strings.Contains(got, "documents --forse, which renewer renew does not take") || !strings.Contains(got, "flag --force of renewer renew is not documented") {
		t.Errorf("a misspelt flag is not reported; got:\n%s", got)
	}
}

// ---- metrics ----

// servedMetrics are the renewer_* families the metrics endpoint serves once
// every kind of value has been set. A labelled collector is gathered only
// once a series of it exists: a new one with a setter of its own needs that
// setter called here (a plain gauge or counter is gathered at once).
func servedMetrics(t *testing.T) []string {
	t.Helper()
	m := metrics.New("test")
	now := time.Now()
	m.SetCertificates([]metrics.Certificate{{Name: "www", NotBefore: now, NotAfter: now.Add(time.Hour),
		RenewalTime: now, Ready: true, Hooks: []string{"nginx"}}}, true)
	m.SetWatches([]metrics.Watch{{Name: "cdn", Endpoint: "cdn.example.net:443", NotAfter: now, Ready: true}})
	m.SetFleet([]metrics.FleetCertificate{{Name: "www", Published: now, Holder: "edge-1", Nodes: []metrics.FleetNode{
		{Node: "edge-1", ServedNotAfter: now, Current: true, Reported: now}}}})
	m.Renewal("www", true)
	m.HookRun("www", "nginx", true)
	m.Checked(now)
	fams, err := m.Registry().Gather()
	if err != nil {
		t.Fatal(err)
	}
	var out []string
	for _, f := range fams {
		if strings.HasPrefix(f.GetName(), "renewer_") {
			out = append(out, f.GetName())
		}
	}
	if len(out) < 5 {
		t.Fatalf("only %v served", out)
	}
	return out
}

var metricRE = regexp.MustCompile("`(renewer_[a-z0-9_]+)`")

func undocumentedMetrics(served []string, page string) []string {
	var problems []string
	for _, name := range served {
		if !strings.Contains(page, "`"+name+"`") {
			problems = append(problems, metricPage+": metric "+name+" is served but not documented: add a row \"| `"+name+"` | labels | meaning |\" to its table")
		}
	}
	for _, m := range metricRE.FindAllStringSubmatch(page, -1) {
		if !slices.Contains(served, m[1]) {
			problems = append(problems, metricPage+": documents "+m[1]+", which is not served: remove it or fix its name")
		}
	}
	return problems
}

func TestMetricsDocumented(t *testing.T) {
	report(t, undocumentedMetrics(servedMetrics(t), read(t, metricPage)))
}

func TestMetricsCheckerCatchesUndocumented(t *testing.T) {
	served := append(servedMetrics(t), "renewer_fake_total")
	page := read(t, metricPage) + "\n| `renewer_gone_seconds` | | |\n"
	got := strings.Join(undocumentedMetrics(served, page), "\n")
	for _, want := range []string{
		metricPage + ": metric renewer_fake_total is served but not documented: add a row \"| `renewer_fake_total` |",
		metricPage + ": documents renewer_gone_seconds, which is not served",
	} {
		if !strings.Contains(got, want) {
			t.Errorf("not reported as %q; got:\n%s", want, got)
		}
	}
}
