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
disk = service.get("BM_DiskBytesPerSmallVersion")
if disk and "disk_bytes_per_version" in disk:
    per = disk["disk_bytes_per_version"]
    ct = disk.get("ciphertext_bytes_per_version", 0.0)
    item = {"value": round(per, 1), "unit": "bytes on disk per stored small version "
            "(database, WAL and object files, allocated)", "goal_ratio": 2.0,
            "versions": int(disk.get("versions", 0))}
    if ct:
        item.update({"reference": round(ct, 1), "reference_unit": "ciphertext bytes per version",
                     "ratio": round(per / ct, 3)})
    summary["disk_bytes_per_small_version"] = item
if "BM_SegmentRead" in service:
    summary["segment_read_per_s"] = {"value": round(per_second(service["BM_SegmentRead"]), 1),
                                     "unit": "reads/s"}
if "BM_ManySegmentsPatientKeys" in service and "BM_ManySegmentsUnwrapEach" in service:
    ours = per_second(service["BM_ManySegmentsPatientKeys"])
    each = per_second(service["BM_ManySegmentsUnwrapEach"])
    summary["many_segment_read_ratio_vs_per_segment_unwrap"] = {
        "value": round(ours / each, 3), "unit": "ratio",
        "reference": round(each * 20, 1),
        "reference_unit": "segment reads/s, root key unwrapped per segment",
        "ours": round(ours * 20, 1), "ratio": round(ours / each, 3)}

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


def load_gbench_full(name):
    """Benchmarks by full name (with arguments), first run of each."""
    path = os.path.join(out_dir, name + ".json")
    if not os.path.exists(path):
        return {}
    with open(path) as f:
        data = json.load(f)
    result = {}
    for b in data.get("benchmarks", []):
        if b.get("run_type") == "aggregate":
            continue
        result.setdefault(b["name"], b)
    return result


def find(benches, prefix):
    for name, b in benches.items():
        if name.startswith(prefix):
            return b
    return None


def micros(bench):
    unit = {"ns": 1e-3, "us": 1.0, "ms": 1e3, "s": 1e6}[bench.get("time_unit", "ns")]
    return bench["real_time"] * unit


ledger = load_gbench_full("ledger")
big = find(ledger, "BM_LedgerAppendBatched/1000")
if big:
    entry = {"value": round(big.get("items_per_second", 0.0), 1),
             "unit": "entries/s (batches of 1000, durable)"}
    ours100 = find(ledger, "BM_LedgerAppendBatched/100")
    raw100 = find(ledger, "BM_RawSqliteInsertBatched/100")
    if ours100 and raw100:
        entry.update({"reference": round(raw100.get("items_per_second", 0.0), 1),
                      "reference_unit": "bare SQLite inserts/s of the same rows, batches of 100",
                      "ratio": round(ours100["items_per_second"] / raw100["items_per_second"], 3)})
    conc = find(ledger, "BM_LedgerAppendConcurrent/1/")
    if conc:
        entry["concurrent_single_entry_callers_per_s"] = round(conc.get("items_per_second", 0.0), 1)
    summary["ledger_append_per_s"] = entry
# Issue 14 part 6: disk bytes per read audit (a size, not a speed): the growth
# of a fresh ledger file over N read audits / N, entry and SQLite row + index
# overhead. Reference: the same read audits as format version 1 (JSON) entries.
per_read = find(ledger, "BM_LedgerBytesPerRead")
if per_read and "bytes_per_read" in per_read:
    json_v1 = per_read.get("json_v1_bytes_per_read")
    item = {"value": round(per_read["bytes_per_read"], 1),
            "unit": "bytes on disk per read audit (entry + SQLite row and index)",
            "goal": 160, "entry_bytes": round(per_read.get("entry_bytes", 0.0), 1),
            "reads": int(per_read.get("reads", 0))}
    if json_v1:
        item.update({"reference": round(json_v1, 1),
                     "reference_unit": "bytes per read audit as format version 1 (JSON) entries",
                     "ratio": round(per_read["bytes_per_read"] / json_v1, 3)})
    summary["ledger_bytes_per_read"] = item
for key, bench_name in (("inclusion_proof_us", "BM_InclusionProof"),
                        ("consistency_proof_us", "BM_ConsistencyProof")):
    produce = find(ledger, bench_name)
    verify = find(ledger, "BM_Verify" + bench_name[len("BM_"):].replace("Proof", ""))
    if produce:
        item = {"value": round(micros(produce), 3), "unit": "us to produce at 1,000,000 entries"}
        if verify:
            item["verify_us"] = round(micros(verify), 3)
        summary[key] = item

scrub = load_gbench("scrub")
if "BM_ScrubFast" in scrub and "BM_RawReadAndHash" in scrub:
    ours = scrub["BM_ScrubFast"]["bytes_per_second"] / 1e6
    raw = scrub["BM_RawReadAndHash"]["bytes_per_second"] / 1e6
    summary["scrub_mb_per_s"] = {"value": round(ours, 1), "unit": "MB/s (fast scrub)",
                                 "reference": round(raw, 1),
                                 "reference_unit": "MB/s read(2) + SHA-256 of the same files",
                                 "ratio": round(ours / raw, 3)}
    if "BM_ScrubDeep" in scrub:
        summary["scrub_mb_per_s"]["deep_mb_per_s"] = round(
            scrub["BM_ScrubDeep"]["bytes_per_second"] / 1e6, 1)


# C-CDA and FHIR import (issue 5). Three figures per format, all from the same
# run on the same in-memory corpus: full import (parse, map, encrypt, durable
# writes into a fresh patient), parse + map (the import without storage) and
# a bare parse of the same bytes (the reference). Wall-clock items/s: the
# benchmarks use real time, so items_per_second includes fsync waits.
def sig(x, digits=4):
    return float(f"{x:.{digits}g}")


interop = load_gbench("interop")
for fmt, items, bare_ref in (
        ("ccda", "docs", "C-CDA documents/s, libxml2 xmlReadMemory(XML_PARSE_NONET) + xmlFreeDoc"),
        ("fhir", "resources", "FHIR resources/s (Bundle entries), nlohmann::json::parse")):
    prefix = "BM_" + fmt.capitalize()
    imp = interop.get(prefix + "Import")
    pmap = interop.get(prefix + "ParseMap")
    bare = interop.get(prefix + "BareParse")
    if not (imp and pmap and bare):
        continue
    imp_s, pmap_s, bare_s = (b["items_per_second"] for b in (imp, pmap, bare))
    corpus = bare.get("label", "")
    summary[f"{fmt}_import_{items}_per_s"] = {
        "value": round(imp_s, 1),
        "unit": f"{items}/s imported (parse, map, encrypt, durable write; fresh patient each)",
        "reference": round(bare_s, 1), "reference_unit": bare_ref,
        "ratio": sig(imp_s / bare_s), "corpus": corpus,
        "segments_per_pass": imp.get("segments_per_pass")}
    summary[f"{fmt}_parse_map_{items}_per_s"] = {
        "value": round(pmap_s, 1), "unit": f"{items}/s parsed and mapped to segments, no storage",
        "reference": round(bare_s, 1), "reference_unit": bare_ref,
        "ratio": sig(pmap_s / bare_s), "corpus": corpus}
    summary[f"{fmt}_bare_parse_{items}_per_s"] = {
        "value": round(bare_s, 1), "unit": bare_ref, "corpus": corpus}
    for key, ours, what in (("parse", pmap_s, "parse + map"), ("import", imp_s, "full import")):
        summary[f"{fmt}_{key}_ratio_vs_bare"] = {
            "value": sig(ours / bare_s), "unit": "ratio",
            "reference": round(bare_s, 1), "reference_unit": bare_ref,
            "ours": round(ours, 1), "ours_unit": f"{items}/s {what}", "ratio": sig(ours / bare_s)}


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
hz = parse_wrk("http_healthz")
if hz:
    summary["http_healthz_per_s"] = {"value": hz["rps"], "unit": "requests/s",
                                     "non_2xx": hz["non_2xx"]}
rd = parse_wrk("http_read")
if rd:
    summary["http_read_per_s"] = {"value": rd["rps"], "unit": "requests/s", "non_2xx": rd["non_2xx"]}
    if "p99_ms" in rd:
        summary["http_read_p99_ms"] = {"value": rd["p99_ms"], "unit": "ms"}
    if hz and hz["rps"] > 0:
        # Issue 14 part 5: a decided, audited, decrypted segment read against
        # the same server answering /healthz in the same run (goal >= 0.5).
        summary["http_read_ratio_vs_healthz"] = {
            "value": round(rd["rps"] / hz["rps"], 3), "unit": "ratio", "goal": 0.5,
            "reference": hz["rps"], "reference_unit": "/healthz requests/s, same server and load"}

sm = parse_wrk("http_summary")
ex = parse_wrk("http_export")
if sm and "p99_ms" in sm:
    # The clinical summary of a 5,000-observation record, one client at a time
    # (goal: p99 under 50 ms), beside the FHIR export of the same record.
    entry = {"value": sm["p99_ms"], "unit": "ms", "goal": 50, "non_2xx": sm["non_2xx"],
             "requests_per_s": sm["rps"]}
    if ex and ex["rps"]:
        entry.update({"reference": ex.get("p99_ms"),
                      "reference_unit": "ms, p99 of the FHIR export of the same record",
                      "ratio_mean_latency_vs_export": round(ex["rps"] / sm["rps"], 3)})
    summary["summary_p99_ms"] = entry
sb = []
if os.path.exists(os.path.join(out_dir, "summary_bench.json")):
    with open(os.path.join(out_dir, "summary_bench.json")) as f:
        sb = json.load(f).get("benchmarks", [])
if sb:
    def stat(prefix, agg):
        for b in sb:
            if b.get("run_name", b["name"]).startswith(prefix) and b.get("aggregate_name") == agg:
                return b["real_time"]
        return None
    ours, read = stat("BM_Summary/", "p99"), stat("BM_SummaryReadParts/", "p99")
    if ours is not None:
        summary["summary_in_process_p99_ms"] = {
            "value": round(ours, 2), "unit": "ms",
            "reference": round(read, 2) if read is not None else None,
            "reference_unit": "ms, p99 of reading and parsing the same record's segments",
            "ratio": round(ours / read, 3) if read else None}

rn = parse_wrk("http_read_ledger_normal")
if rn and rd and rd["rps"] > 0:
    summary["http_read_per_s"]["with_ledger_synchronous_normal"] = rn["rps"]
    summary["http_read_per_s"]["ratio_full_vs_normal_ledger_sync"] = round(rd["rps"] / rn["rps"], 3)

with open(os.path.join(out_dir, "summary.json"), "w") as f:
    json.dump(summary, f, indent=2, sort_keys=True)
print(json.dumps(summary, indent=2, sort_keys=True))
