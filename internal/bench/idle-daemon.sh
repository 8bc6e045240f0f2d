#!/usr/bin/env bash
# Benchmark (not a test): the idle daemon's RSS and CPU over a measuring
# window with N certificates configured, all installed and none due.
# Targets (issue 4): RSS <= 30 MB, CPU <= 0.1%.
# Usage: internal/bench/idle-daemon.sh [N=1000] [SECONDS=60]
set -euo pipefail
cd "$(dirname "$0")/../.."
N=${1:-1000}
SECS=${2:-60}
work=$(mktemp -d)
trap 'kill "$pid" 2>/dev/null || true; rm -rf "$work"' EXIT
go build -o "$work/renewer" ./cmd/renewer
go run ./internal/bench/gencerts -n "$N" -dir "$work"
"$work/renewer" run --config "$work/renewer.hcl" 2>"$work/log" &
pid=$!
# Wait for the first pass to end (the daemon logs its next wake-up).
for _ in $(seq 600); do grep -q "next wake-up" "$work/log" && break; sleep 0.1; done
grep -q "next wake-up" "$work/log" || { echo "daemon did not finish its first pass"; cat "$work/log"; exit 1; }
hz=$(getconf CLK_TCK)
ticks() { awk '{print $14 + $15}' "/proc/$pid/stat"; }
t0=$(ticks)
sleep "$SECS"
t1=$(ticks)
rss_kb=$(awk '/^VmRSS/ {print $2}' "/proc/$pid/status")
hwm_kb=$(awk '/^VmHWM/ {print $2}' "/proc/$pid/status")
cpu=$(awk -v a="$t0" -v b="$t1" -v hz="$hz" -v s="$SECS" 'BEGIN {printf "%.3f", 100 * (b - a) / hz / s}')
printf '%-40s %s\n' "idle daemon, $N certificates, ${SECS}s" ""
printf '  %-20s %8.1f MB (target <= 30)\n' "RSS now" "$(awk -v k="$rss_kb" 'BEGIN {print k / 1024}')"
printf '  %-20s %8.1f MB (includes the first pass)\n' "RSS peak" "$(awk -v k="$hwm_kb" 'BEGIN {print k / 1024}')"
printf '  %-20s %8s %%  (target <= 0.1)\n' "CPU while idle" "$cpu"
