package hook

import (
	"bytes"
	"context"
	"log/slog"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/renewer/renewer/internal/config"
)

func run(t *testing.T, h config.Hook, env map[string]string) (string, error) {
	t.Helper()
	var logs bytes.Buffer
	err := Run(context.Background(), slog.New(slog.NewTextHandler(&logs, nil)), h, env)
	return logs.String(), err
}

func TestRunEnvAndOutput(t *testing.T) {
	out := filepath.Join(t.TempDir(), "env")
	logs, err := run(t, config.Hook{
		Name:    "dump",
		Command: []string{"/bin/sh", "-c", `echo "hello $RENEWER_NAME"; echo "$RENEWER_NAME $EXTRA" > "$OUT"`},
		Env:     map[string]string{"EXTRA": "from hook env", "OUT": out},
	}, map[string]string{"RENEWER_NAME": "www"})
	if err != nil {
		t.Fatal(err)
	}
	got, _ := os.ReadFile(out)
	if string(got) != "www from hook env\n" {
		t.Errorf("hook saw %q", got)
	}
	if !strings.Contains(logs, `line="hello www"`) {
		t.Errorf("output not logged:\n%s", logs)
	}
}

// Arguments are passed as they are, never split on spaces or run by a shell.
func TestRunArgvNotSplit(t *testing.T) {
	out := filepath.Join(t.TempDir(), "args")
	_, err := run(t, config.Hook{Name: "argv", Command: []string{"/bin/sh", "-c", `printf '%s|' "$@" > "$0"`, out, "a b", "$HOME", "c;d"}}, nil)
	if err != nil {
		t.Fatal(err)
	}
	got, _ := os.ReadFile(out)
	if string(got) != "a b|$HOME|c;d|" {
		t.Errorf("arguments = %q", got)
	}
}

func TestRunFailure(t *testing.T) {
	_, err := run(t, config.Hook{Name: "bad", Command: []string{"/bin/sh", "-c", "echo first; echo broken config >&2; exit 3"}}, nil)
	if err == nil || !strings.Contains(err.Error(), "exit status 3") || !strings.Contains(err.Error(), "broken config") || !strings.Contains(err.Error(), `"bad"`) {
		t.Fatalf("err = %v", err)
	}
	_, err = run(t, config.Hook{Name: "missing", Command: []string{"/no/such/program"}}, nil)
	if err == nil {
		t.Fatal("missing program succeeded")
	}
}

// A timeout kills the whole process group, including a child that would
// otherwise keep the output pipe open.
func TestRunTimeout(t *testing.T) {
	start := time.Now()
	_, err := run(t, config.Hook{Name: "slow", Command: []string{"/bin/sh", "-c", "sleep 30 & sleep 30"}, Timeout: 200 * time.Millisecond}, nil)
	if err == nil || !strings.Contains(err.Error(), "timed out after 200ms") {
		t.Fatalf("err = %v", err)
	}
	if d := time.Since(start); d > 10*time.Second {
		t.Errorf("timeout took %s", d)
	}
}

// Shell metacharacters in a hook's arguments are passed to the program as
// they are: no shell sees them unless the user writes one.
func TestRunMetacharactersLiteral(t *testing.T) {
	dir := t.TempDir()
	marker := filepath.Join(dir, "pwned")
	out := filepath.Join(dir, "args")
	args := []string{
		"; touch " + marker,
		"$(touch " + marker + ")",
		"`touch " + marker + "`",
		"&& touch " + marker,
		"| touch " + marker,
		"> " + marker,
		"$HOME ${PATH} * ?",
		"'quoted' \"double\"\nnewline",
	}
	// printf is a program, not a shell: it prints each argument on a line,
	// and the hook's output is logged line by line.
	cmd := append([]string{"/usr/bin/env", "printf", `%s\n`}, args...)
	logs, err := run(t, config.Hook{Name: "literal", Command: cmd}, nil)
	if err != nil {
		t.Fatal(err)
	}
	for _, a := range args[:7] {
		if !strings.Contains(logs, strconv.Quote(a)) && !strings.Contains(logs, "line="+a) {
			t.Errorf("output does not show %q literally:\n%s", a, logs)
		}
	}
	// Capture what the program saw through a second, file-writing run.
	h := config.Hook{Name: "capture", Command: append([]string{"/bin/sh", "-c", `printf '%s\0' "$@" > "$0"`, out}, args...)}
	if _, err := run(t, h, nil); err != nil {
		t.Fatal(err)
	}
	got, err := os.ReadFile(out)
	if err != nil {
		t.Fatal(err)
	}
	if want := strings.Join(args, "\x00") + "\x00"; string(got) != want {
		t.Errorf("the program saw %q, want %q", got, want)
	}
	if _, err := os.Stat(marker); !os.IsNotExist(err) {
		t.Fatalf("an argument was run by a shell: %s exists", marker)
	}

	// Only an explicit ["/bin/sh", "-c", ...] interprets them.
	if _, err := run(t, config.Hook{Name: "shell", Command: []string{"/bin/sh", "-c", "true; touch " + marker}}, nil); err != nil {
		t.Fatal(err)
	}
	if _, err := os.Stat(marker); err != nil {
		t.Fatalf("the explicit shell did not run: %v", err)
	}
}

// Issue 14 #9: a hook that exits 0 but leaves a background child holding
// its output (`nginx -s reload; some-daemon &`) succeeded: its exit status
// says so. It is reported as a success with a warning in the user's terms,
// not as a failure with Go's "WaitDelay expired" text.
func TestRunBackgroundChildHoldingOutput(t *testing.T) {
	marker := filepath.Join(t.TempDir(), "child-done")
	// The child outlives the hook by a few seconds, holding stdout and
	// stderr; it writes a file when it ends, so the test can wait for it.
	logs, err := run(t, config.Hook{Name: "bg", Command: []string{"/bin/sh", "-c",
		`echo reloaded; (sleep 4; touch "$0"; echo late) & exit 0`, marker}}, nil)
	t.Cleanup(func() { // leave no process behind
		for deadline := time.Now().Add(10 * time.Second); time.Now().Before(deadline); time.Sleep(100 * time.Millisecond) {
			if _, err := os.Stat(marker); err == nil {
				return
			}
		}
	})
	if err != nil {
		t.Fatalf("hook exited 0 but Run returned %v", err)
	}
	if strings.Contains(logs, "WaitDelay") {
		t.Errorf("Go's internal text in the log:\n%s", logs)
	}
	for _, want := range []string{"hook exited 0 but a background process it started still holds its output", ">/dev/null 2>&1 &", `line=reloaded`, "hook succeeded"} {
		if !strings.Contains(logs, want) {
			t.Errorf("log lacks %q:\n%s", want, logs)
		}
	}
}
