//go:build linux

package main

import (
	"bytes"
	"context"
	"fmt"
	"io"
	"os"
	"os/exec"
	"sort"
	"strings"
	"sync"
	"syscall"
	"time"
)

// sample is one measured child process.
type sample struct {
	Wall      time.Duration
	MaxRSS    int64 // bytes, from wait4's rusage
	User, Sys time.Duration
	Stdout    string
	Stderr    string
}

// measure runs cmd to completion and returns its wall time and the kernel's
// accounting of it (peak resident set, CPU time). Output is captured.
func measure(cmd *exec.Cmd) (sample, error) {
	var out, errb bytes.Buffer
	if cmd.Stdout == nil {
		cmd.Stdout = &out
	}
	if cmd.Stderr == nil {
		cmd.Stderr = &errb
	}
	start := time.Now()
	err := cmd.Run()
	s := sample{Wall: time.Since(start), Stdout: out.String(), Stderr: errb.String()}
	if ps := cmd.ProcessState; ps != nil {
		if ru, ok := ps.SysUsage().(*syscall.Rusage); ok {
			s.MaxRSS = ru.Maxrss * 1024 // kilobytes on Linux
			s.User = time.Duration(ru.Utime.Nano())
			s.Sys = time.Duration(ru.Stime.Nano())
		}
	}
	if err != nil {
		return s, fmt.Errorf("%s: %w\n%s", strings.Join(cmd.Args, " "), err, tail(s.Stdout+s.Stderr, 2000))
	}
	return s, nil
}

func tail(s string, n int) string {
	if len(s) > n {
		return "..." + s[len(s)-n:]
	}
	return s
}

// command is exec.CommandContext with extra environment.
func command(ctx context.Context, env []string, name string, args ...string) *exec.Cmd {
	cmd := exec.CommandContext(ctx, name, args...)
	cmd.Env = append(os.Environ(), env...)
	return cmd
}

// counter receives the CA's log and counts the ACME requests in it: Pebble
// logs "METHOD /path -> calling handler()" once per request it serves.
type counter struct {
	mu     sync.Mutex
	out    io.Writer
	buf    []byte
	counts map[string]int
}

func newCounter(out io.Writer) *counter { return &counter{out: out, counts: map[string]int{}} }

func (c *counter) Write(p []byte) (int, error) {
	_, _ = c.out.Write(p)
	c.mu.Lock()
	defer c.mu.Unlock()
	c.buf = append(c.buf, p...)
	for {
		i := bytes.IndexByte(c.buf, '\n')
		if i < 0 {
			break
		}
		line := string(c.buf[:i])
		c.buf = c.buf[i+1:]
		if j := strings.Index(line, " -> calling handler()"); j >= 0 {
			f := strings.Fields(line[:j])
			if len(f) >= 2 {
				c.counts[f[len(f)-2]+" "+f[len(f)-1]]++
			}
		}
	}
	c.buf = append([]byte(nil), c.buf...) // do not keep the whole log alive
	return len(p), nil
}

// take returns the requests counted since the last take and starts afresh.
// It waits a moment first: the CA's log reaches us through a pipe.
func (c *counter) take() requests {
	time.Sleep(300 * time.Millisecond)
	c.mu.Lock()
	defer c.mu.Unlock()
	r := requests(c.counts)
	c.counts = map[string]int{}
	return r
}

// requests counts ACME requests by "METHOD /endpoint".
type requests map[string]int

func (r requests) total() int {
	n := 0
	for _, v := range r {
		n += v
	}
	return n
}

func (r requests) keys() []string {
	var ks []string
	for k := range r {
		ks = append(ks, k)
	}
	sort.Strings(ks)
	return ks
}

// procStatus reads fields (in kB) such as VmRSS and VmHWM of a process.
func procStatus(pid int, field string) (int64, error) {
	data, err := os.ReadFile(fmt.Sprintf("/proc/%d/status", pid))
	if err != nil {
		return 0, err
	}
	for line := range strings.SplitSeq(string(data), "\n") {
		if rest, ok := strings.CutPrefix(line, field+":"); ok {
			var kb int64
			if _, err := fmt.Sscanf(strings.TrimSpace(rest), "%d kB", &kb); err != nil {
				return 0, err
			}
			return kb * 1024, nil
		}
	}
	return 0, fmt.Errorf("no %s in /proc/%d/status", field, pid)
}

// cpuTicks is a process's user plus system time in clock ticks.
func cpuTicks(pid int) (int64, error) {
	data, err := os.ReadFile(fmt.Sprintf("/proc/%d/stat", pid))
	if err != nil {
		return 0, err
	}
	// The command name (field 2) may hold spaces; fields after its ')' are plain.
	s := string(data)
	f := strings.Fields(s[strings.LastIndexByte(s, ')')+1:])
	if len(f) < 13 {
		return 0, fmt.Errorf("short /proc/%d/stat", pid)
	}
	var ut, st int64
	fmt.Sscan(f[11], &ut) // field 14: utime
	fmt.Sscan(f[12], &st) // field 15: stime
	return ut + st, nil
}

func median(ds []time.Duration) time.Duration {
	s := append([]time.Duration(nil), ds...)
	sort.Slice(s, func(i, j int) bool { return s[i] < s[j] })
	return s[len(s)/2]
}

func medianInt(xs []int64) int64 {
	s := append([]int64(nil), xs...)
	sort.Slice(s, func(i, j int) bool { return s[i] < s[j] })
	return s[len(s)/2]
}

func mb(b int64) string { return fmt.Sprintf("%.1f MB", float64(b)/(1<<20)) }

func secs(d time.Duration) string {
	switch {
	case d < time.Second:
		return fmt.Sprintf("%.0f ms", float64(d)/float64(time.Millisecond))
	case d < 10*time.Second:
		return fmt.Sprintf("%.2f s", d.Seconds())
	default:
		return fmt.Sprintf("%.1f s", d.Seconds())
	}
}

func times(x float64) string { return fmt.Sprintf("%.1f×", x) }
