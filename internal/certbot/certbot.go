// Package certbot reads certbot's configuration directory (/etc/letsencrypt):
// the renewal/NAME.conf files, the live/NAME lineages they point to and the
// renewal-hooks directories, so `renewer import certbot` can write an
// equivalent renewer configuration and adopt the existing certificates.
// It only reads; nothing here changes certbot's files.
package certbot

import (
	"bufio"
	"errors"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"
	"regexp"
	"slices"
	"strconv"
	"strings"
	"time"

	"github.com/renewer/renewer/internal/certinfo"
)

// DefaultDir is certbot's default configuration directory.
const DefaultDir = "/etc/letsencrypt"

// Conf is a parsed renewal configuration file (configobj syntax): top-level
// keys, and sections with their keys. Nested sections ([[webroot_map]])
// are named by their own header.
type Conf struct {
	Top      map[string]string
	Sections map[string]map[string]string
}

// Param returns a key of [renewalparams].
func (c *Conf) Param(key string) string { return c.Sections["renewalparams"][key] }

var sectionRE = regexp.MustCompile(`^(\[+)\s*([^\]]*?)\s*(\]+)$`)

// ParseConf reads configobj text as certbot writes it: "key = value" lines,
// [section] and [[subsection]] headers, # comments, values optionally
// quoted with single, double or tripled quotes on one line).
func ParseConf(data string) (*Conf, error) {
	c := &Conf{Top: map[string]string{}, Sections: map[string]map[string]string{}}
	cur := c.Top
	sc := bufio.NewScanner(strings.NewReader(data))
	sc.Buffer(make([]byte, 64*1024), 1024*1024)
	for n := 1; sc.Scan(); n++ {
		line := strings.TrimSpace(sc.Text())
		if line == "" || strings.HasPrefix(line, "#") {
			continue
		}
		if m := sectionRE.FindStringSubmatch(line); m != nil {
			name := m[2]
			if c.Sections[name] == nil {
				c.Sections[name] = map[string]string{}
			}
			cur = c.Sections[name]
			continue
		}
		k, v, ok := strings.Cut(line, "=")
		if !ok {
			return nil, fmt.Errorf("line %d: expected key = value, got %q", n, line)
		}
		cur[strings.TrimSpace(k)] = unquote(strings.TrimSpace(v))
	}
	return c, sc.Err()
}

// unquote strips one level of configobj quoting; an unquoted value loses a
// trailing comment.
func unquote(v string) string {
	for _, q := range []string{`"""`, `'''`, `"`, `'`} {
		if len(v) >= 2*len(q) && strings.HasPrefix(v, q) {
			if end := strings.LastIndex(v, q); end >= len(q) {
				return v[len(q):end]
			}
		}
	}
	if i := strings.Index(v, " #"); i >= 0 {
		v = strings.TrimSpace(v[:i])
	}
	return v
}

// List splits a configobj list value ("a, b," or "a,"); a single value
// without a comma is a one-element list.
func List(v string) []string {
	var out []string
	for p := range strings.SplitSeq(v, ",") {
		if p = strings.TrimSpace(unquote(strings.TrimSpace(p))); p != "" {
			out = append(out, p)
		}
	}
	return out
}

// Lineage is one certbot certificate: its renewal config and current files.
type Lineage struct {
	Name     string
	ConfPath string
	Conf     *Conf
	// The live files named by the renewal config (normally symlinks into archive/).
	Cert, Chain, Fullchain, Privkey string
	Facts                           *certinfo.Facts // of Fullchain with Privkey
	Domains                         []string        // the certificate's DNS names, its subject first
}

// LiveDir is the directory holding the lineage's live files, or "" when
// they are not all in one directory.
func (l *Lineage) LiveDir() string {
	d := filepath.Dir(l.Cert)
	for _, p := range []string{l.Chain, l.Fullchain, l.Privkey} {
		if filepath.Dir(p) != d {
			return ""
		}
	}
	return d
}

// Problem is a lineage or file that could not be read, or (Warn) one that
// was skipped on purpose.
type Problem struct {
	Name string // lineage name, or "" for the directory as a whole
	Err  error
	Warn bool // skipped, not failed: e.g. a live/ directory certbot does not renew either
}

func (p Problem) Error() string {
	if p.Name == "" {
		return p.Err.Error()
	}
	return fmt.Sprintf("lineage %s: %v", p.Name, p.Err)
}

// Read loads every lineage of the certbot configuration directory dir, in
// name order. A lineage that cannot be read is a Problem, and the others
// are still returned. The error is for a dir that is not certbot's.
func Read(dir string) ([]Lineage, []Problem, error) {
	confs, err := filepath.Glob(filepath.Join(dir, "renewal", "*.conf"))
	if err != nil {
		return nil, nil, err
	}
	if len(confs) == 0 {
		if _, err := os.Stat(filepath.Join(dir, "renewal")); err != nil {
			return nil, nil, fmt.Errorf("%s does not look like a certbot configuration directory: %w", dir, err)
		}
	}
	slices.Sort(confs)
	var out []Lineage
	var problems []Problem
	seen := map[string]bool{}
	for _, p := range confs {
		name := strings.TrimSuffix(filepath.Base(p), ".conf")
		seen[name] = true
		l, err := readLineage(name, p)
		if err != nil {
			problems = append(problems, Problem{Name: name, Err: err})
			continue
		}
		out = append(out, *l)
	}
	// A live/ lineage without a renewal config is not renewed by certbot either.
	if entries, err := os.ReadDir(filepath.Join(dir, "live")); err == nil {
		for _, e := range entries {
			if e.IsDir() && !seen[e.Name()] {
				problems = append(problems, Problem{Name: e.Name(), Warn: true, Err: fmt.Errorf(
					"live/%s has no renewal/%s.conf (certbot does not renew it either); skipped", e.Name(), e.Name())})
			}
		}
	}
	return out, problems, nil
}

func readLineage(name, confPath string) (*Lineage, error) {
	data, err := os.ReadFile(confPath)
	if err != nil {
		return nil, err
	}
	c, err := ParseConf(string(data))
	if err != nil {
		return nil, fmt.Errorf("%s: %w", confPath, err)
	}
	l := &Lineage{Name: name, ConfPath: confPath, Conf: c,
		Cert: c.Top["cert"], Chain: c.Top["chain"], Fullchain: c.Top["fullchain"], Privkey: c.Top["privkey"]}
	for k, v := range map[string]string{"cert": l.Cert, "chain": l.Chain, "fullchain": l.Fullchain, "privkey": l.Privkey} {
		if v == "" {
			return nil, fmt.Errorf("%s: no %s path", confPath, k)
		}
	}
	l.Facts, err = certinfo.Load(l.Fullchain, l.Privkey)
	if err != nil {
		return nil, err
	}
	leaf := l.Facts.Leaf
	if cn := strings.ToLower(leaf.Subject.CommonName); cn != "" && slices.Contains(l.Facts.Names, cn) {
		l.Domains = append(l.Domains, cn)
	}
	for _, n := range leaf.DNSNames {
		if n = strings.ToLower(n); !slices.Contains(l.Domains, n) {
			l.Domains = append(l.Domains, n)
		}
	}
	if len(l.Domains) == 0 {
		return nil, fmt.Errorf("%s names no DNS names", l.Cert)
	}
	return l, nil
}

// Hooks are the executables in renewal-hooks/{pre,deploy,post}, which
// certbot runs for every lineage, in name order.
type Hooks struct{ Pre, Deploy, Post []string }

// ReadHooks lists dir/renewal-hooks. Missing directories are empty.
func ReadHooks(dir string) (Hooks, error) {
	var h Hooks
	for kind, dst := range map[string]*[]string{"pre": &h.Pre, "deploy": &h.Deploy, "post": &h.Post} {
		d := filepath.Join(dir, "renewal-hooks", kind)
		entries, err := os.ReadDir(d)
		if errors.Is(err, fs.ErrNotExist) {
			continue
		}
		if err != nil {
			return h, err
		}
		for _, e := range entries {
			fi, err := os.Stat(filepath.Join(d, e.Name()))
			if err == nil && fi.Mode().IsRegular() && fi.Mode()&0o111 != 0 {
				*dst = append(*dst, filepath.Join(d, e.Name()))
			}
		}
		slices.Sort(*dst)
	}
	return h, nil
}

// Interval converts certbot's renew_before_expiry ("30 days", "2 weeks",
// "3 days 12 hours", "10") to a duration. Months and years are refused:
// their length depends on the date.
func Interval(s string) (time.Duration, error) {
	f := strings.Fields(strings.ToLower(s))
	if len(f) == 1 {
		f = append(f, "days")
	}
	if len(f)%2 != 0 || len(f) == 0 {
		return 0, fmt.Errorf("cannot read interval %q", s)
	}
	var total time.Duration
	for i := 0; i < len(f); i += 2 {
		n, err := strconv.Atoi(f[i])
		if err != nil || n < 0 {
			return 0, fmt.Errorf("cannot read interval %q", s)
		}
		var unit time.Duration
		switch strings.TrimSuffix(f[i+1], "s") {
		case "week":
			unit = 7 * 24 * time.Hour
		case "day":
			unit = 24 * time.Hour
		case "hour":
			unit = time.Hour
		case "minute":
			unit = time.Minute
		default:
			return 0, fmt.Errorf("cannot read interval %q (unit %q)", s, f[i+1])
		}
		total += time.Duration(n) * unit
	}
	return total, nil
}

func readSmall(path string) (string, error) {
	data, err := os.ReadFile(path)
	if err != nil {
		return "", err
	}
	return string(data), nil
}
