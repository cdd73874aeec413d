#!/usr/bin/env python3
"""Builds bench-results/summary.json from the raw benchmark outputs.

Each headline figure is {"value": x, "unit": "..."} and, where a reference
was measured in the same run, "reference" and "ratio" (ours / reference,
higher is better for throughputs)."""
import json
import os
import re
import sys

out_dir = sys.argv[1]
summary = {}


def load_gbench(name):
    path = os.path.join(out_dir, name + ".json")
    if not os.path.exists(path):
        return {}
    with open(path) as f:
        data = json.load(f)
    # With repetitions, take the median aggregate (robust on shared,
    # noisy machines); otherwise the single iteration run.
    result = {}
    for b in data.get("benchmarks", []):
        name = b.get("run_name", b["name"]).split("/")[0]
        if b.get("run_type") == "aggregate":
            if b.get("aggregate_name") == "median":
                result[name] = b
        elif name not in result:
            result[name] = b
    return result


def per_second(bench):
    # Operations per wall-clock second. Not items_per_second: Google Benchmark
    # derives that from CPU time, which hides the time spent waiting on fsync.
    unit = {"ns": 1e-9, "us": 1e-6, "ms": 1e-3, "s": 1.0}[bench.get("time_unit", "ns")]
    return 1.0 / (bench["real_time"] * unit)


crypto = load_gbench("crypto")
if "BM_SealObject64k" in crypto and "BM_RawXChaCha64k" in crypto:
    ours = crypto["BM_SealObject64k"]["bytes_per_second"]
    raw = crypto["BM_RawXChaCha64k"]["bytes_per_second"]
    summary["aead_64k_ratio_vs_raw"] = {
        "value": round(ours / raw, 3), "unit": "ratio",
        "reference": round(raw / 1e6, 1), "reference_unit": "MB/s raw XChaCha20-Poly1305",
        "ours": round(ours / 1e6, 1), "ratio": round(ours / raw, 3)}

store = load_gbench("store")
service = load_gbench("service")
if "BM_SegmentWrite" in service:
    w = per_second(service["BM_SegmentWrite"])
    entry = {"value": round(w, 1), "unit": "writes/s"}
    if "BM_RawSqliteInsertPlusFile" in store:
        ref = per_second(store["BM_RawSqliteInsertPlusFile"])
        entry.update({"reference": round(ref, 1),
                      "reference_unit": "raw SQLite insert + durable file write per s",
                      "ratio": round(w / ref, 3)})
    summary["segment_write_per_s"] = entry
if "BM_SegmentRead" in service:
    summary["segment_read_per_s"] = {"value": round(per_second(service["BM_SegmentRead"]), 1),
                                     "unit": "reads/s"}

pdp = load_gbench("pdp")
if "BM_PdpDecide" in pdp:
    b = pdp["BM_PdpDecide"]
    summary["pdp_decisions_per_s"] = {
        "value": round(b.get("items_per_second", 0.0), 1), "unit": "decisions/s (one core)",
        "setup": "10,000 patients, 1,000 staff, realistic mix"}
    if "p99_us" in b:
        summary["pdp_p99_us"] = {"value": round(b["p99_us"], 3), "unit": "us"}

auth = load_gbench("auth")
for name, b in auth.items():
    if "Authenticate" in name and "items_per_second" in b:
        summary["auth_authenticate_per_s"] = {"value": round(b["items_per_second"], 1),
                                              "unit": "access-token checks/s (warm cache)"}


def parse_wrk(name):
    path = os.path.join(out_dir, name + ".txt")
    if not os.path.exists(path):
        return None
    text = open(path).read()
    rps = re.search(r"Requests/sec:\s+([\d.]+)", text)
    p99 = re.search(r"^\s+99%\s+([\d.]+)(us|ms|s)\s*$", text, re.M)
    non2xx = re.search(r"Non-2xx or 3xx responses:\s+(\d+)", text)
    errors = re.search(r"Socket errors: (.*)", text)
    result = {"rps": float(rps.group(1)) if rps else 0.0}
    if p99:
        scale = {"us": 1e-3, "ms": 1.0, "s": 1e3}[p99.group(2)]
        result["p99_ms"] = float(p99.group(1)) * scale
    result["non_2xx"] = int(non2xx.group(1)) if non2xx else 0
    result["socket_errors"] = errors.group(1) if errors else ""
    return result


wr = parse_wrk("http_write")
if wr:
    summary["http_write_per_s"] = {"value": wr["rps"], "unit": "requests/s",
                                   "non_2xx": wr["non_2xx"], "p99_ms": wr.get("p99_ms")}
rd = parse_wrk("http_read")
if rd:
    summary["http_read_per_s"] = {"value": rd["rps"], "unit": "requests/s", "non_2xx": rd["non_2xx"]}
    if "p99_ms" in rd:
        summary["http_read_p99_ms"] = {"value": rd["p99_ms"], "unit": "ms"}

with open(os.path.join(out_dir, "summary.json"), "w") as f:
    json.dump(summary, f, indent=2, sort_keys=True)
print(json.dumps(summary, indent=2, sort_keys=True))
