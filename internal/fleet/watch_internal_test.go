package fleet

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"log/slog"
	"strings"
	"testing"
	"time"

	"go.etcd.io/etcd/api/v3/v3rpc/rpctypes"
)

// A watch that keeps failing (etcd without quorum refuses a leader-requiring
// watch at once) waits longer each time, up to watchRetryMax, and warns once,
// then again only every watchLogEvery: not a warning a second.
func TestWatchRetryBacksOffAndLogsRarely(t *testing.T) {
	var buf bytes.Buffer
	log := slog.New(slog.NewTextHandler(&buf, &slog.HandlerOptions{Level: slog.LevelInfo}))
	w := &watchRetry{what: "certificates"}
	now := time.Date(2026, 1, 1, 0, 0, 0, 0, time.UTC)
	var waited time.Duration
	var delays []time.Duration
	for waited < 24*time.Hour {
		d := w.failed(log, now, rpctypes.ErrNoLeader)
		delays = append(delays, d)
		now, waited = now.Add(d), waited+d
	}
	want := []time.Duration{time.Second, 2 * time.Second, 4 * time.Second, 8 * time.Second, 16 * time.Second, 30 * time.Second, 30 * time.Second}
	for i, d := range want {
		if delays[i] != d {
			t.Fatalf("delays %v, want them to start %v", delays[:len(want)], want)
		}
	}
	warnings := strings.Count(buf.String(), "level=WARN")
	if limit := int(24*time.Hour/watchLogEvery) + 2; warnings > limit || warnings < 2 {
		t.Errorf("%d warnings in a day without quorum, want at most %d (one, then one every %s)", warnings, limit, watchLogEvery)
	}
	if n := len(delays); n > 24*3600/30+10 {
		t.Errorf("%d attempts in a day, want about one every 30 s", n)
	}
	w.ok(log)
	if !strings.Contains(buf.String(), "fleet watch resumed") || w.failures != 0 {
		t.Errorf("recovery not logged or not reset:\n%s", buf.String())
	}
	if d := w.failed(log, now, errors.New("again")); d != time.Second {
		t.Errorf("after a recovery the first retry waits %s, want 1s", d)
	}
}

// What etcd says is named in the operator's words, including what the
// client turns into a bare deadline.
func TestDiagnose(t *testing.T) {
	dl := fmt.Errorf("fleet: read www: %w", context.DeadlineExceeded)
	for _, c := range []struct {
		err, raw error
		want     string
	}{
		{dl, rpctypes.ErrGRPCNoLeader, "no leader"},
		{rpctypes.ErrNoLeader, nil, "no leader"},
		{dl, rpctypes.ErrGRPCTimeout, "no leader"},
		{dl, nil, "did not answer in time"},
		{rpctypes.ErrPermissionDenied, nil, "may not use this prefix"},
		{fmt.Errorf("x: %w", ErrAuth), nil, "password_file"},
		{dl, errors.New(`transport: authentication handshake failed: tls: failed to verify certificate: x509: certificate signed by unknown authority`), "ca_file"},
		{dl, errors.New(`error reading server preface: remote error: tls: certificate required`), "requires a client certificate"},
		{dl, errors.New(`connection error: desc = "transport: Error while dialing: dial tcp 127.0.0.1:1: connect: connection refused"`), "nothing listens"},
		{dl, rpctypes.ErrGRPCInvalidAuthToken, "refused the auth token"},
		{errors.New("something else"), nil, ""},
	} {
		if got := diagnose(c.err, c.raw); (c.want == "") != (got == "") || !strings.Contains(got, c.want) {
			t.Errorf("diagnose(%v, %v) = %q, want %q", c.err, c.raw, got, c.want)
		}
	}
}
