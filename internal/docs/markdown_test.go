package docs_test

import (
	"fmt"
	"regexp"
	"strings"
	"unicode"
)

// section is the text under one Markdown heading, up to the next heading
// of the same or a higher level.
type section struct {
	heading string // the heading's text, without the #s
	level   int
	line    int // of the heading, 1-based
	body    string
}

// headings lists the headings of md (not those inside fenced code), with
// their line numbers.
func headings(md string) []section {
	var out []section
	fenced := false
	for i, l := range strings.Split(md, "\n") {
		if strings.HasPrefix(strings.TrimSpace(l), "```") {
			fenced = !fenced
			continue
		}
		if fenced || !strings.HasPrefix(l, "#") {
			continue
		}
		level := len(l) - len(strings.TrimLeft(l, "#"))
		if level > 6 || !strings.HasPrefix(l[level:], " ") {
			continue
		}
		out = append(out, section{heading: strings.TrimSpace(l[level:]), level: level, line: i + 1})
	}
	return out
}

// sections returns every heading with its body.
func sections(md string) []section {
	lines := strings.Split(md, "\n")
	hs := headings(md)
	for i := range hs {
		end := len(lines)
		for _, next := range hs[i+1:] {
			if next.level <= hs[i].level {
				end = next.line - 1
				break
			}
		}
		hs[i].body = strings.Join(lines[hs[i].line:end], "\n")
	}
	return hs
}

var codeRE = regexp.MustCompile("`([^`]+)`")

// codes are the `code spans` of s.
func codes(s string) []string {
	var out []string
	for _, m := range codeRE.FindAllStringSubmatch(s, -1) {
		out = append(out, m[1])
	}
	return out
}

// firstCells are the code spans in the first cell of each table row of
// body (header and separator rows excluded).
func firstCells(body string) []string {
	var out []string
	lines := strings.Split(body, "\n")
	for i, l := range lines {
		if !strings.HasPrefix(l, "|") || strings.HasPrefix(l, "|---") {
			continue
		}
		if i+1 < len(lines) && strings.HasPrefix(lines[i+1], "|---") {
			continue // header row
		}
		cells := strings.Split(l, "|")
		if len(cells) > 2 {
			out = append(out, codes(cells[1])...)
		}
	}
	return out
}

// anchor is GitHub's anchor for a heading: lower case, punctuation
// dropped, spaces made hyphens.
func anchor(heading string) string {
	var b strings.Builder
	for _, r := range strings.ToLower(heading) {
		switch {
		case r == ' ':
			b.WriteByte('-')
		case r == '-' || r == '_' || unicode.IsLetter(r) || unicode.IsDigit(r):
			b.WriteRune(r)
		}
	}
	return b.String()
}

// anchors of md, with GitHub's -1, -2... for repeated headings.
func anchors(md string) map[string]bool {
	out := map[string]bool{}
	seen := map[string]int{}
	for _, h := range headings(md) {
		a := anchor(h.heading)
		if n := seen[a]; n > 0 {
			out[fmt.Sprintf("%s-%d", a, n)] = true
		} else {
			out[a] = true
		}
		seen[a]++
	}
	return out
}

var linkRE = regexp.MustCompile(`\[([^\]]*)\]\(([^)\s]+)\)`)

// link is one [text](target) of a page, outside fenced code.
type link struct {
	line   int
	target string
}

func links(md string) []link {
	var out []link
	fenced := false
	for i, l := range strings.Split(md, "\n") {
		if strings.HasPrefix(strings.TrimSpace(l), "```") {
			fenced = !fenced
			continue
		}
		if fenced {
			continue
		}
		for _, m := range linkRE.FindAllStringSubmatch(l, -1) {
			out = append(out, link{line: i + 1, target: m[2]})
		}
	}
	return out
}
