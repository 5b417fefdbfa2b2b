# Sourced by bench/proxy.sh, bench/load.sh and pgo/train.sh (from the project root): a scratch
# directory ($WORK) and the background processes the script starts ($PIDS), both removed on
# exit however the script ends, and a wait for a port to answer.
WORK=$(mktemp -d)
PIDS=()
cleanup() {
  for pid in "${PIDS[@]}"; do kill "$pid" 2>/dev/null || true; done
  wait 2>/dev/null || true
  rm -rf "$WORK"
}
trap cleanup EXIT

need() { command -v "$1" >/dev/null 2>&1; }

# wait_for HOST PORT [TRIES]: until something accepts on HOST:PORT, 0.1 s apart (default 50
# tries). Not answering by then is left for the first request to report.
wait_for() {
  for _ in $(seq "${3:-50}"); do
    (exec 3<>"/dev/tcp/$1/$2") 2>/dev/null && return 0
    sleep 0.1
  done
}
