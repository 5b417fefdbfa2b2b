#!/usr/bin/env bash
# Reverse-proxy benchmark: meshsim vs nginx vs haproxy, one worker each, in front of one common
# backend, HTTP/1.1 keep-alive (wrk -t1 -c32) and h2c downstream (h2load), runs interleaved
# A B C, B C A, C A B so machine noise hits all three alike. Prints requests/s and latency per
# run (with the CPU time the hypervisor took from the machine meanwhile), then the medians and
# the ratios, and the ratios round by round. Also measures an idle meshsim's RSS on the
# front-proxy config.
#
# Usage: bench/proxy.sh [seconds-per-run (default 10)] [rounds (default 2)]
#        PIN=1 bench/proxy.sh ...   (proxies on CPU 0; load generator and backend on the rest)
# Loopback only; every process started here is stopped on exit.
set -euo pipefail
cd "$(dirname "$0")/.."
DURATION=${1:-10}
ROUNDS=${2:-2}
. bench/common.sh

if ! need nginx || ! need haproxy || ! need wrk || ! need h2load; then
  echo "installing nginx haproxy wrk nghttp2-client from Debian..." >&2
  apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq nginx haproxy wrk nghttp2-client >/dev/null
fi
cargo build --release -q
MESHSIM=target/release/meshsim
# The release build is profile-guided (pgo/): say how old its profile is, since functions
# changed after the recording lose their share of the gain.
if [ -f pgo/trained-on ]; then
  trained=$(awk '$1 == "commit" {print $2}' pgo/trained-on)
  since=$(git rev-list --count "$trained..HEAD" -- src sample-services Cargo.lock 2>/dev/null || echo "?")
  echo "build: profile-guided, profile from ${trained:0:12} ($since commits to the code since)"
  grep -qxF "$(rustc -V)" pgo/trained-on || echo "  warning: recorded with $(sed -n 2p pgo/trained-on), building with $(rustc -V): most of the profile will not apply; run pgo/train.sh"
else
  echo "build: no profile recorded (pgo/train.sh records one)"
fi

# PIN=1 gives the proxy under test a CPU of its own (the first) and the load generator and
# backend the others. Unpinned (the default, as on a laptop running a whole mesh), the four
# busy processes wander over two CPUs, and which one the proxy shares moved every proxy's
# requests/s by about 10 % from run to run: sharing with a backend worker it wakes, it was
# preempted 0.2-0.3 times per request against 0.1 (from /proc) in runs where it happened to
# share with the client. Pinned, the rounds agree within a few percent. On two CPUs both are
# then nearly always busy (the proxy_cpu% column shows the proxy's): the client and backend
# limit a run as much as the proxy does.
if [ "${PIN:-0}" = 1 ] && [ "$(nproc)" -ge 2 ]; then
  # Command prefixes (taskset execs the command, so `$!` stays the pinned process's PID).
  ON_PROXY_CPU=(taskset -c 0) ON_OTHER_CPUS=(taskset -c "1-$(($(nproc) - 1))")
  echo "CPUs: proxies on 0; load generator and backend on 1-$(($(nproc) - 1))"
else
  ON_PROXY_CPU=() ON_OTHER_CPUS=()
  echo "CPUs: not pinned (PIN=1 pins the proxies to CPU 0)"
fi

BACKEND=18000 MESH=18001 NGINX_H1=18002 NGINX_H2=18003 HAPROXY_H1=18004 HAPROXY_H2=18005

# The common backend: nginx answering a fixed 2-byte body, two workers so it is never the
# bottleneck of a single-worker proxy. `reuseport` gives each worker its own listening socket,
# so the kernel splits every proxy's connections between the two by address hash. Without it,
# whichever worker woke first could take a whole burst of a proxy's connections, and how they
# happened to be split moved that proxy's result by up to 10 % from run to run.
cat > "$WORK/backend.conf" <<CONF
worker_processes 2; pid $WORK/backend.pid; error_log $WORK/backend.err; daemon off;
events { worker_connections 4096; }
http { access_log off; keepalive_requests 1000000;
  server { listen 127.0.0.1:$BACKEND reuseport; location / { return 200 "ok"; } } }
CONF
"${ON_OTHER_CPUS[@]}" nginx -c "$WORK/backend.conf" & PIDS+=($!)

cat > "$WORK/nginx.conf" <<CONF
worker_processes 1; pid $WORK/nginx.pid; error_log $WORK/nginx.err; daemon off;
events { worker_connections 4096; }
http { access_log off; keepalive_requests 1000000;
  upstream backend { server 127.0.0.1:$BACKEND; keepalive 64; }
  server { listen 127.0.0.1:$NGINX_H1;
    location / { proxy_pass http://backend; proxy_http_version 1.1; proxy_set_header Connection ""; } }
  server { listen 127.0.0.1:$NGINX_H2 http2;
    location / { proxy_pass http://backend; proxy_http_version 1.1; proxy_set_header Connection ""; } } }
CONF
"${ON_PROXY_CPU[@]}" nginx -c "$WORK/nginx.conf" & PIDS+=($!); NGINX_PID=$!

cat > "$WORK/haproxy.cfg" <<CONF
global
  nbthread 1
defaults
  mode http
  timeout connect 5s
  timeout client 30s
  timeout server 30s
  option http-keep-alive
frontend h1
  bind 127.0.0.1:$HAPROXY_H1
  default_backend be
frontend h2
  bind 127.0.0.1:$HAPROXY_H2 proto h2
  default_backend be
backend be
  http-reuse always
  server s1 127.0.0.1:$BACKEND
CONF
"${ON_PROXY_CPU[@]}" haproxy -f "$WORK/haproxy.cfg" -db & PIDS+=($!); HAPROXY_PID=$!

# meshsim with the equivalent config: no request-id generation, no access log and the router's
# `dynamic_stats` off (no per-response-code cluster counters, no upstream time histogram): what
# Envoy's benchmarking guide asks of Envoy when it is compared with other proxies. nginx and
# haproxy here generate no request ids and log nothing either.
cat > "$WORK/meshsim.yaml" <<CONF
static_resources:
  listeners:
  - address: {socket_address: {address: 127.0.0.1, port_value: $MESH}}
    filter_chains:
    - filters:
      - name: envoy.filters.network.http_connection_manager
        typed_config:
          "@type": type.googleapis.com/envoy.extensions.filters.network.http_connection_manager.v3.HttpConnectionManager
          stat_prefix: bench
          generate_request_id: false
          route_config:
            virtual_hosts: [{name: all, domains: ["*"], routes: [{match: {prefix: "/"}, route: {cluster: backend}}]}]
          http_filters: [{name: envoy.filters.http.router, typed_config: {"@type": type.googleapis.com/envoy.extensions.filters.http.router.v3.Router, dynamic_stats: false}}]
  clusters:
  - name: backend
    type: STATIC
    load_assignment: {cluster_name: backend, endpoints: [{lb_endpoints: [{endpoint: {address: {socket_address: {address: 127.0.0.1, port_value: $BACKEND}}}}]}]}
admin: {address: {socket_address: {address: 127.0.0.1, port_value: 18009}}}
CONF
"${ON_PROXY_CPU[@]}" "$MESHSIM" proxy -c "$WORK/meshsim.yaml" --concurrency 1 -l error & PIDS+=($!); MESHSIM_PID=$!

for port in $BACKEND $MESH $NGINX_H1 $NGINX_H2 $HAPROXY_H1 $HAPROXY_H2; do
  wait_for 127.0.0.1 "$port"
done

RESULTS="$WORK/results.tsv"
# Besides requests/s and latency, each run reports the proxy's CPU time per request (user +
# system, its worker processes' from /proc) and how busy that kept its CPU (near 100 %: the
# proxy was what limited the run), and how often the load generator went to sleep waiting for
# an answer (its voluntary context switches), each sleep being a wake-up the proxy pays for.
proxy_pids() { # name: the processes doing the proxying (nginx's workers, not its master)
  case $1 in
    meshsim) echo "$MESHSIM_PID" ;;
    haproxy) echo "$HAPROXY_PID" ;;
    nginx) ps -o pid= --ppid "$NGINX_PID" ;;
  esac
}
cpu_ticks() { # name: user + system clock ticks of the proxy's processes
  local total=0 pid
  for pid in $(proxy_pids "$1"); do total=$((total + $(awk '{print $14 + $15}' "/proc/$pid/stat"))); done
  echo "$total"
}
# Runs a load generator; its output on stdout, its voluntary context switches on fd 3.
measured() {
  python3 -c 'import resource, subprocess, sys
subprocess.run(sys.argv[1:], stderr=subprocess.STDOUT)
print(resource.getrusage(resource.RUSAGE_CHILDREN).ru_nvcsw, file=sys.stderr)' "$@" 2>&3
}
per_request() { # ticks-before ticks-after sleeps requests/s: CPU per request, CPU busy %, sleeps
  python3 -c 'import os, sys
t0, t1, sleeps, rps, secs = map(float, sys.argv[1:6]); n = rps * secs
cpu = (t1 - t0) / os.sysconf("SC_CLK_TCK")
print("%.2f\t%.0f\t%.3f" % (cpu / n * 1e6, cpu / secs * 100, sleeps / n))' "$@" "$DURATION"
}
# On a virtual machine the hypervisor may run other guests on our CPUs: that time ("steal",
# /proc/stat) is lost to every process here alike, and a run that lost much of it says little.
steal_ticks() { awk '/^cpu / {print $9}' /proc/stat; }
steal_percent() { # ticks-before ticks-after: of all CPUs' time during the run
  python3 -c 'import os, sys
t0, t1 = map(float, sys.argv[1:3])
print("%.1f" % ((t1 - t0) / os.sysconf("SC_CLK_TCK") / (float(sys.argv[3]) * os.cpu_count()) * 100))' "$@" "$DURATION"
}
run() { # proto (h1 or h2c) name port: one run, one results row
  local out t0 t1 s0 s1 sleeps; t0=$(cpu_ticks "$2"); s0=$(steal_ticks)
  local url="http://127.0.0.1:$3/"
  case $1 in
    h1) out=$(measured "${ON_OTHER_CPUS[@]}" wrk -t1 -c32 -d"${DURATION}s" --latency "$url" 3>"$WORK/sleeps" 2>&1) ;;
    h2c) out=$(measured "${ON_OTHER_CPUS[@]}" h2load -c32 -m10 -D "$DURATION" "$url" 3>"$WORK/sleeps" 2>&1) ;;
  esac
  t1=$(cpu_ticks "$2"); s1=$(steal_ticks); sleeps=$(cat "$WORK/sleeps")
  local rps latency
  case $1 in
    h1)
      rps=$(awk '/Requests\/sec/ {print $2}' <<<"$out")
      latency=$(awk '$1=="50%" {p50=$2} $1=="99%" {p99=$2} END {print p50 "\t" p99}' <<<"$out") ;;
    h2c) # h2load prints mean/max per request, not percentiles
      rps=$(awk '/^finished in/ {gsub(",","",$4); print $4}' <<<"$out")
      latency=$(awk '/^time for request:/ {print "mean=" $6 "\tmax=" $5}' <<<"$out") ;;
  esac
  printf '%s\t%s\t%s\t%s\t%s\t%s\n' "$1" "$2" "$rps" "$latency" "$(per_request "$t0" "$t1" "$sleeps" "$rps")" \
    "$(steal_percent "$s0" "$s1")" | tee -a "$RESULTS"
}

printf 'proto\tproxy\trps\tp50\tp99\tcpu_us/req\tproxy_cpu%%\tclient_sleeps/req\tsteal%%\n'
# Each round starts with the next proxy (A B C, B C A, C A B, ...): whichever runs first in a
# round meets the machine as the previous round left it, and no proxy should always be that one.
NAMES=(meshsim nginx haproxy)
H1_PORTS=($MESH $NGINX_H1 $HAPROXY_H1)
H2_PORTS=($MESH $NGINX_H2 $HAPROXY_H2)
for round in $(seq 0 $((ROUNDS - 1))); do
  for k in 0 1 2; do i=$(((round + k) % 3)); run h1 "${NAMES[$i]}" "${H1_PORTS[$i]}"; done
done
for round in $(seq 0 $((ROUNDS - 1))); do
  for k in 0 1 2; do i=$(((round + k) % 3)); run h2c "${NAMES[$i]}" "${H2_PORTS[$i]}"; done
done

echo
echo "median requests/s and ratios (meshsim / other):"
python3 - "$RESULTS" <<'PY'
import statistics, sys, collections
rows = collections.defaultdict(list)
steal = collections.defaultdict(list)
for line in open(sys.argv[1]):
    proto, name, rps, *rest = line.rstrip("\n").split("\t")
    rows[(proto, name)].append(float(rps))
    steal[(proto, name)].append(float(rest[-1]))
for proto in ("h1", "h2c"):
    med = {n: statistics.median(rows[(proto, n)]) for n in ("meshsim", "nginx", "haproxy")}
    print(f"{proto:4} meshsim {med['meshsim']:9.0f}  nginx {med['nginx']:9.0f}  haproxy {med['haproxy']:9.0f}"
          f"  ratio vs nginx {med['meshsim']/med['nginx']:.2f}  vs haproxy {med['meshsim']/med['haproxy']:.2f}")
# Each round runs the three back to back, so a round's ratios compare runs that met much the
# same machine: their spread shows how far the host's noise moves the medians above. Then the
# same over the rounds where neither run of the pair lost 2 % or more of the machine to steal:
# the comparisons this host's neighbours did not disturb.
QUIET = 2.0
def per_round(title, quiet_only):
    print(title)
    for proto in ("h1", "h2c"):
        cells = []
        for other in ("nginx", "haproxy"):
            pairs = zip(rows[(proto, "meshsim")], rows[(proto, other)],
                        steal[(proto, "meshsim")], steal[(proto, other)])
            r = [m / o for m, o, sm, so in pairs if not quiet_only or (sm < QUIET and so < QUIET)]
            n = len(rows[(proto, other)])
            counted = f" ({len(r)} of {n})" if quiet_only else ""
            cells.append(f"vs {other} {statistics.median(r):.2f} [{min(r):.2f}-{max(r):.2f}]{counted}"
                         if r else f"vs {other}: none (0 of {n})")
        print(f"{proto:4} " + "  ".join(cells))
per_round("per-round ratios (meshsim / other), median [lowest-highest]:", False)
per_round(f"the same, rounds where neither run lost {QUIET:.0f} % or more to steal:", True)
PY

# Idle RSS on the front-proxy config. Its DNS names (service1, service2) are resolved through a
# loopback address where nothing answers, so no query leaves the machine; the clusters simply
# stay empty, which an idle measurement does not mind.
echo
FRONT=tests/fixtures/seeds/001-front-envoy.yaml
if [ -f "$FRONT" ]; then
  "$MESHSIM" proxy -c "$FRONT" --concurrency 1 --pod-ip 127.0.0.77 --dns-resolver 127.0.0.1:5 -l error & pid=$!; PIDS+=($pid)
  wait_for 127.0.0.77 8001 100
  sleep 2
  echo "idle RSS on $FRONT: $(awk '/VmRSS/ {print $2, $3}' /proc/$pid/status)"
  kill "$pid"
fi
