// Package docs holds renewer's reference and contributor pages: Markdown
// files embedded in the binary (`renewer help TOPIC`) and linked from the
// README. A page is a file NAME.md whose first line is "# Title"; a new
// file is a new topic, with no code to change (it is listed after the
// known ones).
package docs

import (
	"embed"
	"fmt"
	"io/fs"
	pathpkg "path"
	"regexp"
	"slices"
	"strings"
)

//go:embed *.md
var files embed.FS

// Topic is one page.
type Topic struct {
	Name        string // the file name without .md: what `renewer help NAME` takes
	Title       string // the page's "# Title" line
	Body        string // the whole Markdown text
	Contributor bool   // for people working on renewer rather than running it
}

// order lists the known topics, users' first; a page that is not here
// (yet) is listed after them, and a name here without its file is skipped.
type entry struct {
	name        string
	contributor bool
}

var order = []entry{
	{"config", false}, {"challenges", false}, {"dns-providers", false}, {"renewal", false},
	{"commands", false}, {"storage", false}, {"deploy", false}, {"systemd", false},
	{"metrics", false}, {"notifications", false}, {"watch", false}, {"fleet", false},
	{"certbot", false}, {"security", false}, {"troubleshooting", false},
	{"architecture", true}, {"testing", true}, {"reliability", true}, {"performance", true},
	{"dependencies", true},
}

// Topics returns every page, in the order above.
func Topics() []Topic {
	entries, err := fs.ReadDir(files, ".")
	if err != nil {
		panic(fmt.Sprintf("docs: embedded pages: %v", err)) // cannot happen: the FS is built in
	}
	byName := map[string]Topic{}
	var extra []string
	for _, e := range entries {
		name, ok := strings.CutSuffix(e.Name(), ".md")
		if !ok {
			continue
		}
		body, err := fs.ReadFile(files, e.Name())
		if err != nil {
			panic(fmt.Sprintf("docs: %s: %v", e.Name(), err))
		}
		t := Topic{Name: name, Body: string(body), Title: title(string(body), name)}
		byName[name] = t
		if !slices.ContainsFunc(order, func(o entry) bool { return o.name == name }) {
			extra = append(extra, name)
		}
	}
	var out []Topic
	for _, o := range order {
		if t, ok := byName[o.name]; ok {
			t.Contributor = o.contributor
			out = append(out, t)
		}
	}
	slices.Sort(extra)
	for _, n := range extra {
		out = append(out, byName[n])
	}
	return out
}

// Lookup finds a topic by name; "configuration" is accepted for "config".
func Lookup(name string) (Topic, bool) {
	name = strings.TrimSuffix(strings.ToLower(name), ".md")
	if name == "configuration" {
		name = "config"
	}
	for _, t := range Topics() {
		if t.Name == name {
			return t, true
		}
	}
	return Topic{}, false
}

func title(body, def string) string {
	first, _, _ := strings.Cut(body, "\n")
	if t, ok := strings.CutPrefix(first, "# "); ok {
		return strings.TrimSpace(t)
	}
	return def
}

var linkRE = regexp.MustCompile(`\[([^\]]+)\]\(([^)\s]+)\)`)

// Text is a page as read in a terminal: Markdown is left as it is (it reads
// well as plain text) except links, which become their text followed by
// where to read the target: `renewer help NAME` for another page, the path
// in the source tree for a file there, the URL for a web page.
func Text(body string) string {
	return linkRE.ReplaceAllStringFunc(body, func(m string) string {
		sub := linkRE.FindStringSubmatch(m)
		text, target := sub[1], sub[2]
		switch {
		case strings.HasPrefix(target, "#"):
			return text
		case strings.HasPrefix(target, "http://"), strings.HasPrefix(target, "https://"):
			return text + " <" + target + ">"
		}
		path, _, _ := strings.Cut(target, "#")
		if !strings.Contains(path, "/") && strings.HasSuffix(path, ".md") {
			return text + " (renewer help " + strings.TrimSuffix(path, ".md") + ")"
		}
		// A file of the source tree, relative to internal/docs.
		return text + " (" + pathpkg.Join("internal/docs", path) + ")"
	})
}
