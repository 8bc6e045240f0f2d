// Package preflight checks, before an order, what most often makes one
// fail: a disk renewer cannot write, a name that does not resolve, a
// webroot the web server does not serve, a CAA record that forbids the CA,
// a DNS zone or provider credentials not found, a hook that does not exist.
//
// Each check is a plain function; Certificate runs those that apply to one
// certificate. Checks that can be wrong from where renewer runs
// (split-horizon DNS, a load balancer in front) are warnings; only what
// certainly wastes an order (storage that cannot be written) blocks.
package preflight

import (
	"context"
	"fmt"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"time"

	"github.com/renewer/renewer/internal/config"
)

// Level is how serious a finding is.
type Level int

// Levels of findings.
const (
	Warning  Level = iota + 1 // the order may still succeed; check it
	Blocking                  // an order would be wasted: none is placed
)

func (l Level) String() string {
	if l == Blocking {
		return "BLOCKING"
	}
	return "warning"
}

// Finding is one problem found, and what to do about it.
type Finding struct {
	Cert    string // certificate name; "" for the whole configuration
	Check   string // storage, install, resolve, http-01, caa, dns-01, hook
	Level   Level
	Problem string
	Fix     string
}

func (f Finding) String() string {
	who := f.Cert
	if who == "" {
		who = "(config)"
	}
	return fmt.Sprintf("%s: %s: %s: %s; fix: %s", f.Level, who, f.Check, f.Problem, f.Fix)
}

// Worst is the highest level among findings (0 when there are none).
func Worst(fs []Finding) Level {
	var w Level
	for _, f := range fs {
		w = max(w, f.Level)
	}
	return w
}

// CA is a CA renewer may order from, with the CAA identities its directory
// lists (meta.caaIdentities; empty when it lists none).
type CA struct {
	Directory  string
	Identities []string
	Err        error // reading the directory failed
	Fallback   bool
}

// Options are the settings of the network checks.
type Options struct {
	// Resolvers are asked (host:port); empty: the certificate's dns
	// challenge resolvers, else the system's (/etc/resolv.conf).
	Resolvers []string
	// HTTPPort is where the CA fetches HTTP-01 challenge files: 80, unless a
	// test CA is told otherwise.
	HTTPPort int
	Timeout  time.Duration // of each network request; 0 means 5 s
	CAs      []CA          // the primary CA and the fallbacks, for CAA
	// Credentials checks the dns challenge provider's settings (nil: not checked).
	Credentials func(config.Certificate) error
}

func (o Options) timeout() time.Duration {
	if o.Timeout > 0 {
		return o.Timeout
	}
	return 5 * time.Second
}

func (o Options) resolvers(c config.Certificate) ([]string, error) {
	if len(o.Resolvers) > 0 {
		return o.Resolvers, nil
	}
	if d := c.Challenge.DNS; d != nil && len(d.Resolvers) > 0 {
		return d.Resolvers, nil
	}
	if p := c.Challenge.Persist; p != nil && len(p.Resolvers) > 0 {
		return p.Resolvers, nil
	}
	return SystemResolvers()
}

// Storage checks that renewer can write where it keeps its files. A
// failure blocks ordering: the certificate could not be kept.
func Storage(path string) []Finding {
	if err := Writable(path); err != nil {
		return []Finding{{Check: "storage", Level: Blocking,
			Problem: fmt.Sprintf("storage %s is not writable: %v", path, err),
			Fix:     "make it writable by the user renewer runs as (and check the disk is not read-only or full), or set storage.path"}}
	}
	return nil
}

// Certificate runs every check that applies to c: Local, then Network.
func Certificate(ctx context.Context, c config.Certificate, o Options) []Finding {
	return append(Local(c, o), Network(ctx, c, o)...)
}

// Local runs the checks of c that need no network: install directories
// writable (blocking), hook programs present, DNS provider settings
// present. They are quick enough to run before every order.
func Local(c config.Certificate, o Options) []Finding {
	var out []Finding
	add := func(check string, l Level, problem, fix string) {
		out = append(out, Finding{Cert: c.Name, Check: check, Level: l, Problem: problem, Fix: fix})
	}
	if in := c.Install; in != nil {
		for _, dir := range installDirs(in) {
			if err := Writable(dir); err != nil {
				add("install", Blocking, fmt.Sprintf("install directory %s is not writable: %v", dir, err),
					"make it writable by renewer's user, or change the install block")
			}
		}
	}
	for _, h := range c.Hooks {
		if len(h.Command) == 0 {
			continue
		}
		if err := Executable(h.Command[0]); err != nil {
			add("hook", Warning, fmt.Sprintf("hook %q: %v", h.Name, err),
				"install the program or correct the command's path (argv[0] is run without a shell)")
		}
	}
	if c.Challenge.Type == config.ChallengeDNS && o.Credentials != nil {
		if err := o.Credentials(c); err != nil {
			add("dns-01", Warning, err.Error(), "set the provider's variables in the challenge block's env")
		}
	}
	return out
}

// Network runs the checks of c that ask DNS servers and web servers: names
// resolve, the HTTP-01 probe, the DNS-01 zone, CAA. All are warnings.
func Network(ctx context.Context, c config.Certificate, o Options) []Finding {
	var out []Finding
	add := func(check string, l Level, problem, fix string) {
		out = append(out, Finding{Cert: c.Name, Check: check, Level: l, Problem: problem, Fix: fix})
	}
	resolvers, rerr := o.resolvers(c)
	if rerr != nil {
		add("resolve", Warning, fmt.Sprintf("no resolvers: %v", rerr), "fix /etc/resolv.conf or set resolvers")
		return out
	}
	timeout := o.timeout()

	if c.Challenge.Type == config.ChallengeDNS {
		for _, name := range c.Domains {
			fqdn := "_acme-challenge." + strings.TrimPrefix(name, "*.")
			zctx, cancel := context.WithTimeout(ctx, timeout)
			zone, err := FindZone(zctx, resolvers, fqdn)
			cancel()
			if err != nil {
				add("dns-01", Warning, fmt.Sprintf("no DNS zone found for %s: %v", fqdn, err),
					"check that the name is in a zone your DNS provider serves, and that the resolvers answer for it")
			} else if zone == "." {
				add("dns-01", Warning, fmt.Sprintf("the zone of %s is the root", fqdn), "check the name")
			}
		}
	}

	// Names must resolve for HTTP-01 and TLS-ALPN-01 (the CA connects).
	addrs := map[string][]net.IP{}
	if c.Challenge.Type == config.ChallengeHTTP || c.Challenge.Type == config.ChallengeTLSALPN {
		for _, name := range c.Domains {
			if ip := net.ParseIP(name); ip != nil {
				addrs[name] = []net.IP{ip}
				continue
			}
			rctx, cancel := context.WithTimeout(ctx, timeout)
			ips, err := LookupIP(rctx, resolvers, name)
			cancel()
			switch {
			case err != nil:
				add("resolve", Warning, fmt.Sprintf("%s: %v", name, err), "check the name's A/AAAA records and the resolvers")
			case len(ips) == 0:
				add("resolve", Warning, fmt.Sprintf("%s has no A or AAAA record", name),
					"add an A (or AAAA) record pointing at this server: the CA connects to it to validate")
			default:
				addrs[name] = ips
			}
		}
	}
	if c.Challenge.Type == config.ChallengeHTTP && len(addrs) > 0 {
		port := o.HTTPPort
		if port == 0 {
			port = 80
		}
		pctx, cancel := context.WithTimeout(ctx, 2*timeout)
		for _, f := range ProbeHTTP(pctx, c.Challenge, addrs, port) {
			f.Cert = c.Name
			out = append(out, f)
		}
		cancel()
	}

	// CAA, for every CA that may be asked.
	if len(o.CAs) > 0 {
		for _, name := range c.Domains {
			if net.ParseIP(name) != nil {
				continue // CAA applies to DNS names only
			}
			cctx, cancel := context.WithTimeout(ctx, timeout)
			set, err := LookupCAA(cctx, resolvers, name)
			cancel()
			if err != nil {
				add("caa", Warning, fmt.Sprintf("%s: CAA lookup: %v", name, err), "check the resolvers; a CA refuses to issue when CAA cannot be read")
				continue
			}
			for _, ca := range o.CAs {
				role := "the CA"
				if ca.Fallback {
					role = "fallback CA"
				}
				switch ok, why := set.Permits(name, ca.Identities); {
				case ok:
				case len(ca.Identities) == 0:
					add("caa", Warning, fmt.Sprintf("%s: CAA records at %s (%s); %s %s lists no caaIdentities, so whether they permit it is unknown", name, set.At, set.Summary(), role, ca.Directory),
						"make sure a CAA issue record names this CA")
				default:
					add("caa", Warning, fmt.Sprintf("%s: CAA at %s forbids %s %s (%s)", name, set.At, role, ca.Directory, why),
						fmt.Sprintf("add a CAA record at %s: 0 issue %q", set.At, ca.Identities[0]))
				}
			}
		}
	}
	return out
}

func installDirs(in *config.Install) []string {
	var dirs []string
	if in.Dir != "" {
		dirs = append(dirs, in.Dir)
	}
	if in.HAProxyBundle != "" {
		dirs = append(dirs, filepath.Dir(in.HAProxyBundle))
	}
	return dirs
}

// Writable reports whether a file can be created in dir, or, when dir does
// not exist yet, in its nearest existing parent (renewer creates the rest).
// It creates and removes a small file.
func Writable(dir string) error {
	d := dir
	for {
		st, err := os.Stat(d)
		if err == nil {
			if !st.IsDir() {
				return fmt.Errorf("%s is not a directory", d)
			}
			break
		}
		if !os.IsNotExist(err) {
			return err
		}
		parent := filepath.Dir(d)
		if parent == d {
			return err
		}
		d = parent
	}
	f, err := os.CreateTemp(d, ".renewer-check-*")
	if err != nil {
		return err
	}
	name := f.Name()
	_, werr := f.Write([]byte("renewer check\n"))
	serr := f.Sync()
	cerr := f.Close()
	rerr := os.Remove(name)
	for _, e := range []error{werr, serr, cerr, rerr} {
		if e != nil {
			return e
		}
	}
	return nil
}

// Executable reports whether argv0 names a program that can be run: a path
// to an executable file, or a name found in $PATH.
func Executable(argv0 string) error {
	if !strings.Contains(argv0, "/") {
		if _, err := exec.LookPath(argv0); err != nil {
			return fmt.Errorf("%s is not in $PATH (%s)", argv0, os.Getenv("PATH"))
		}
		return nil
	}
	st, err := os.Stat(argv0)
	if err != nil {
		return fmt.Errorf("%s does not exist", argv0)
	}
	if st.IsDir() || st.Mode().Perm()&0o111 == 0 {
		return fmt.Errorf("%s is not executable (mode %s)", argv0, st.Mode())
	}
	return nil
}
