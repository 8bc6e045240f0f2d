package hook

import (
	"bytes"
	"context"
	"log/slog"
	"os"
	"path/filepath"
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
