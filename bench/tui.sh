#!/usr/bin/env bash
# The terminal UI's cost (issue 4): `meshsim top` on 50 proxies x 20 endpoints of synthetic admin
# data (bench/synthetic_admin.py), 1 s scrapes, drawn in a real terminal (tmux), for DURATION
# seconds, switching to the next view every 5 s. Prints CPU % of one core and peak RSS.
# Goal: < 5 % of one core, < 50 MiB.
#
#   bench/tui.sh [DURATION]
set -euo pipefail
cd "$(dirname "$0")/.."
DURATION=${1:-30}
PROXIES=50 ENDPOINTS=20 BASE=19100

command -v tmux >/dev/null || { apt-get update -qq && apt-get install -y -qq tmux; }
cargo build --release --quiet
BIN=$PWD/target/release/meshsim

python3 bench/synthetic_admin.py $PROXIES $ENDPOINTS $BASE > /tmp/meshsim-synthetic.log 2>&1 &
SYNTH=$!
SESSION=meshsim-bench-tui-$$
trap 'tmux kill-session -t $SESSION 2>/dev/null || true; kill $SYNTH 2>/dev/null || true' EXIT
for _ in $(seq 1 50); do grep -q ready /tmp/meshsim-synthetic.log && break; sleep 0.1; done

ADMINS=$(for p in $(seq 0 $((PROXIES - 1))); do printf '127.0.0.1:%d ' $((BASE + p)); done)
tmux new-session -d -s "$SESSION" -x 160 -y 50 "$BIN top --interval 1 $ADMINS"
sleep 3   # first scrapes, first frames
PID=$(pgrep -f "^$BIN top --interval 1" | head -1)   # anchored: not the tmux process that started it
ticks() { awk '{print $14 + $15}' "/proc/$PID/stat"; }
HZ=$(getconf CLK_TCK)
t0=$(ticks); s0=$(date +%s.%N)
peak=0
# Every view gets its turn: overview, clusters (+ histogram), routes, tap, logs, events.
for i in $(seq 1 "$DURATION"); do
  rss=$(awk '/VmRSS/ {print $2}' "/proc/$PID/status")
  [ "$rss" -gt "$peak" ] && peak=$rss
  if [ $((i % 5)) -eq 0 ]; then tmux send-keys -t "$SESSION" $(( (i / 5) % 6 + 1 )); fi
  sleep 1
done
tmux send-keys -t "$SESSION" 1; sleep 1.5
t1=$(ticks); s1=$(date +%s.%N)
rows=$(tmux capture-pane -p -t "$SESSION" | grep -c 'backend' || true)
awk -v t="$((t1 - t0))" -v hz="$HZ" -v a="$s0" -v b="$s1" -v rss="$peak" -v rows="$rows" 'BEGIN {
  printf "meshsim top, %d proxies x %d endpoints, 1 s scrapes: CPU %.2f %% of one core, peak RSS %.1f MiB (%d rows on screen)\n",
    50, 20, 100 * t / hz / (b - a), rss / 1024, rows }'
