#!/usr/bin/env bash
# Load-generator benchmark: `meshsim load` alone against a direct backend (nginx answering a
# static 200), generator pinned to core 0 and the backend to core 1, open loop at a target rate
# over HTTP/1.1 keep-alive connections. The goal: >= 20k requests/s from one core with the
# achieved rate within 1 % of the target and a latency recorded for every request.
#
# Usage: bench/load.sh [rate (default 20000)] [seconds (default 10)] [connections (default 64)]
# Honours CARGO_TARGET_DIR. Loopback only; every process started here is stopped on exit.
set -euo pipefail
cd "$(dirname "$0")/.."
RATE=${1:-20000}
DURATION=${2:-10}
CONNECTIONS=${3:-64}
TARGET_DIR=${CARGO_TARGET_DIR:-target}
. bench/common.sh

if ! need nginx; then
  echo "installing nginx from Debian..." >&2
  apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq nginx >/dev/null
fi
cargo build --release -j 1 -q
MESHSIM="$TARGET_DIR/release/meshsim"

# Pin the generator and the backend to different cores when there are two.
GEN_CPU=(taskset -c 0)
BACKEND_CPU=(taskset -c 1)
if [ "$(nproc)" -lt 2 ]; then BACKEND_CPU=(); fi

BACKEND=18100
cat > "$WORK/backend.conf" <<CONF
worker_processes 1; pid $WORK/backend.pid; error_log $WORK/backend.err; daemon off;
events { worker_connections 4096; }
http { access_log off; keepalive_requests 10000000; keepalive_timeout 60s;
  server { listen 127.0.0.1:$BACKEND; location / { return 200 "ok"; } } }
CONF
"${BACKEND_CPU[@]}" nginx -c "$WORK/backend.conf" & PIDS+=($!)
wait_for 127.0.0.1 "$BACKEND"

echo "meshsim load: ${RATE}/s for ${DURATION}s over $CONNECTIONS HTTP/1.1 connections, generator on core 0, nginx on core 1" >&2
"${GEN_CPU[@]}" "$MESHSIM" load --target "127.0.0.1:$BACKEND" --rate "$RATE" \
  --duration "${DURATION}s" --connections "$CONNECTIONS" --timeout 5s --path / 2>"$WORK/progress"
echo "(the machine may be shared: rerun when a figure looks off; progress lines were:)" >&2
sed 's/^/  /' "$WORK/progress" >&2
