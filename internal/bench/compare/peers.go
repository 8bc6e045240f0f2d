//go:build linux

package main

import (
	"context"
	"fmt"
	"io/fs"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
)

// buildLego builds the lego CLI at the version renewer's go.mod pins, in a
// throwaway module under dir (the module proxy serves exact versions of
// lego v4, never @latest). Nothing of it lands in the repository.
func buildLego(ctx context.Context, root, dir, out string) (string, error) {
	list := exec.CommandContext(ctx, "go", "list", "-m", "-f", "{{.Version}}", "github.com/go-acme/lego/v4")
	list.Dir = root
	v, err := list.Output()
	if err != nil {
		return "", fmt.Errorf("lego version from go.mod: %w", err)
	}
	version := strings.TrimSpace(string(v))
	if err := os.MkdirAll(dir, 0o755); err != nil {
		return "", err
	}
	env := []string{"GOWORK=off", "GOFLAGS=-mod=mod"}
	steps := [][]string{
		{"go", "mod", "init", "legobench"},
		{"go", "get", "github.com/go-acme/lego/v4/cmd/lego@" + version},
		{"go", "build", "-trimpath", "-o", out, "github.com/go-acme/lego/v4/cmd/lego"},
	}
	for _, s := range steps {
		cmd := command(ctx, env, s[0], s[1:]...)
		cmd.Dir = dir
		if b, err := cmd.CombinedOutput(); err != nil {
			return "", fmt.Errorf("%s: %w\n%s", strings.Join(s, " "), err, b)
		}
	}
	return version, nil
}

// certbotDirs are the three directories certbot is pointed at.
type certbotDirs struct{ Config, Work, Logs string }

func newCertbotDirs(base string) certbotDirs {
	return certbotDirs{Config: filepath.Join(base, "config"), Work: filepath.Join(base, "work"), Logs: filepath.Join(base, "logs")}
}

func (d certbotDirs) args() []string {
	return []string{"--config-dir", d.Config, "--work-dir", d.Work, "--logs-dir", d.Logs}
}

// cloneLineages makes n certbot lineages c00000, c00001 ... in to, each a
// copy of the lineage name in from (live/ symlinks, archive/ files and the
// renewal/*.conf with its paths rewritten), plus from's accounts.
func cloneLineages(from certbotDirs, name string, to certbotDirs, n int) error {
	for _, d := range []string{to.Work, to.Logs, filepath.Join(to.Config, "live"), filepath.Join(to.Config, "archive"), filepath.Join(to.Config, "renewal")} {
		if err := os.MkdirAll(d, 0o700); err != nil {
			return err
		}
	}
	if err := copyTree(filepath.Join(from.Config, "accounts"), filepath.Join(to.Config, "accounts")); err != nil {
		return err
	}
	conf, err := os.ReadFile(filepath.Join(from.Config, "renewal", name+".conf"))
	if err != nil {
		return err
	}
	archive := filepath.Join(from.Config, "archive", name)
	entries, err := os.ReadDir(archive)
	if err != nil {
		return err
	}
	files := map[string][]byte{}
	for _, e := range entries {
		b, err := os.ReadFile(filepath.Join(archive, e.Name()))
		if err != nil {
			return err
		}
		files[e.Name()] = b
	}
	links := map[string]string{}
	live := filepath.Join(from.Config, "live", name)
	for _, f := range []string{"cert.pem", "chain.pem", "fullchain.pem", "privkey.pem"} {
		t, err := os.Readlink(filepath.Join(live, f))
		if err != nil {
			return err
		}
		links[f] = filepath.Base(t)
	}
	r := strings.NewReplacer(from.Config, to.Config, from.Work, to.Work, from.Logs, to.Logs)
	for i := range n {
		lineage := fmt.Sprintf("c%05d", i)
		a := filepath.Join(to.Config, "archive", lineage)
		l := filepath.Join(to.Config, "live", lineage)
		for _, d := range []string{a, l} {
			if err := os.MkdirAll(d, 0o700); err != nil {
				return err
			}
		}
		for f, b := range files {
			mode := os.FileMode(0o644)
			if strings.HasPrefix(f, "privkey") {
				mode = 0o600
			}
			if err := os.WriteFile(filepath.Join(a, f), b, mode); err != nil {
				return err
			}
		}
		for f, t := range links {
			if err := os.Symlink(filepath.Join("..", "..", "archive", lineage, t), filepath.Join(l, f)); err != nil {
				return err
			}
		}
		c := strings.ReplaceAll(r.Replace(string(conf)), name, lineage)
		if err := os.WriteFile(filepath.Join(to.Config, "renewal", lineage+".conf"), []byte(c), 0o644); err != nil {
			return err
		}
	}
	return nil
}

func copyTree(from, to string) error {
	return filepath.WalkDir(from, func(p string, d fs.DirEntry, err error) error {
		if err != nil {
			return err
		}
		rel, _ := filepath.Rel(from, p)
		dst := filepath.Join(to, rel)
		if d.IsDir() {
			return os.MkdirAll(dst, 0o700)
		}
		b, err := os.ReadFile(p)
		if err != nil {
			return err
		}
		return os.WriteFile(dst, b, 0o600)
	})
}
