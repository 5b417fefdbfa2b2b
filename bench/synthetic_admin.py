#!/usr/bin/env python3
"""Synthetic Envoy admin endpoints for the TUI benchmark: N proxies on 127.0.0.1, each with
one cluster of M endpoints whose counters grow as if ~100 rps were flowing. Serves
/stats?format=json, /clusters?format=json and /config_dump (a listener with M routes) in
Envoy's formats. Loopback only.

    synthetic_admin.py PROXIES ENDPOINTS BASE_PORT
"""
import json
import sys
import threading
import time
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

PROXIES, ENDPOINTS, BASE = (int(a) for a in sys.argv[1:4])
START = time.time()


def counts(proxy):
    elapsed = time.time() - START
    per_host = [int(elapsed * (5 + (proxy + h) % 7)) for h in range(ENDPOINTS)]
    return per_host, sum(per_host)


def stats(proxy):
    per_host, total = counts(proxy)
    name = f"cluster.backend{proxy}"
    entries = [
        {"name": f"{name}.upstream_rq_total", "value": total},
        {"name": f"{name}.upstream_rq_completed", "value": total},
        {"name": f"{name}.upstream_rq_5xx", "value": total // 100},
        {"name": f"{name}.upstream_rq_active", "value": proxy % 3},
    ]
    quantiles = [0, 25, 50, 75, 90, 95, 99, 99.5, 99.9, 100]
    values = [{"interval": q / 10, "cumulative": q / 10} for q in quantiles]
    entries.append({"histograms": {"supported_quantiles": quantiles, "computed_quantiles": [
        {"name": f"{name}.upstream_rq_time", "values": values}]}})
    return {"stats": entries}


def clusters(proxy):
    per_host, _ = counts(proxy)
    hosts = [{
        "address": {"socket_address": {"address": f"10.{proxy}.0.{h + 2}", "port_value": 8080}},
        "stats": [{"name": "rq_total", "value": str(n)}, {"name": "rq_error", "value": str(n // 100)}],
        "health_status": {"eds_health_status": "HEALTHY"},
    } for h, n in enumerate(per_host)]
    return {"cluster_statuses": [{"name": f"backend{proxy}", "host_statuses": hosts}]}


def config_dump(proxy):
    routes = [{"match": {"prefix": f"/r{r}"}, "route": {"cluster": f"backend{proxy}"}}
              for r in range(ENDPOINTS)]
    hcm = {
        "@type": "type.googleapis.com/envoy.extensions.filters.network.http_connection_manager.v3.HttpConnectionManager",
        "stat_prefix": "ingress_http",
        "route_config": {"name": "local", "virtual_hosts": [
            {"name": "backend", "domains": ["*"], "routes": routes}]},
    }
    listener = {"name": "ingress", "address": {"socket_address": {"address": "0.0.0.0", "port_value": 8080}},
                "filter_chains": [{"filters": [{"name": "envoy.filters.network.http_connection_manager",
                                                "typed_config": hcm}]}]}
    return {"configs": [{"@type": "type.googleapis.com/envoy.admin.v3.ListenersConfigDump",
                         "static_listeners": [{"listener": listener}]}]}


def handler(proxy):
    class Handler(BaseHTTPRequestHandler):
        def do_GET(self):
            if self.path.startswith("/stats"):
                body = stats(proxy)
            elif self.path.startswith("/config_dump"):
                body = config_dump(proxy)
            else:
                body = clusters(proxy)
            data = json.dumps(body).encode()
            self.send_response(200)
            self.send_header("content-type", "application/json")
            self.send_header("content-length", str(len(data)))
            self.end_headers()
            self.wfile.write(data)

        def log_message(self, *args):
            pass
    return Handler


for p in range(PROXIES):
    server = ThreadingHTTPServer(("127.0.0.1", BASE + p), handler(p))
    threading.Thread(target=server.serve_forever, daemon=True).start()
print("ready", flush=True)
threading.Event().wait()
