#!/usr/bin/env bash
# Records the profile that `cargo build --release` optimises the proxy with (profile-guided
# optimisation; pgo/rustc-wrapper applies it). Run it again after changing the request path:
# a function whose code changed since the recording is built without profile, so a stale
# profile slowly gives back the gain (about 6 % in requests/s, README "Benchmark").
#
# Builds meshsim instrumented (target/pgo-train), runs it as a proxy in front of its own sample
# service under wrk and h2load, the traffic a user's mesh sends through it: a lean listener
# (no request ids, no access log, no per-code stats) and one with the defaults (request ids,
# an access log, dynamic stats) over HTTP/1.1 and HTTP/2 upstreams, plus admin scrapes. Then
# merges the counts into pgo/meshsim.profdata, records what it was trained on in
# pgo/trained-on, and cleans the release build, which cargo would not rebuild on its own.
#
# Needs llvm-profdata able to read this rustc's raw profiles: rustup's llvm-tools if installed,
# else Debian's llvm-19 (installed when missing; it reads rustc 1.95's, LLVM 22, profiles).
# Loopback only; every process started here is stopped on exit.
set -euo pipefail
cd "$(dirname "$0")/.."
. bench/common.sh

PROFDATA=$(ls "$(rustc --print sysroot)"/lib/rustlib/*/bin/llvm-profdata 2>/dev/null | head -1 || true)
if [ -z "$PROFDATA" ]; then
  PROFDATA=/usr/lib/llvm-19/bin/llvm-profdata
  [ -x "$PROFDATA" ] || NEED_APT="llvm-19"
fi
need wrk || NEED_APT="${NEED_APT:-} wrk"
need h2load || NEED_APT="${NEED_APT:-} nghttp2-client"
need curl || NEED_APT="${NEED_APT:-} curl"
if [ -n "${NEED_APT:-}" ]; then
  echo "installing$NEED_APT from Debian..." >&2
  apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq $NEED_APT >/dev/null
fi

echo "building instrumented meshsim (target/pgo-train)..." >&2
# A fixed place for the raw profiles, so that training again rebuilds only what changed.
RAW="$PWD/target/pgo-train/raw"
RUSTFLAGS="-Cprofile-generate=$RAW" CARGO_TARGET_DIR=target/pgo-train cargo build --release -q
# The build's own instrumented build scripts and proc macros wrote there too: only the
# training's counts belong in the profile.
rm -rf "$RAW"
MESHSIM=target/pgo-train/release/meshsim

SERVICE=18060 LEAN=18061 DEFAULTS=18062 ADMIN=18069
"$MESHSIM" service --kind http --listen "127.0.0.1:$SERVICE" --hostname trainer >/dev/null & PIDS+=($!)
SERVICE_PID=$!
cat > "$WORK/proxy.yaml" <<CONF
static_resources:
  listeners:
  - name: lean
    address: {socket_address: {address: 127.0.0.1, port_value: $LEAN}}
    filter_chains:
    - filters:
      - name: envoy.filters.network.http_connection_manager
        typed_config:
          "@type": type.googleapis.com/envoy.extensions.filters.network.http_connection_manager.v3.HttpConnectionManager
          stat_prefix: lean
          generate_request_id: false
          route_config:
            virtual_hosts: [{name: all, domains: ["*"], routes: [{match: {prefix: "/"}, route: {cluster: http1}}]}]
          http_filters: [{name: envoy.filters.http.router, typed_config: {"@type": type.googleapis.com/envoy.extensions.filters.http.router.v3.Router, dynamic_stats: false}}]
  - name: defaults
    address: {socket_address: {address: 127.0.0.1, port_value: $DEFAULTS}}
    filter_chains:
    - filters:
      - name: envoy.filters.network.http_connection_manager
        typed_config:
          "@type": type.googleapis.com/envoy.extensions.filters.network.http_connection_manager.v3.HttpConnectionManager
          stat_prefix: ingress_http
          access_log:
          - name: envoy.access_loggers.file
            typed_config:
              "@type": type.googleapis.com/envoy.extensions.access_loggers.file.v3.FileAccessLog
              path: $WORK/access.log
          route_config:
            virtual_hosts:
            - name: backend
              domains: ["*"]
              routes:
              - match: {prefix: "/h2/"}
                route: {cluster: http2, prefix_rewrite: "/service/"}
              - match: {prefix: "/"}
                route: {cluster: http1}
          http_filters: [{name: envoy.filters.http.router, typed_config: {"@type": type.googleapis.com/envoy.extensions.filters.http.router.v3.Router}}]
  clusters:
  - name: http1
    type: STATIC
    load_assignment: {cluster_name: http1, endpoints: [{lb_endpoints: [{endpoint: {address: {socket_address: {address: 127.0.0.1, port_value: $SERVICE}}}}]}]}
  - name: http2
    type: STATIC
    typed_extension_protocol_options:
      envoy.extensions.upstreams.http.v3.HttpProtocolOptions:
        "@type": type.googleapis.com/envoy.extensions.upstreams.http.v3.HttpProtocolOptions
        explicit_http_config: {http2_protocol_options: {}}
    load_assignment: {cluster_name: http2, endpoints: [{lb_endpoints: [{endpoint: {address: {socket_address: {address: 127.0.0.1, port_value: $SERVICE}}}}]}]}
admin: {address: {socket_address: {address: 127.0.0.1, port_value: $ADMIN}}}
CONF
"$MESHSIM" proxy -c "$WORK/proxy.yaml" --concurrency 1 -l error & PIDS+=($!)
PROXY_PID=$!
for port in $SERVICE $LEAN $DEFAULTS $ADMIN; do
  wait_for 127.0.0.1 "$port"
done

# Each workload is bounded in time; wrk and h2load as bench/proxy.sh runs them.
h1() { wrk -t1 -c32 -d"$1s" "http://127.0.0.1:$2$3" | awk -v w="HTTP/1.1 $2$3" '/Requests\/sec/ {print w ": " $2 " requests/s"}'; }
h2c() { h2load -c32 -m10 -D "$1" "http://127.0.0.1:$2$3" | awk -v w="h2c $2$3" '/^finished in/ {print w ": " $4 " requests/s"}'; }
h1 6 $LEAN /
h2c 6 $LEAN /
h1 3 $DEFAULTS /service/1
h2c 3 $DEFAULTS /service/1
h2c 3 $DEFAULTS /h2/1
for _ in $(seq 20); do
  for path in /stats /stats/prometheus "/stats?format=json" /clusters /config_dump /server_info; do
    curl -sf "http://127.0.0.1:$ADMIN$path" >/dev/null
  done
done

# The raw profiles are written at exit: stop both gracefully and wait for them.
kill -TERM "$PROXY_PID" "$SERVICE_PID"
wait "$PROXY_PID" "$SERVICE_PID" 2>/dev/null || true
"$PROFDATA" merge --sparse -o pgo/meshsim.profdata "$RAW"/*.profraw
{
  echo "commit $(git rev-parse HEAD)$(git diff --quiet HEAD -- src sample-services Cargo.lock || echo ' (with uncommitted changes)')"
  echo "$(rustc -V)"
  echo "recorded $(date -u +%Y-%m-%dT%H:%M:%SZ) by pgo/train.sh"
} > pgo/trained-on
cargo clean --release -q
echo "pgo/meshsim.profdata: $(du -k pgo/meshsim.profdata | cut -f1) KiB; $(head -1 pgo/trained-on)" >&2
