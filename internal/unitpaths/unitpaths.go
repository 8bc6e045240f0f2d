// Package unitpaths derives, from a parsed config, the directories renewer
// writes to, so that its sandboxed systemd units (ProtectSystem=strict) get
// exactly those as ReadWritePaths= without users editing units: a systemd
// generator writes them as drop-ins (Generate), ExecStartPre= creates the
// missing ones before the sandbox is set up (Prepare), and ExecReload= adds
// the ones a new config needs to the running daemon's mount namespace
// (NotWritableIn and systemctl bind).
package unitpaths

import (
	"errors"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strings"

	"golang.org/x/sys/unix"

	"github.com/renewer/renewer/internal/config"
)

// Units are the service units the generator writes drop-ins for.
var Units = []string{"renewer.service", "renewer-renew.service"}

// DropInName is the drop-in file the generator writes in UNIT.d/.
const DropInName = "50-renewer-paths.conf"

// Path is one directory renewer writes to.
type Path struct {
	Dir  string      // absolute, clean
	Mode os.FileMode // for Prepare when it is missing
	Why  string      // what the config says about it, e.g. `certificate "www" install.dir`
}

// Writable lists the directories cfg makes renewer write: the storage, each
// install dir, the directory of each HAProxy bundle and the challenge
// directory under each webroot (<webroot>/.well-known/acme-challenge). A
// directory that is a symbolic link today is listed with its target too
// (install writes through links, e.g. certbot's live/ into archive/).
// Sorted, no duplicates, nested ones kept (each may be missing).
func Writable(cfg *config.Config) []Path {
	var ps []Path
	add := func(dir string, mode os.FileMode, why string) {
		if dir == "" {
			return
		}
		dir = filepath.Clean(dir)
		ps = append(ps, Path{Dir: dir, Mode: mode, Why: why})
		if t, err := filepath.EvalSymlinks(dir); err == nil && t != dir {
			ps = append(ps, Path{Dir: t, Mode: mode, Why: why + " (link target)"})
		}
	}
	add(cfg.Storage.Path, 0o700, "storage.path")
	for _, c := range cfg.Certificates {
		if c.Challenge.Webroot != "" {
			add(filepath.Join(c.Challenge.Webroot, ".well-known", "acme-challenge"), 0o755,
				fmt.Sprintf("certificate %q challenge webroot", c.Name))
		}
		if in := c.Install; in != nil {
			add(in.Dir, 0o755, fmt.Sprintf("certificate %q install.dir", c.Name))
			if in.HAProxyBundle != "" {
				add(filepath.Dir(in.HAProxyBundle), 0o755, fmt.Sprintf("certificate %q install.haproxy_bundle", c.Name))
			}
		}
	}
	slices.SortStableFunc(ps, func(a, b Path) int { return strings.Compare(a.Dir, b.Dir) })
	return slices.CompactFunc(ps, func(a, b Path) bool { return a.Dir == b.Dir })
}

// DropIn is the [Service] drop-in granting write access to ps. Every path has
// systemd's "-" prefix, so a missing one never fails the unit with
// 226/NAMESPACE.
func DropIn(ps []Path) string {
	var b strings.Builder
	b.WriteString("# Written by renewer's systemd generator from the config: the directories\n# renewer writes to (`renewer systemd paths` lists them with the reason).\n[Service]\n")
	for _, p := range ps {
		fmt.Fprintf(&b, "ReadWritePaths=%s\n", quote("-"+p.Dir))
	}
	return b.String()
}

// quote writes one path as a systemd unit-file word: specifiers (%) doubled,
// and double quotes with C escapes when it holds spaces, quotes or backslashes.
func quote(s string) string {
	s = strings.ReplaceAll(s, "%", "%%")
	if !strings.ContainsAny(s, " \t\"'\\") {
		return s
	}
	r := strings.NewReplacer(`\`, `\\`, `"`, `\"`, "\t", `\t`)
	return `"` + r.Replace(s) + `"`
}

// Generate writes the drop-in for each of Units under dir (a generator's
// output directory).
func Generate(dir string, ps []Path) error {
	content := []byte(DropIn(ps))
	for _, u := range Units {
		d := filepath.Join(dir, u+".d")
		if err := os.MkdirAll(d, 0o755); err != nil {
			return fmt.Errorf("generator: %w", err)
		}
		if err := os.WriteFile(filepath.Join(d, DropInName), content, 0o644); err != nil {
			return fmt.Errorf("generator: %w", err)
		}
	}
	return nil
}

// Prepare creates each missing directory of ps (parents 0755, the directory
// itself with its Mode), so that the units' bind mounts find them. It returns
// the directories it created.
func Prepare(ps []Path) ([]string, error) {
	var made []string
	var errs []error
	for _, p := range ps {
		if _, err := os.Stat(p.Dir); err == nil {
			continue
		} else if !errors.Is(err, os.ErrNotExist) {
			errs = append(errs, fmt.Errorf("%s (%s): %w", p.Dir, p.Why, err))
			continue
		}
		if err := mkdirAll(filepath.Dir(p.Dir), 0o755); err != nil {
			errs = append(errs, fmt.Errorf("%s (%s): %w", p.Dir, p.Why, err))
			continue
		}
		if err := mkdir(p.Dir, p.Mode); err != nil {
			errs = append(errs, fmt.Errorf("%s (%s): %w", p.Dir, p.Why, err))
			continue
		}
		made = append(made, p.Dir)
	}
	return made, errors.Join(errs...)
}

// mkdirAll is os.MkdirAll with mode set exactly on each directory it
// creates, whatever the umask (the units' is 0077: a web server must still
// traverse <webroot>/.well-known).
func mkdirAll(dir string, mode os.FileMode) error {
	if _, err := os.Stat(dir); err == nil {
		return nil
	}
	if parent := filepath.Dir(dir); parent != dir {
		if err := mkdirAll(parent, mode); err != nil {
			return err
		}
	}
	return mkdir(dir, mode)
}

func mkdir(dir string, mode os.FileMode) error {
	if err := os.Mkdir(dir, mode); err != nil {
		if errors.Is(err, os.ErrExist) {
			return nil
		}
		return err
	}
	return os.Chmod(dir, mode)
}

// NotWritableIn returns the paths of ps that process pid cannot write
// because they are read-only in its mount namespace (seen through
// /proc/PID/root), e.g. the new directories of a reloaded config.
func NotWritableIn(pid int, ps []Path) ([]Path, error) {
	root := fmt.Sprintf("/proc/%d/root", pid)
	if _, err := os.Stat(root); err != nil {
		return nil, fmt.Errorf("process %d: %w", pid, err)
	}
	var out []Path
	for _, p := range ps {
		err := unix.Faccessat(unix.AT_FDCWD, root+p.Dir, unix.W_OK, unix.AT_EACCESS)
		if errors.Is(err, unix.EROFS) {
			out = append(out, p)
		}
	}
	return out, nil
}

// Bind makes dir writable in the running unit's mount namespace by
// bind-mounting it there from the host (`systemctl bind --mkdir`).
func Bind(systemctl, unit, dir string) error {
	out, err := exec.Command(systemctl, "bind", "--mkdir", unit, dir).CombinedOutput()
	if err != nil {
		return fmt.Errorf("systemctl bind %s %s: %w: %s", unit, dir, err, strings.TrimSpace(string(out)))
	}
	return nil
}

// MissingFrom returns the paths of ps that granted (a unit's ReadWritePaths
// property as `systemctl show` prints it: space-separated, "-" prefixed
// when optional) does not list.
func MissingFrom(granted string, ps []Path) []Path {
	have := map[string]bool{}
	for _, f := range strings.Fields(granted) {
		have[filepath.Clean(strings.TrimPrefix(strings.TrimPrefix(f, "-"), "+"))] = true
	}
	var out []Path
	for _, p := range ps {
		if !have[p.Dir] {
			out = append(out, p)
		}
	}
	return out
}

// Granted is a unit's ReadWritePaths property (`systemctl show`).
func Granted(systemctl, unit string) (string, error) {
	out, err := exec.Command(systemctl, "show", "--property=ReadWritePaths", "--value", unit).Output()
	if err != nil {
		return "", fmt.Errorf("systemctl show %s: %w", unit, err)
	}
	return string(out), nil
}

// DaemonReload runs `systemctl daemon-reload`, which runs the generator
// again: the unit's ReadWritePaths= then follow the current config. From
// ExecStartPre= it applies to the ExecStart= that follows.
func DaemonReload(systemctl string) error {
	out, err := exec.Command(systemctl, "daemon-reload").CombinedOutput()
	if err != nil {
		return fmt.Errorf("systemctl daemon-reload: %w: %s", err, strings.TrimSpace(string(out)))
	}
	return nil
}
