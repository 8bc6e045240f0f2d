// Package hook runs the commands a certificate declares after it goes live.
package hook

import (
	"bufio"
	"bytes"
	"context"
	"errors"
	"fmt"
	"log/slog"
	"os/exec"
	"sort"
	"syscall"
	"time"

	"github.com/renewer/renewer/internal/config"
	"github.com/renewer/renewer/internal/procenv"
)

// BackgroundOutputWarning is logged when a hook exits 0 but a process it
// started in the background still holds its output (a daemon started
// without redirecting it); the hook counts as succeeded.
const BackgroundOutputWarning = "hook exited 0 but a background process it started still holds its output; " +
	"its output after that is not captured (and a write to it may kill it with SIGPIPE) — " +
	"redirect the child's output (e.g. `cmd >/dev/null 2>&1 &`)"

// DefaultTimeout bounds a hook that sets no timeout of its own.
const DefaultTimeout = 60 * time.Second

// Run executes h as an argv list (no shell unless the user wrote one) with
// the process environment, then env (RENEWER_* facts), then h.Env. The
// command and everything it starts are killed when h.Timeout passes or ctx
// ends. Output is logged line by line; the error says how the command ended
// and carries the last lines of its output.
func Run(ctx context.Context, log *slog.Logger, h config.Hook, env map[string]string) error {
	if len(h.Command) == 0 || h.Command[0] == "" {
		return fmt.Errorf("hook %q: empty command", h.Name)
	}
	timeout := h.Timeout
	if timeout <= 0 {
		timeout = DefaultTimeout
	}
	ctx, cancel := context.WithTimeout(ctx, timeout)
	defer cancel()

	cmd := exec.CommandContext(ctx, h.Command[0], h.Command[1:]...)
	// procenv: never while a certificate's DNS credentials are set.
	cmd.Env = append(procenv.Environ(), envList(env)...)
	cmd.Env = append(cmd.Env, envList(h.Env)...)
	var out bytes.Buffer
	cmd.Stdout, cmd.Stderr = &out, &out
	// Own process group, so a timeout kills the shell and its children alike.
	cmd.SysProcAttr = &syscall.SysProcAttr{Setpgid: true}
	cmd.Cancel = func() error { return syscall.Kill(-cmd.Process.Pid, syscall.SIGKILL) }
	cmd.WaitDelay = 2 * time.Second

	start := time.Now()
	err := cmd.Run()
	sc := bufio.NewScanner(bytes.NewReader(out.Bytes()))
	for sc.Scan() {
		log.Info("hook output", "hook", h.Name, "line", sc.Text())
	}
	took := time.Since(start).Round(time.Millisecond)
	if errors.Is(err, exec.ErrWaitDelay) {
		// The command exited 0, but something it started in the background
		// still held its stdout or stderr WaitDelay later: the hook did
		// its job (its exit status says so); only its output is cut short.
		log.Warn(BackgroundOutputWarning, "hook", h.Name)
		err = nil
	}
	switch {
	case err == nil:
		log.Info("hook succeeded", "hook", h.Name, "took", took)
		return nil
	case errors.Is(ctx.Err(), context.DeadlineExceeded):
		err = fmt.Errorf("hook %q timed out after %s%s", h.Name, timeout, tail(out.Bytes()))
	default:
		err = fmt.Errorf("hook %q: %w%s", h.Name, err, tail(out.Bytes()))
	}
	log.Error("hook failed", "hook", h.Name, "took", took, "err", err)
	return err
}

func envList(m map[string]string) []string {
	keys := make([]string, 0, len(m))
	for k := range m {
		keys = append(keys, k)
	}
	sort.Strings(keys)
	list := make([]string, 0, len(m))
	for _, k := range keys {
		list = append(list, k+"="+m[k])
	}
	return list
}

// tail returns the last few lines of output for an error message.
func tail(out []byte) string {
	out = bytes.TrimSpace(out)
	if len(out) == 0 {
		return ""
	}
	lines := bytes.Split(out, []byte("\n"))
	if len(lines) > 3 {
		lines = lines[len(lines)-3:]
	}
	return ": " + string(bytes.Join(lines, []byte(" | ")))
}
