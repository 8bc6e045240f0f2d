//go:build linux

// Command compare is `make bench`: renewer measured side by side with
// certbot (the distribution's package) and the lego CLI (built from the
// version go.mod pins, in a temporary directory) against one local Pebble,
// in one run, so that the ratios hold on a noisy machine. It prints one table
// and writes it, with the details behind it, to -out.
//
//  1. nothing due, 1,000 certificates: `renewer renew` vs `certbot renew`
//     over 1,000 lineages (one real lineage from Pebble, cloned);
//  2. issue 50 certificates over HTTP-01 from a Pebble with its stock
//     Retry-After: one `renewer renew` vs a loop of `certbot certonly` and a
//     loop of `lego run`, with the CA requests each sends;
//  3. the idle daemon with 1,000 certificates: RSS and CPU over 60 s;
//  4. ARI for 1,000 certificates (internal/bench/ari);
//  5. nothing due at 100, 1,000 and 10,000 certificates: growth;
//  6. Go benchmarks of plan, certinfo and config decoding;
//  7. the mass-revocation drill: 1,000 certificates under a running daemon,
//     their ARI windows moved into the past, all replaced (internal/bench/ari
//     -drill, internal/bench/drill).
//
// Child processes are measured with wait4's rusage (wall time, peak RSS).
// These are benchmarks, not tests: a missed target is reported, not failed.
package main

import (
	"bufio"
	"context"
	"errors"
	"flag"
	"fmt"
	"os"
	"os/exec"
	"os/signal"
	"path/filepath"
	"regexp"
	"runtime"
	"slices"
	"strconv"
	"strings"
	"syscall"
	"time"

	"github.com/renewer/renewer/internal/testca"
)

type options struct {
	out         string
	issue       int
	concurrency []int // extra renewer concurrencies for scenario 2
	sizes       []int
	reps        int
	idle        time.Duration
	only        map[int]bool
	keep        bool
	drill       int // certificates in scenario 7
}

func main() {
	var o options
	var conc, sizes, only string
	flag.StringVar(&o.out, "out", "internal/bench/results.md", "where to write the table (markdown)")
	flag.IntVar(&o.issue, "issue", 50, "certificates to issue in scenario 2")
	flag.StringVar(&conc, "concurrency", "8,16", "also run scenario 2 with these renewer concurrencies (comma-separated; \"\" for none)")
	flag.StringVar(&sizes, "sizes", "100,1000,10000", "certificate counts for the nothing-due scale curve (1,000 is scenario 1)")
	flag.IntVar(&o.reps, "reps", 3, "repetitions of each nothing-due run (the median is reported)")
	flag.DurationVar(&o.idle, "idle", 60*time.Second, "idle daemon measuring window")
	flag.StringVar(&only, "only", "", "run only these scenarios (comma-separated numbers; for development)")
	flag.BoolVar(&o.keep, "keep", false, "keep the work directory")
	flag.IntVar(&o.drill, "drill", 1000, "certificates in scenario 7, the mass-revocation drill")
	flag.Parse()
	var err error
	if o.concurrency, err = ints(conc); err == nil {
		if o.sizes, err = ints(sizes); err == nil {
			var sc []int
			sc, err = ints(only)
			o.only = map[int]bool{}
			for _, s := range sc {
				o.only[s] = true
			}
		}
	}
	if err != nil {
		fmt.Fprintln(os.Stderr, "bench:", err)
		os.Exit(2)
	}
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	defer stop()
	if err := run(ctx, o); err != nil {
		fmt.Fprintln(os.Stderr, "bench:", err)
		os.Exit(1)
	}
}

func ints(s string) ([]int, error) {
	var out []int
	for f := range strings.SplitSeq(s, ",") {
		if f = strings.TrimSpace(f); f == "" {
			continue
		}
		n, err := strconv.Atoi(f)
		if err != nil || n <= 0 {
			return nil, fmt.Errorf("bad number %q", f)
		}
		out = append(out, n)
	}
	return out, nil
}

// bench holds what every scenario needs.
type bench struct {
	o       options
	root    string // the module
	work    string
	bin     map[string]string // renewer, gencerts, ari, lego, certbot
	ca      *testca.CA
	reqs    *counter
	start   time.Time
	rows    []row
	details []string
	fixture map[int]string // renewer nothing-due configs by size
}

// row is one line of the results table.
type row struct{ scenario, renewer, certbot, lego, ratio, target, met string }

func (b *bench) add(r row) {
	b.rows = append(b.rows, r)
	b.logf("  %s | %s | %s | %s | %s | %s %s", r.scenario, r.renewer, r.certbot, r.lego, r.ratio, r.target, r.met)
}

func (b *bench) logf(format string, args ...any) {
	el := time.Since(b.start).Round(time.Second)
	fmt.Fprintf(os.Stderr, "[%5s] %s\n", el, fmt.Sprintf(format, args...))
}

func met(ok bool) string {
	if ok {
		return "yes"
	}
	return "**no**"
}

func (b *bench) want(n int) bool { return len(b.o.only) == 0 || b.o.only[n] }

func run(ctx context.Context, o options) error {
	b := &bench{o: o, start: time.Now(), bin: map[string]string{}, fixture: map[int]string{}}
	out, err := exec.Command("go", "env", "GOMOD").Output()
	if err != nil || strings.TrimSpace(string(out)) == os.DevNull || strings.TrimSpace(string(out)) == "" {
		return errors.New("run from inside the renewer module")
	}
	b.root = filepath.Dir(strings.TrimSpace(string(out)))
	if b.work, err = os.MkdirTemp("", "renewer-bench-"); err != nil {
		return err
	}
	if o.keep {
		b.logf("work directory: %s", b.work)
	} else {
		defer os.RemoveAll(b.work)
	}
	loadStart := loadavg()

	if b.bin["certbot"], err = exec.LookPath("certbot"); err != nil {
		return errors.New("certbot is not installed (`make bench` installs the distribution's package)")
	}
	b.logf("building renewer, the fixture tools and the lego CLI (lego: a minute or two the first time)")
	if err := b.build(ctx); err != nil {
		return err
	}
	versions := b.versions(ctx)

	caLog, err := os.Create(filepath.Join(b.work, "ca.log"))
	if err != nil {
		return err
	}
	defer caLog.Close()
	b.reqs = newCounter(caLog)
	// No nonces rejected: request counts are then the clients' own, and
	// certbot 2.1.0 crashes (AttributeError) when a retried request meets a
	// second badNonce, which Pebble's default 5% makes happen every few
	// dozen certificates.
	b.ca, err = testca.Start(ctx, testca.Options{Dir: filepath.Join(b.work, "ca"), StockRetryAfter: true, Env: []string{"PEBBLE_WFE_NONCEREJECT=0"}, Log: b.reqs})
	if err != nil {
		return err
	}
	defer b.ca.Stop()
	b.logf("Pebble at %s (stock Retry-After: authorizations 3 s, orders 5 s; VA without sleeps; no bad nonces)", b.ca.Directory)

	steps := []struct {
		n   int
		run func(context.Context) error
	}{
		{1, b.nothingDue}, // scenarios 1 and 5
		{2, b.issue},
		{3, b.idleDaemon},
		{4, b.ari},
		{6, b.goBench},
		{7, b.drill},
	}
	for _, s := range steps {
		if !b.want(s.n) && (s.n != 1 || !b.want(5)) {
			continue
		}
		if err := s.run(ctx); err != nil {
			return fmt.Errorf("scenario %d: %w", s.n, err)
		}
	}
	return b.write(versions, loadStart)
}

func (b *bench) build(ctx context.Context) error {
	binDir := filepath.Join(b.work, "bin")
	version := "bench"
	if out, err := exec.Command("git", "-C", b.root, "describe", "--tags", "--always", "--dirty").Output(); err == nil {
		version = strings.TrimSpace(string(out))
	}
	builds := [][]string{
		{"renewer", "-trimpath", "-ldflags", "-s -w -X github.com/renewer/renewer/internal/cli.Version=" + version, "./cmd/renewer"},
		{"renewer-lean", "-tags", "lean", "-trimpath", "-ldflags", "-s -w -X github.com/renewer/renewer/internal/cli.Version=" + version, "./cmd/renewer"},
		{"gencerts", "./internal/bench/gencerts"},
		{"ari", "./internal/bench/ari"},
	}
	for _, bl := range builds {
		out := filepath.Join(binDir, bl[0])
		args := append([]string{"build", "-o", out}, bl[1:]...)
		cmd := command(ctx, []string{"CGO_ENABLED=0"}, "go", args...)
		cmd.Dir = b.root
		if o, err := cmd.CombinedOutput(); err != nil {
			return fmt.Errorf("go build %s: %w\n%s", bl[0], err, o)
		}
		b.bin[bl[0]] = out
	}
	b.bin["lego"] = filepath.Join(binDir, "lego")
	_, err := buildLego(ctx, b.root, filepath.Join(b.work, "lego-build"), b.bin["lego"])
	return err
}

func (b *bench) versions(ctx context.Context) map[string]string {
	v := map[string]string{}
	first := func(name string, args ...string) string {
		out, err := exec.CommandContext(ctx, name, args...).CombinedOutput()
		if err != nil {
			return "?"
		}
		line, _, _ := strings.Cut(strings.TrimSpace(string(out)), "\n")
		return line
	}
	v["renewer"] = first(b.bin["renewer"], "version")
	v["certbot"] = first(b.bin["certbot"], "--version")
	v["lego"] = first(b.bin["lego"], "--version")
	cmd := exec.CommandContext(ctx, "go", "list", "-m", "-f", "{{.Version}}", "github.com/letsencrypt/pebble/v2")
	cmd.Dir = b.root
	if out, err := cmd.Output(); err == nil {
		v["pebble"] = "Pebble " + strings.TrimSpace(string(out))
	}
	v["go"] = runtime.Version()
	return v
}

// renewerFixture returns the config of n installed, fresh certificates (none
// due, fresh ARI answers), made once per size.
func (b *bench) renewerFixture(ctx context.Context, n int) (string, error) {
	if f := b.fixture[n]; f != "" {
		return f, nil
	}
	dir := filepath.Join(b.work, fmt.Sprintf("renewer-%d", n))
	if _, err := measure(command(ctx, nil, b.bin["gencerts"], "-n", strconv.Itoa(n), "-dir", dir, "-ari-fresh")); err != nil {
		return "", err
	}
	b.fixture[n] = filepath.Join(dir, "renewer.hcl")
	return b.fixture[n], nil
}

// nothingDue is scenarios 1 and 5: a renewal check that finds nothing due,
// renewer against certbot, at each size, alternating, median of reps.
func (b *bench) nothingDue(ctx context.Context) error {
	b.logf("scenario 1/5: nothing due at %v certificates; issuing the certbot lineage to clone", b.o.sizes)
	seed := newCertbotDirs(filepath.Join(b.work, "certbot-seed"))
	args := append([]string{"certonly", "--server", b.ca.Directory, "--standalone",
		"--http-01-port", strconv.Itoa(b.ca.HTTPPort), "--http-01-address", "127.0.0.1",
		"-d", "seed.example.test", "--cert-name", "seed", "--agree-tos", "--email", "bench@example.test", "--non-interactive"}, seed.args()...)
	if _, err := measure(command(ctx, []string{"REQUESTS_CA_BUNDLE=" + b.ca.CABundle}, b.bin["certbot"], args...)); err != nil {
		return err
	}
	type point struct {
		n                int
		rWall, cWall     time.Duration
		rRSS, cRSS       int64
		rCPUMed, cCPUMed time.Duration
		rWalls, cWalls   []time.Duration
		rRSSs, cRSSs     []int64
		rCPU, cCPU       []time.Duration
		lWall            time.Duration // the lean build (-tags lean)
		lRSS             int64
		lWalls           []time.Duration
		lRSSs            []int64
	}
	var pts []*point
	for _, n := range b.o.sizes {
		b.logf("  preparing %d certificates for renewer and %d certbot lineages", n, n)
		cfg, err := b.renewerFixture(ctx, n)
		if err != nil {
			return err
		}
		cb := newCertbotDirs(filepath.Join(b.work, fmt.Sprintf("certbot-%d", n)))
		if err := cloneLineages(seed, "seed", cb, n); err != nil {
			return err
		}
		p := &point{n: n}
		for rep := range b.o.reps {
			rs, err := measure(command(ctx, nil, b.bin["renewer"], "renew", "--config", cfg))
			if err != nil {
				return err
			}
			if got := strings.Count(rs.Stdout, "not due"); got != n {
				return fmt.Errorf("renewer renew: %d of %d certificates not due:\n%s", got, n, tail(rs.Stdout+rs.Stderr, 2000))
			}
			ls, err := measure(command(ctx, nil, b.bin["renewer-lean"], "renew", "--config", cfg))
			if err != nil {
				return err
			}
			if got := strings.Count(ls.Stdout, "not due"); got != n {
				return fmt.Errorf("renewer (lean) renew: %d of %d certificates not due:\n%s", got, n, tail(ls.Stdout+ls.Stderr, 2000))
			}
			p.lWalls, p.lRSSs = append(p.lWalls, ls.Wall), append(p.lRSSs, ls.MaxRSS)
			args := append([]string{"renew", "--no-random-sleep-on-renew", "--non-interactive"}, cb.args()...)
			cs, err := measure(command(ctx, nil, b.bin["certbot"], args...))
			if err != nil {
				return err
			}
			if !strings.Contains(cs.Stdout+cs.Stderr, "No renewals were attempted") {
				return fmt.Errorf("certbot renew attempted something:\n%s", tail(cs.Stdout+cs.Stderr, 2000))
			}
			p.rWalls, p.cWalls = append(p.rWalls, rs.Wall), append(p.cWalls, cs.Wall)
			p.rRSSs, p.cRSSs = append(p.rRSSs, rs.MaxRSS), append(p.cRSSs, cs.MaxRSS)
			p.rCPU, p.cCPU = append(p.rCPU, rs.User+rs.Sys), append(p.cCPU, cs.User+cs.Sys)
			b.logf("  %d certificates, run %d: renewer %s %s, certbot %s %s", n, rep+1, secs(rs.Wall), mb(rs.MaxRSS), secs(cs.Wall), mb(cs.MaxRSS))
		}
		p.rWall, p.cWall = median(p.rWalls), median(p.cWalls)
		p.rRSS, p.cRSS = medianInt(p.rRSSs), medianInt(p.cRSSs)
		p.rCPUMed, p.cCPUMed = median(p.rCPU), median(p.cCPU)
		p.lWall, p.lRSS = median(p.lWalls), medianInt(p.lRSSs)
		pts = append(pts, p)
		if !b.o.keep {
			os.RemoveAll(cb.Config) // 10,000 lineages take room
		}
	}
	for _, p := range pts {
		if p.n != 1000 || !b.want(1) {
			continue
		}
		tr, mr := p.cWall.Seconds()/p.rWall.Seconds(), float64(p.cRSS)/float64(p.rRSS)
		b.add(row{"1. nothing due, 1,000 certificates: wall time", secs(p.rWall), secs(p.cWall), "—",
			"certbot/renewer " + times(tr), "≥ 20×", met(tr >= 20)})
		b.add(row{"1. nothing due, 1,000 certificates: peak RSS", mb(p.rRSS), mb(p.cRSS), "—",
			"certbot/renewer " + times(mr), "≥ 2×", met(mr >= 2)})
		tl, ml := p.cWall.Seconds()/p.lWall.Seconds(), float64(p.cRSS)/float64(p.lRSS)
		b.add(row{"1. nothing due, 1,000 certificates: wall time, lean build", secs(p.lWall), "", "",
			"certbot/renewer " + times(tl), "≥ 20×", met(tl >= 20)})
		b.add(row{"1. nothing due, 1,000 certificates: peak RSS, lean build", mb(p.lRSS), "", "",
			"certbot/renewer " + times(ml), "≥ 2×", met(ml >= 2)})
	}
	if !b.want(5) {
		return nil
	}
	detail := []string{"Nothing due (scenarios 1 and 5), median of " + strconv.Itoa(b.o.reps) + " runs each, renewer and certbot alternating:", "",
		"| certificates | renewer wall | renewer CPU | renewer peak RSS | lean build wall | lean build peak RSS | certbot wall | certbot CPU | certbot peak RSS |", "|---|---|---|---|---|---|---|---|---|"}
	for _, p := range pts {
		detail = append(detail, fmt.Sprintf("| %d | %s | %s | %s | %s | %s | %s | %s | %s |", p.n, secs(p.rWall), secs(p.rCPUMed), mb(p.rRSS),
			secs(p.lWall), mb(p.lRSS), secs(p.cWall), secs(p.cCPUMed), mb(p.cRSS)))
		if p.n == 1000 && b.want(1) {
			continue
		}
		b.add(row{fmt.Sprintf("5. nothing due, %s certificates", thousands(p.n)), secs(p.rWall) + ", " + mb(p.rRSS),
			secs(p.cWall) + ", " + mb(p.cRSS), "—", "certbot/renewer " + times(p.cWall.Seconds()/p.rWall.Seconds()) + " time", "", ""})
	}
	b.details = append(b.details, strings.Join(detail, "\n"))
	// Each step up: per certificate, the larger size must cost no more than
	// the smaller (fixed start-up costs make it cost less); 25% for noise.
	for j := 1; j < len(pts); j++ {
		lo, hi := pts[j-1], pts[j]
		k := float64(hi.n) / float64(lo.n)
		tg, mg := hi.rWall.Seconds()/lo.rWall.Seconds(), float64(hi.rRSS)/float64(lo.rRSS)
		b.add(row{fmt.Sprintf("5. growth, %s → %s certificates (×%.0f)", thousands(lo.n), thousands(hi.n), k),
			fmt.Sprintf("time ×%.1f, RSS ×%.1f", tg, mg),
			fmt.Sprintf("time ×%.1f, RSS ×%.1f", hi.cWall.Seconds()/lo.cWall.Seconds(), float64(hi.cRSS)/float64(lo.cRSS)), "—",
			"", fmt.Sprintf("renewer ≤ ×%.0f (linear; 25%% for noise)", k), met(tg <= 1.25*k && mg <= 1.25*k)})
	}
	return nil
}

func thousands(n int) string {
	s := strconv.Itoa(n)
	for i := len(s) - 3; i > 0; i -= 3 {
		s = s[:i] + "," + s[i:]
	}
	return s
}

// issue is scenario 2.
func (b *bench) issue(ctx context.Context) error {
	n := b.o.issue
	b.logf("scenario 2: issuing %d certificates with renewer, a certbot loop and a lego loop", n)
	type result struct {
		wall   time.Duration
		rss    int64
		reqs   requests
		detail string
	}
	renewer := func(conc int, prefix string) (result, error) {
		dir := filepath.Join(b.work, "issue-"+prefix)
		if err := os.MkdirAll(dir, 0o700); err != nil {
			return result{}, err
		}
		var cfg strings.Builder
		fmt.Fprintf(&cfg, "storage { path = %q }\nacme {\n  directory = %q\n  ca_bundle = %q\n  email = \"bench@example.test\"\n  accept_terms = true\n}\n",
			filepath.Join(dir, "state"), b.ca.Directory, b.ca.CABundle)
		if conc > 0 {
			fmt.Fprintf(&cfg, "daemon { concurrency = %d }\n", conc)
		}
		for i := range n {
			fmt.Fprintf(&cfg, "certificate \"%s%02d\" {\n  domains = [\"%s%02d.example.test\"]\n  challenge \"http\" { listen = \"127.0.0.1:%d\" }\n}\n",
				prefix, i, prefix, i, b.ca.HTTPPort)
		}
		file := filepath.Join(dir, "renewer.hcl")
		if err := os.WriteFile(file, []byte(cfg.String()), 0o600); err != nil {
			return result{}, err
		}
		b.reqs.take()
		s, err := measure(command(ctx, nil, b.bin["renewer"], "renew", "--config", file))
		if err != nil {
			return result{}, err
		}
		if got := strings.Count(s.Stdout, "obtained"); got != n {
			return result{}, fmt.Errorf("renewer obtained %d of %d:\n%s", got, n, tail(s.Stdout+s.Stderr, 3000))
		}
		return result{wall: s.Wall, rss: s.MaxRSS, reqs: b.reqs.take()}, nil
	}
	loop := func(tool string, each func(i int) *exec.Cmd) (result, error) {
		b.reqs.take()
		var r result
		start := time.Now()
		for i := range n {
			s, err := measure(each(i))
			if err != nil {
				return r, err
			}
			r.rss = max(r.rss, s.MaxRSS)
			if (i+1)%10 == 0 {
				b.logf("  %s: %d of %d (%s so far)", tool, i+1, n, secs(time.Since(start)))
			}
		}
		r.wall = time.Since(start)
		r.reqs = b.reqs.take()
		return r, nil
	}

	re, err := renewer(0, "r")
	if err != nil {
		return err
	}
	b.logf("  renewer (default concurrency): %s", secs(re.wall))
	cb := newCertbotDirs(filepath.Join(b.work, "issue-certbot"))
	ce, err := loop("certbot", func(i int) *exec.Cmd {
		args := append([]string{"certonly", "--server", b.ca.Directory, "--standalone",
			"--http-01-port", strconv.Itoa(b.ca.HTTPPort), "--http-01-address", "127.0.0.1",
			"-d", fmt.Sprintf("cb%02d.example.test", i), "--agree-tos", "--email", "bench@example.test", "--non-interactive"}, cb.args()...)
		return command(ctx, []string{"REQUESTS_CA_BUNDLE=" + b.ca.CABundle}, b.bin["certbot"], args...)
	})
	if err != nil {
		return err
	}
	legoPath := filepath.Join(b.work, "issue-lego")
	le, err := loop("lego", func(i int) *exec.Cmd {
		return command(ctx, []string{"LEGO_CA_CERTIFICATES=" + b.ca.CABundle}, b.bin["lego"],
			"--server", b.ca.Directory, "--accept-tos", "--email", "bench@example.test", "--path", legoPath,
			"--http", "--http.port", fmt.Sprintf("127.0.0.1:%d", b.ca.HTTPPort),
			"-d", fmt.Sprintf("lg%02d.example.test", i), "run")
	})
	if err != nil {
		return err
	}
	extra := map[int]result{}
	for _, c := range b.o.concurrency {
		r, err := renewer(c, fmt.Sprintf("r%dx", c))
		if err != nil {
			return err
		}
		b.logf("  renewer (concurrency %d): %s", c, secs(r.wall))
		extra[c] = r
	}

	per := func(r result) float64 { return float64(r.reqs.total()) / float64(n) }
	scen := fmt.Sprintf("2. issue %d certificates (HTTP-01)", n)
	rc, rl := ce.wall.Seconds()/re.wall.Seconds(), le.wall.Seconds()/re.wall.Seconds()
	b.add(row{scen + ": wall time", secs(re.wall) + " (concurrency 4)", secs(ce.wall), secs(le.wall),
		fmt.Sprintf("certbot/renewer %s, lego/renewer %s", times(rc), times(rl)), "≥ 8× each", met(rc >= 8 && rl >= 8)})
	for _, c := range b.o.concurrency {
		r := extra[c]
		rc, rl := ce.wall.Seconds()/r.wall.Seconds(), le.wall.Seconds()/r.wall.Seconds()
		b.add(row{scen + fmt.Sprintf(": wall time, renewer concurrency %d", c), secs(r.wall), "", "",
			fmt.Sprintf("certbot/renewer %s, lego/renewer %s", times(rc), times(rl)), "≥ 8× each", met(rc >= 8 && rl >= 8)})
	}
	b.add(row{scen + ": CA requests per certificate", fmt.Sprintf("%.2f", per(re)), fmt.Sprintf("%.2f", per(ce)), fmt.Sprintf("%.2f", per(le)),
		"", "renewer ≤ lego", met(per(re) <= per(le))})
	b.add(row{scen + ": peak RSS (one process; the largest of the loop's)", mb(re.rss), mb(ce.rss), mb(le.rss), "", "", ""})

	// Requests by endpoint, per certificate.
	cols := []struct {
		name string
		r    result
	}{{"renewer", re}, {"certbot", ce}, {"lego", le}}
	for _, c := range b.o.concurrency {
		cols = append(cols, struct {
			name string
			r    result
		}{fmt.Sprintf("renewer ×%d", c), extra[c]})
	}
	all := requests{}
	for _, c := range cols {
		for k, v := range c.r.reqs {
			all[k] += v
		}
	}
	var d strings.Builder
	fmt.Fprintf(&d, "CA requests in scenario 2 by endpoint (Pebble's log), per certificate; account registration included (once per tool):\n\n| request |")
	for _, c := range cols {
		fmt.Fprintf(&d, " %s |", c.name)
	}
	d.WriteString("\n|---|" + strings.Repeat("---|", len(cols)) + "\n")
	for _, k := range all.keys() {
		fmt.Fprintf(&d, "| `%s` |", k)
		for _, c := range cols {
			fmt.Fprintf(&d, " %.2f |", float64(c.r.reqs[k])/float64(n))
		}
		d.WriteString("\n")
	}
	fmt.Fprintf(&d, "| total |")
	for _, c := range cols {
		fmt.Fprintf(&d, " %.2f |", per(c.r))
	}
	d.WriteString("\n")
	b.details = append(b.details, d.String())
	return nil
}

// idleDaemon is scenario 3: `renewer run` over 1,000 installed certificates
// (none due), measured after its first pass for o.idle.
func (b *bench) idleDaemon(ctx context.Context) error {
	if err := b.idleDaemonOf(ctx, "renewer", ""); err != nil {
		return err
	}
	return b.idleDaemonOf(ctx, "renewer-lean", ", lean build")
}

// idleDaemonOf measures the daemon of one build (bin names it in b.bin).
func (b *bench) idleDaemonOf(ctx context.Context, bin, label string) error {
	b.logf("scenario 3: idle daemon (%s) with 1,000 certificates for %s", bin, b.o.idle)
	cfg, err := b.renewerFixture(ctx, 1000)
	if err != nil {
		return err
	}
	logFile := filepath.Join(b.work, "daemon.log")
	lf, err := os.Create(logFile)
	if err != nil {
		return err
	}
	defer lf.Close()
	cmd := exec.Command(b.bin[bin], "run", "--config", cfg)
	cmd.Stdout, cmd.Stderr = lf, lf
	if err := cmd.Start(); err != nil {
		return err
	}
	done := make(chan error, 1)
	go func() { done <- cmd.Wait() }()
	defer func() {
		_ = cmd.Process.Signal(syscall.SIGTERM)
		select {
		case <-done:
		case <-time.After(10 * time.Second):
			_ = cmd.Process.Kill()
			<-done
		}
	}()
	ready := false
	for deadline := time.Now().Add(60 * time.Second); time.Now().Before(deadline); {
		if data, _ := os.ReadFile(logFile); strings.Contains(string(data), "next wake-up") {
			ready = true
			break
		}
		select {
		case err := <-done:
			data, _ := os.ReadFile(logFile)
			return fmt.Errorf("renewer run exited: %v\n%s", err, tail(string(data), 2000))
		case <-time.After(50 * time.Millisecond):
		}
	}
	if !ready {
		return errors.New("renewer run did not finish its first pass within 60 s")
	}
	pid := cmd.Process.Pid
	t0, err := cpuTicks(pid)
	if err != nil {
		return err
	}
	select {
	case <-time.After(b.o.idle):
	case <-ctx.Done():
		return ctx.Err()
	}
	t1, err := cpuTicks(pid)
	if err != nil {
		return err
	}
	rss, err := procStatus(pid, "VmRSS")
	if err != nil {
		return err
	}
	hwm, _ := procStatus(pid, "VmHWM")
	anon, _ := procStatus(pid, "RssAnon")
	file, _ := procStatus(pid, "RssFile")
	cpu := 100 * float64(t1-t0) / float64(clockTicks()) / b.o.idle.Seconds()
	b.add(row{fmt.Sprintf("3. idle daemon, 1,000 certificates, %s: RSS%s", secs(b.o.idle), label),
		fmt.Sprintf("%s (%s anonymous, %s the binary's pages; peak %s in the first pass)", mb(rss), mb(anon), mb(file), mb(hwm)),
		"no daemon", "no daemon", "", "≤ 30 MB", met(rss <= 30<<20)})
	b.add(row{fmt.Sprintf("3. idle daemon, 1,000 certificates, %s: CPU%s", secs(b.o.idle), label), fmt.Sprintf("%.3f%% (%d ticks)", cpu, t1-t0),
		"no daemon", "no daemon", "", "≤ 0.1%", met(cpu <= 0.1)})
	return nil
}

// clockTicks is USER_HZ, the unit of /proc/<pid>/stat's times; 100 on every
// Linux architecture Go supports.
func clockTicks() int64 {
	if out, err := exec.Command("getconf", "CLK_TCK").Output(); err == nil {
		if n, err := strconv.ParseInt(strings.TrimSpace(string(out)), 10, 64); err == nil && n > 0 {
			return n
		}
	}
	return 100
}

// ari is scenario 4, measured by internal/bench/ari (its own Pebble).
func (b *bench) ari(ctx context.Context) error {
	b.logf("scenario 4: ARI for 1,000 certificates (internal/bench/ari)")
	s, err := measure(command(ctx, nil, b.bin["ari"], "-n", "1000"))
	if err != nil {
		return err
	}
	m := regexp.MustCompile(`windows fetched: (\d+)\): ([0-9.]+) s`).FindStringSubmatch(s.Stdout)
	if m == nil {
		return fmt.Errorf("unexpected output of internal/bench/ari:\n%s", s.Stdout)
	}
	took, _ := strconv.ParseFloat(m[2], 64)
	b.add(row{"4. ARI for 1,000 certificates (one pass, all answers stale)", fmt.Sprintf("%.2f s (%s windows)", took, m[1]),
		"no ARI (2.1.0)", "one certificate per run", "", "≤ 5 s", met(took <= 5)})
	return nil
}

// drill is scenario 7, the mass-revocation drill, run by internal/bench/ari
// (its own Pebble): the time from the window change to the last
// replacement installed, and the CA requests per certificate.
func (b *bench) drill(ctx context.Context) error {
	n := b.o.drill
	b.logf("scenario 7: mass-revocation drill with %d certificates (internal/bench/ari -drill)", n)
	s, err := measure(command(ctx, nil, b.bin["ari"], "-n", "0", "-drill", strconv.Itoa(n)))
	if err != nil {
		return err
	}
	m := regexp.MustCompile(`drill: (\d+) certificates, concurrency (\d+), renewal information re-checked every (\S+): last replacement installed ([0-9.]+) s after the window change \(first replacement order after ([0-9.]+) s\); (\d+) replaced, (\d+) failed, (\d+) duplicate orders; ([0-9.]+) CA requests per certificate`).
		FindStringSubmatch(s.Stdout)
	if m == nil {
		return fmt.Errorf("unexpected output of internal/bench/ari -drill:\n%s", s.Stdout)
	}
	scenario := fmt.Sprintf("7. mass-revocation drill, %s certificates (daemon concurrency %s, ARI re-checked every %s)", thousands(n), m[2], m[3])
	b.add(row{scenario + ": window change to last replacement installed", fmt.Sprintf("%s s (first replacement order after %s s)", m[4], m[5]),
		"no ARI (2.1.0)", "one certificate per run", "", "", ""})
	b.add(row{scenario + ": replaced, failed, duplicate orders", fmt.Sprintf("%s, %s, %s", m[6], m[7], m[8]), "", "", "",
		fmt.Sprintf("%d, 0, 0", n), met(m[6] == strconv.Itoa(n) && m[7] == "0" && m[8] == "0")})
	b.add(row{scenario + ": CA requests per certificate", m[9], "", "", "", "", ""})
	var lines []string
	for l := range strings.SplitSeq(s.Stdout, "\n") {
		if strings.HasPrefix(l, "drill: ") {
			lines = append(lines, "- "+strings.TrimPrefix(l, "drill: "))
		}
	}
	b.details = append(b.details, "The mass-revocation drill (scenario 7), as internal/bench/ari -drill printed it; requests counted by a proxy in front of Pebble from the window change to the last replacement installed:\n\n"+strings.Join(lines, "\n"))
	return nil
}

// goBench is scenario 6: `go test -bench` of the pure packages.
func (b *bench) goBench(ctx context.Context) error {
	b.logf("scenario 6: Go benchmarks")
	cmd := command(ctx, nil, "go", "test", "-run", "^$", "-bench", ".", "-benchmem", "-count", "1",
		"./internal/plan", "./internal/certinfo", "./internal/config", "./internal/agent")
	cmd.Dir = b.root
	s, err := measure(cmd)
	if err != nil {
		return err
	}
	re := regexp.MustCompile(`^Benchmark(\S+?)(-\d+)?\s+\d+\s+([0-9.]+) ns/op(?:\s+[0-9.]+ MB/s)?\s+(\d+) B/op\s+(\d+) allocs/op`)
	pkg := ""
	var lines []string
	sc := bufio.NewScanner(strings.NewReader(s.Stdout))
	for sc.Scan() {
		l := sc.Text()
		if p, ok := strings.CutPrefix(l, "pkg: "); ok {
			pkg = filepath.Base(p)
		}
		m := re.FindStringSubmatch(l)
		if m == nil {
			continue
		}
		ns, _ := strconv.ParseFloat(m[3], 64)
		by, _ := strconv.ParseInt(m[4], 10, 64)
		b.add(row{"6. " + pkg + "." + m[1], fmt.Sprintf("%s, %s, %s allocs per op", nanos(ns), bytesHuman(by), m[5]), "", "", "", "", ""})
		lines = append(lines, l)
	}
	if len(lines) == 0 {
		return fmt.Errorf("no benchmark results:\n%s", tail(s.Stdout+s.Stderr, 2000))
	}
	b.details = append(b.details, "Go benchmarks (scenario 6): `go test -run '^$' -bench . -benchmem` of internal/plan, certinfo, config and agent. "+
		"certinfo.Load reads and parses a fullchain and its key and checks they match (what inspecting one certificate costs); "+
		"config.Parse decodes and validates a config of 1 or 1,000 certificates; the agent benchmarks are one pass over 100 installed certificates, none due.\n\n```\n"+
		strings.Join(lines, "\n")+"\n```")
	return nil
}

func bytesHuman(n int64) string {
	switch {
	case n >= 1<<20:
		return fmt.Sprintf("%.1f MB", float64(n)/(1<<20))
	case n >= 1<<10:
		return fmt.Sprintf("%.1f kB", float64(n)/(1<<10))
	}
	return fmt.Sprintf("%d B", n)
}

func nanos(ns float64) string {
	switch {
	case ns >= 1e6:
		return fmt.Sprintf("%.2f ms", ns/1e6)
	case ns >= 1e3:
		return fmt.Sprintf("%.1f µs", ns/1e3)
	}
	return fmt.Sprintf("%.0f ns", ns)
}

func loadavg() string {
	data, err := os.ReadFile("/proc/loadavg")
	if err != nil {
		return "?"
	}
	f := strings.Fields(string(data))
	if len(f) < 3 {
		return "?"
	}
	return strings.Join(f[:3], " ")
}

func machine() string {
	cpu := "?"
	if data, err := os.ReadFile("/proc/cpuinfo"); err == nil {
		for line := range strings.SplitSeq(string(data), "\n") {
			if v, ok := strings.CutPrefix(line, "model name"); ok {
				cpu = strings.TrimSpace(strings.TrimPrefix(strings.TrimSpace(v), ":"))
				break
			}
		}
	}
	mem := ""
	if kb, err := procMeminfo("MemTotal"); err == nil {
		mem = fmt.Sprintf(", %.0f GB RAM", float64(kb)/(1<<20))
	}
	kernel, _ := os.ReadFile("/proc/sys/kernel/osrelease")
	return fmt.Sprintf("%s, %d CPUs%s, Linux %s", cpu, runtime.NumCPU(), mem, strings.TrimSpace(string(kernel)))
}

func procMeminfo(field string) (int64, error) {
	data, err := os.ReadFile("/proc/meminfo")
	if err != nil {
		return 0, err
	}
	for line := range strings.SplitSeq(string(data), "\n") {
		if rest, ok := strings.CutPrefix(line, field+":"); ok {
			var kb int64
			_, err := fmt.Sscanf(strings.TrimSpace(rest), "%d kB", &kb)
			return kb, err
		}
	}
	return 0, fmt.Errorf("no %s", field)
}

// write prints the table and writes it, with details, to o.out.
func (b *bench) write(v map[string]string, loadStart string) error {
	var t strings.Builder
	t.WriteString("| scenario | renewer | certbot | lego | ratio | target | met |\n|---|---|---|---|---|---|---|\n")
	// Scenarios in number order (1 and 5 are measured together).
	slices.SortStableFunc(b.rows, func(x, y row) int { return strings.Compare(x.scenario[:2], y.scenario[:2]) })
	for _, r := range b.rows {
		fmt.Fprintf(&t, "| %s | %s | %s | %s | %s | %s | %s |\n", r.scenario, r.renewer, r.certbot, r.lego, r.ratio, r.target, r.met)
	}
	fmt.Println()
	fmt.Print(t.String())

	var f strings.Builder
	fmt.Fprintf(&f, "# renewer benchmark results\n\n")
	fmt.Fprintf(&f, "Written by `make bench` (internal/bench/compare) on %s, in %s.\n\n", time.Now().UTC().Format("2006-01-02 15:04 MST"), time.Since(b.start).Round(time.Second))
	fmt.Fprintf(&f, "- machine: %s; load average %s at the start, %s at the end\n", machine(), loadStart, loadavg())
	var names []string
	for k := range v {
		names = append(names, k)
	}
	slices.Sort(names)
	var vs []string
	for _, k := range names {
		vs = append(vs, fmt.Sprintf("%s: `%s`", k, v[k]))
	}
	fmt.Fprintf(&f, "- versions: %s\n", strings.Join(vs, ", "))
	fmt.Fprintf(&f, "- CA: Pebble on loopback, PEBBLE_VA_NOSLEEP=1, stock Retry-After (authorizations 3 s, orders 5 s), PEBBLE_WFE_NONCEREJECT=0 (certbot 2.1.0 crashes on a second badNonce in a row)\n\n")
	f.WriteString(t.String())
	for _, d := range b.details {
		f.WriteString("\n" + d + "\n")
	}
	out := b.o.out
	if !filepath.IsAbs(out) {
		out = filepath.Join(b.root, out)
	}
	if err := os.WriteFile(out, []byte(f.String()), 0o644); err != nil {
		return err
	}
	fmt.Fprintf(os.Stderr, "\nwritten to %s\n", out)
	return nil
}
