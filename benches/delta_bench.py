#!/usr/bin/env python3
"""Delta sink benchmark: one topic, one job, three ways, side by side in one run.

- kingest -> Parquet sink    (`kingest run --until-eof`, [sink] type = "parquet")
- kingest -> Delta sink      (the same job, [sink] type = "delta")
- kafka-delta-ingest         (`kafka-delta-ingest ingest TOPIC TABLE ...`, when --kdi is given)

The records are `kingest produce --generate N` events ({"ts": epoch ms, "uuid": 20 hex
characters, "count": int}) in a nisshi topic (memory storage) started here. Every run reads the
whole topic with a fresh consumer group into a fresh output directory; runs alternate, round
after round, and every run is reported (not the best).

Timing: from the process's start to the last row landing. kingest exits by itself once it is
caught up and everything is committed (`--until-eof`), so its time is its exit. kafka-delta-ingest
never stops on its own (on its main branch `--ends_at_latest_offsets` computes the end offsets
into an unused variable), so the table's log is polled every 20 ms until its `txn` actions
record the last offset of every partition, then it is sent SIGTERM. CPU time (user + system)
and peak RSS come from wait4(2)'s rusage of each process (so they include its start and, for
kafka-delta-ingest, its shutdown after the last commit). Linux carries a process's peak RSS
across exec(2), so a process started from this script reports at least this script's own RSS at
the time: the script therefore never loads pyarrow or deltalake itself (creating a table and
counting its rows run in a child Python), which keeps that floor near 20 MiB (printed).

Commit latency: the Delta sink logs each commit (`KINGEST_LOG=kingest::sink::delta=debug`)
with the time spent finishing and syncing its data files and the time spent creating the log
entry; the medians and maxima are reported per run.

Flush settings, the same for all: a commit at least every `--latency` seconds
(kingest `flush.age`, kafka-delta-ingest `--allowed_latency`), `--batch` records
(kingest `flush.rows` per partition; kafka-delta-ingest `--max_messages_per_batch`, which counts
all partitions, so it gets batch * partitions), 128 MiB (`flush.bytes`, `--min_bytes_per_file`).
kafka-delta-ingest needs its table to exist: it is created beforehand with the `deltalake`
Python package, with the same schema (ts long, uuid string, count integer); kafka-delta-ingest
then writes checkpoints every 10 versions (`--checkpoints`); kingest every 10 too
(`checkpoint_interval = 10`).

Usage:
  python3 benches/delta_bench.py --kingest target/release/kingest \\
      [--kdi /path/to/kafka-delta-ingest] [--records 2000000] [--partitions 4] [--rounds 3]
"""

import argparse
import json
import os
import re
import shutil
import signal
import socket
import statistics
import subprocess
import sys
import tempfile
import time


def free_port():
    s = socket.socket()
    s.bind(("127.0.0.1", 0))
    port = s.getsockname()[1]
    s.close()
    return port


def start_nisshi(work):
    port = free_port()
    log = open(os.path.join(work, "nisshi.log"), "w")
    proc = subprocess.Popen(
        ["nisshi", "broker", "--storage-engine", "memory://bench/",
         "--listener-url", f"tcp://127.0.0.1:{port}",
         "--advertised-listener-url", f"tcp://127.0.0.1:{port}",
         "--group-initial-rebalance-delay", "0s"],
        cwd=work, stdout=log, stderr=log, stdin=subprocess.DEVNULL)
    deadline = time.time() + 30
    while time.time() < deadline:
        try:
            socket.create_connection(("127.0.0.1", port), timeout=1).close()
            return proc, port
        except OSError:
            time.sleep(0.1)
    proc.kill()
    sys.exit("nisshi did not start")


def job(broker, topic, group, sink, args):
    return f"""
[source]
brokers = "{broker}"
topics = ["{topic}"]
group = "{group}"
start = "earliest"

[[columns]]
name = "ts"
type = "int64"

[[columns]]
name = "uuid"
type = "string"

[[columns]]
name = "count"
type = "int32"

[flush]
rows = {args.batch}
bytes = "128MiB"
age = "{args.latency}s"

{sink}
"""


def run_measured(cmd, env=None, done=None, poll=0.02):
    """Runs cmd; returns (seconds to done-or-exit, cpu seconds, peak RSS MiB, stderr text)."""
    err = tempfile.TemporaryFile()
    start = time.monotonic()
    proc = subprocess.Popen(cmd, env=env, stdout=subprocess.DEVNULL, stderr=err,
                            stdin=subprocess.DEVNULL)
    elapsed = None
    if done is not None:
        deadline = start + 3600
        while time.monotonic() < deadline:
            if done():
                elapsed = time.monotonic() - start
                break
            if proc.poll() is not None:
                break
            time.sleep(poll)
        if proc.poll() is None:
            proc.send_signal(signal.SIGTERM)
    _, status, usage = os.wait4(proc.pid, 0)
    if elapsed is None:
        elapsed = time.monotonic() - start
    err.seek(0)
    text = err.read().decode(errors="replace")
    if done is None and status != 0:
        sys.exit(f"{cmd[0]} failed ({status}):\n{text[-3000:]}")
    if done is not None and not done():
        sys.exit(f"{cmd[0]} stopped before the last row landed:\n{text[-3000:]}")
    return elapsed, usage.ru_utime + usage.ru_stime, usage.ru_maxrss / 1024, text


def log_txns(table):
    """appId -> version over the table's JSON commits."""
    out = {}
    log = os.path.join(table, "_delta_log")
    try:
        names = sorted(n for n in os.listdir(log) if n.endswith(".json") and not n.startswith("."))
    except FileNotFoundError:
        return out
    for n in names:
        try:
            with open(os.path.join(log, n)) as f:
                for line in f:
                    a = json.loads(line)
                    if "txn" in a:
                        out[a["txn"]["appId"]] = a["txn"]["version"]
        except (OSError, ValueError):
            pass
    return out


def count_rows(table):
    """Rows in the Delta table, read with the deltalake package in a child process."""
    out = subprocess.run([sys.executable, "-c",
                          "import sys; from deltalake import DeltaTable; "
                          "print(DeltaTable(sys.argv[1]).to_pyarrow_table().num_rows)", table],
                         capture_output=True, text=True)
    if out.returncode != 0:
        sys.exit(f"reading {table} with deltalake failed ({out.returncode}):\n{out.stderr[-3000:]}")
    return int(out.stdout)


def create_table(table):
    """The table kafka-delta-ingest writes to (it needs one): ts long, uuid string, count int."""
    subprocess.run([sys.executable, "-c",
                    "import sys, pyarrow as pa; from deltalake import DeltaTable; "
                    "DeltaTable.create(sys.argv[1], schema=pa.schema([('ts', pa.int64()), "
                    "('uuid', pa.string()), ('count', pa.int32())]))", table], check=True)


def own_rss_mib():
    """This script's resident set (the floor of the children's peak RSS, see above)."""
    with open("/proc/self/status") as f:
        for line in f:
            if line.startswith("VmRSS:"):
                return int(line.split()[1]) / 1024
    return 0.0


def commit_latencies(text):
    data, logs = [], []
    for m in re.finditer(r"delta commit.*?data_ms=([0-9.]+) log_ms=([0-9.]+)", text):
        data.append(float(m.group(1)))
        logs.append(float(m.group(2)))
    return data, logs


def main():
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--kingest", required=True)
    ap.add_argument("--kdi")
    ap.add_argument("--records", type=int, default=2_000_000)
    ap.add_argument("--partitions", type=int, default=4)
    ap.add_argument("--rounds", type=int, default=3)
    ap.add_argument("--latency", type=int, default=1)
    ap.add_argument("--batch", type=int, default=100_000)
    args = ap.parse_args()

    work = tempfile.mkdtemp(prefix="delta-bench-")
    nisshi, port = start_nisshi(work)
    broker = f"127.0.0.1:{port}"
    topic = "events"
    try:
        subprocess.run(["nisshi", "topic", "create", topic, "--partitions", str(args.partitions),
                        "--broker", f"tcp://{broker}"], cwd=work, check=True,
                       stdout=subprocess.DEVNULL)
        t = time.monotonic()
        subprocess.run([args.kingest, "produce", "--brokers", broker, "--topic", topic,
                        "--generate", str(args.records)], check=True, stdout=subprocess.DEVNULL)
        print(f"produced {args.records} records in {time.monotonic() - t:.1f} s", flush=True)
        # The end offsets: kingest check on a group that never ran reports the log ends.
        results = {"parquet": [], "delta": [], "kdi": []}
        for rnd in range(args.rounds):
            for kind in ["parquet", "delta"] + (["kdi"] if args.kdi else []):
                group = f"{kind}-{rnd}"
                out = os.path.join(work, group)
                if kind == "kdi":
                    create_table(out)
                    def done(out=out):
                        txns = log_txns(out)
                        mine = [v for k, v in txns.items() if k.startswith(f"{group}-")]
                        return len(mine) == args.partitions and sum(mine) + args.partitions == args.records
                    cmd = [args.kdi, "ingest", topic, out, "--kafka", broker,
                           "--consumer_group", group, "--app_id", group,
                           "--allowed_latency", str(args.latency),
                           "--max_messages_per_batch", str(args.batch * args.partitions),
                           "--min_bytes_per_file", str(128 << 20),
                           "--auto_offset_reset", "earliest", "--checkpoints", "--json", ""]
                    env = dict(os.environ, RUST_LOG="warn")
                    secs, cpu, rss, _ = run_measured(cmd, env=env, done=done)
                    lat = None
                else:
                    sink = (f'[sink]\ntype = "parquet"\npath = "{out}"' if kind == "parquet"
                            else f'[sink]\ntype = "delta"\npath = "{out}"\ncheckpoint_interval = 10')
                    cfg = os.path.join(work, f"{group}.toml")
                    with open(cfg, "w") as f:
                        f.write(job(broker, topic, group, sink, args))
                    env = dict(os.environ, KINGEST_LOG="warn,kingest::sink::delta=debug")
                    secs, cpu, rss, text = run_measured([args.kingest, "run", cfg, "--until-eof"], env=env)
                    lat = commit_latencies(text) if kind == "delta" else None
                if kind != "parquet":
                    rows = count_rows(out)
                    assert rows == args.records, f"{kind}: {rows} rows in the table, {args.records} produced"
                r = {"secs": secs, "rows_s": args.records / secs, "cpu": cpu, "rss": rss}
                if lat:
                    data, logs = lat
                    r.update(commits=len(data), data_med=statistics.median(data), data_max=max(data),
                             log_med=statistics.median(logs), log_max=max(logs))
                results[kind].append(r)
                extra = ""
                if lat:
                    extra = (f", {r['commits']} commits: data files median {r['data_med']:.1f} ms"
                             f" (max {r['data_max']:.1f}), log entry median {r['log_med']:.2f} ms"
                             f" (max {r['log_max']:.2f})")
                print(f"round {rnd + 1} {kind:8} {secs:7.2f} s  {r['rows_s']:>10,.0f} rows/s  "
                      f"cpu {cpu:6.2f} s  peak RSS {rss:7.1f} MiB{extra}", flush=True)
                shutil.rmtree(out, ignore_errors=True)
        print(f"\n(this script's own RSS, the floor of every peak RSS above: {own_rss_mib():.1f} MiB)")
        med = {k: {m: statistics.median(x[m] for x in v) for m in ("rows_s", "cpu", "rss")}
               for k, v in results.items() if v}
        for k, m in med.items():
            print(f"median {k:8} {m['rows_s']:>10,.0f} rows/s  cpu {m['cpu']:6.2f} s  peak RSS {m['rss']:7.1f} MiB")
        print(f"delta / parquet rows/s: {med['delta']['rows_s'] / med['parquet']['rows_s']:.1%}")
        if "kdi" in med:
            print(f"kingest delta / kafka-delta-ingest: rows/s {med['delta']['rows_s'] / med['kdi']['rows_s']:.2f}x, "
                  f"cpu {med['kdi']['cpu'] / med['delta']['cpu']:.2f}x less, "
                  f"peak RSS {med['kdi']['rss'] / med['delta']['rss']:.2f}x less")
    finally:
        nisshi.kill()
        nisshi.wait()
        shutil.rmtree(work, ignore_errors=True)


if __name__ == "__main__":
    main()
