#!/usr/bin/env bash
# Times the main job, `meshsim up scenarios/front-proxy.yaml --detach` to the first 200 through
# the front proxy, and `meshsim down`, on both runtimes; and the image build. Goals (issue 3):
# Docker (image cached) <= 3 s to first 200 and <= 3 s down, image build <= 2 s, local <= 0.5 s.
#
#   bench/up.sh            # RUNS=5 bench/up.sh for more rounds
#
# Uses the release binary and the scenario's own ports (127.0.0.1:8080 and 8001 must be free).
set -euo pipefail
cd "$(dirname "$0")/.."

RUNS=${RUNS:-3}
cargo build --release --quiet
BIN=$PWD/target/release/meshsim
export MESHSIM_STATE_DIR
MESHSIM_STATE_DIR=$(mktemp -d)
trap '"$BIN" down --all >/dev/null 2>&1 || true; rm -rf "$MESHSIM_STATE_DIR"' EXIT

now() { date +%s.%N; }
elapsed() { awk -v a="$1" -v b="$(now)" 'BEGIN { print b - a }'; }

# Polls the front proxy until /service/1 answers 200 (at most 30 s).
first_200() {
  for _ in $(seq 1 3000); do
    if [ "$(curl -s -o /dev/null -w '%{http_code}' http://127.0.0.1:8080/service/1)" = 200 ]; then
      return 0
    fi
    sleep 0.01
  done
  echo "no 200 within 30 s" >&2
  return 1
}

round() { # runtime
  local t0 up down
  t0=$(now)
  "$BIN" up scenarios/front-proxy.yaml --runtime "$1" --detach >/dev/null 2>&1
  first_200
  up=$(elapsed "$t0")
  t0=$(now)
  "$BIN" down front-proxy >/dev/null
  down=$(elapsed "$t0")
  printf '%-7s up→first 200: %6.2f s   down: %6.2f s\n' "$1" "$up" "$down"
}

if docker info >/dev/null 2>&1; then
  tag=$("$BIN" image 2>/dev/null)
  for _ in $(seq 1 "$RUNS"); do
    docker rmi -f "$tag" >/dev/null
    t0=$(now)
    "$BIN" image >/dev/null 2>&1
    printf 'image   build (%s MB binary): %6.2f s\n' "$(( $(stat -c %s "$BIN") / 1000000 ))" "$(elapsed "$t0")"
  done
  for _ in $(seq 1 "$RUNS"); do round docker; done
else
  echo "Docker not available: skipping the Docker rounds" >&2
fi
for _ in $(seq 1 "$RUNS"); do round local; done
