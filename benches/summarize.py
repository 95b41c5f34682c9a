#!/usr/bin/env python3
"""Turns the criterion results of the batch_decode bench into BENCHMARKS.md's table.

Usage: python3 benches/summarize.py [target/criterion]   (after `cargo bench ... --bench batch_decode`)

Reads each benchmark's `new/benchmark.json` (group, function, throughput) and `new/estimates.json`
(the slope estimate when criterion has one, else the mean, in ns per iteration) and prints one
markdown row per codec and record size: ours and kafka-protocol in records/s, ours in GB/s of
decompressed record-section bytes, the ratio, bare decompression, and ours as % of bare (a
figure above 100% means ours is faster than the floor, below means slower).
"""
import json
import os
import sys

root = sys.argv[1] if len(sys.argv) > 1 else "target/criterion"
results = {}
for dirpath, _, files in os.walk(root):
    if "benchmark.json" not in files or not dirpath.endswith("new"):
        continue
    with open(os.path.join(dirpath, "benchmark.json")) as f:
        bench = json.load(f)
    if not bench["group_id"].startswith("batch_decode/"):
        continue
    with open(os.path.join(dirpath, "estimates.json")) as f:
        est = json.load(f)
    ns = (est.get("slope") or est["mean"])["point_estimate"]
    tp = bench["throughput"]["ElementsAndBytes"]
    _, codec, size = bench["group_id"].split("/")
    results[(codec, size, bench["function_id"] or bench["value_str"])] = (ns, tp["elements"], tp["bytes"])

codecs = ["none", "gzip", "snappy", "lz4", "zstd"]
sizes = sorted({k[1] for k in results}, key=lambda s: int(s.rstrip("B")))
print("| codec | record size | ours records/s | ours GB/s | kafka-protocol records/s | ours/theirs "
      "| bare decompression GB/s | ours as % of bare |")
print("|---|---|---:|---:|---:|---:|---:|---:|")
for size in sizes:
    for codec in codecs:
        ours = results.get((codec, size, "ours"))
        theirs = results.get((codec, size, "kafka-protocol"))
        bare = results.get((codec, size, "bare"))
        if not ours or not theirs:
            continue
        rps = lambda r: r[1] / (r[0] * 1e-9)
        gbps = lambda r: r[2] / r[0]  # bytes per ns = GB/s
        bare_s = f"{gbps(bare):.2f}" if bare else "n/a"
        pct = f"{100 * bare[0] / ours[0]:.0f}%" if bare else "n/a"
        print(f"| {codec} | {size} | {rps(ours) / 1e6:.2f} M | {gbps(ours):.2f} | "
              f"{rps(theirs) / 1e6:.2f} M | {rps(ours) / rps(theirs):.2f}x | {bare_s} | {pct} |")
