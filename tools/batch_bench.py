#!/usr/bin/env python3
"""The batch API benchmark (issue #5): N comparisons through batch_api against the mock
provider's OpenAI Batch API, then the same work through serial_bundle (sync calls), and a
side-by-side of HTTP calls per comparison, total cost, lps's peak memory and the time from a
job's end at the provider to its results being mapped back. Not part of the test suite.

    python3 tools/batch_bench.py [--count 100000] [--essay-bytes 1000] [--build-dir build-bench]

It builds lps, lps-loadgen and lps-mock-provider, runs everything on 127.0.0.1 and removes its
temporary files. docs/benchmarks.md has recorded figures.
"""

import argparse
import json
import os
import re
import shutil
import signal
import subprocess
import sys
import tempfile
import time
import urllib.request


def log(*args):
    print(*args, file=sys.stderr, flush=True)


def build(build_dir):
    subprocess.run(["cmake", "-S", ".", "-B", build_dir, "-G", "Ninja",
                    "-DCMAKE_BUILD_TYPE=Release"], check=True, stdout=subprocess.DEVNULL)
    subprocess.run(["cmake", "--build", build_dir, "--target", "lps", "lps-loadgen",
                    "lps-mock-provider"], check=True, stdout=sys.stderr)


def start(cmd, out_path, pattern, env=None):
    """Starts a server and waits for its "listening on http://127.0.0.1:PORT" line."""
    out = open(out_path, "w")
    proc = subprocess.Popen(cmd, stdout=out, stderr=subprocess.STDOUT, env=env)
    for _ in range(300):
        with open(out_path) as f:
            m = re.search(pattern, f.read())
        if m:
            return proc, int(m.group(1))
        if proc.poll() is not None:
            raise SystemExit(f"{cmd[0]} exited during start-up:\n" + open(out_path).read())
        time.sleep(0.1)
    proc.kill()
    raise SystemExit(f"{cmd[0]} did not report a port")


def get(url):
    with urllib.request.urlopen(url, timeout=30) as r:
        return r.read().decode()


def metric_sum(text, name, labels=""):
    total = 0.0
    for line in text.splitlines():
        if line.startswith(name) and labels in line and not line.startswith("#"):
            total += float(line.rsplit(" ", 1)[1])
    return total


def stop(proc):
    if proc.poll() is None:
        proc.send_signal(signal.SIGTERM)
        try:
            proc.wait(30)
        except subprocess.TimeoutExpired:
            proc.kill()


def run(args, mode, work):
    """One run; returns its figures."""
    bd = args.build_dir
    # No rate-limit headers: lps obeys them, and the mock's default window (10,000 requests a
    # minute) would pace the serial_bundle run rather than measure it.
    mock_cmd = [f"{bd}/lps-mock-provider", "--port=0", "--rate-limit-requests=0",
                "--rate-limit-tokens=0",
                f"--batch-processing-ms={args.processing_ms}", "--batch-validating-ms=200"]
    mock, mock_port = start(mock_cmd, f"{work}/mock-{mode}.out",
                            r"listening on https?://127\.0\.0\.1:(\d+)")
    env = dict(os.environ, OPENAI_API_KEY="test-key")
    flags = [f"{bd}/lps", "--http-port=0", f"--data-dir={work}/data-{mode}", "--log-level=info",
             f"--openai-base-url=http://127.0.0.1:{mock_port}/v1",
             "--openai-max-concurrent-calls=64"]
    if mode == "batch_api":
        flags += ["--queue-processing-mode=batch_api", "--openai-batch-api-mode=opportunistic",
                  f"--batch-api-min-items={min(args.count, 50000)}",
                  "--batch-api-max-wait-seconds=5", "--batch-api-poll-interval-seconds=0.5"]
    else:
        flags += ["--queue-processing-mode=serial_bundle"]
    lps, lps_port = start(flags, f"{work}/lps-{mode}.out",
                          r"lps listening on http://127\.0\.0\.1:(\d+)", env)
    try:
        started = time.time()
        loadgen = subprocess.run(
            [f"{bd}/lps-loadgen", f"--url=http://127.0.0.1:{lps_port}", f"--count={args.count}",
             "--mode=bulk", "--bulk-size=200", "--provider=openai", f"--pid={lps.pid}",
             f"--essay-bytes={args.essay_bytes}", "--timeout-seconds=1800"],
            capture_output=True, text=True)
        elapsed = time.time() - started
        if loadgen.returncode != 0:
            log(loadgen.stdout, loadgen.stderr)
            raise SystemExit(f"{mode}: the load generator reported a failure")
        stats = json.loads(get(f"http://127.0.0.1:{mock_port}/_mock/stats"))
        metrics = get(f"http://127.0.0.1:{lps_port}/metrics")
        jobs = json.loads(get(f"http://127.0.0.1:{lps_port}/api/v1/batch-jobs"))["jobs"]
        peak = re.search(r"server_peak_rss_mib\s+([0-9.]+)", loadgen.stdout)
        calls = stats["calls"] + stats.get("batch", {}).get("calls", 0)
        figures = {
            "mode": mode,
            "comparisons": args.count,
            "seconds": elapsed,
            "http_calls": calls,
            "calls_per_comparison": calls / args.count,
            "cost_usd": metric_sum(metrics, "llm_provider_cost_dollars_total",
                                   'provider="openai"'),
            "peak_rss_mib": float(peak.group(1)) if peak else None,
            "jobs": len(jobs),
            "items_per_job": [j["item_count"] for j in jobs],
            "loadgen": loadgen.stdout,
        }
        # Time from the provider job's end (first poll that saw it ended) to all of its
        # results mapped back (the job's last update, when it was stored as collected).
        figures["job_times"] = [
            (j["job_id"], j["item_count"], j["ended_at_ms"] - j["submitted_at_ms"],
             j["updated_at_ms"] - j["ended_at_ms"])
            for j in jobs if j["state"] == "collected" and j["ended_at_ms"] and j["submitted_at_ms"]]
        return figures
    finally:
        stop(lps)
        stop(mock)


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--count", type=int, default=100000)
    parser.add_argument("--essay-bytes", type=int, default=1000)
    parser.add_argument("--processing-ms", type=int, default=5000,
                        help="how long the mock takes to run a job")
    parser.add_argument("--build-dir", default="build-bench")
    parser.add_argument("--modes", default="batch_api,serial_bundle")
    args = parser.parse_args()
    os.chdir(os.path.join(os.path.dirname(os.path.abspath(__file__)), ".."))
    build(args.build_dir)
    work = tempfile.mkdtemp(prefix="lps-batch-bench.")
    try:
        results = [run(args, mode, work) for mode in args.modes.split(",")]
    finally:
        shutil.rmtree(work, ignore_errors=True)
    print(f"machine: nproc {os.cpu_count()}, count {args.count}, "
          f"essay bytes {args.essay_bytes}")
    print(f"{'mode':<14}{'seconds':>9}{'HTTP calls':>12}{'calls/comparison':>18}"
          f"{'cost USD':>11}{'peak RSS MiB':>14}{'jobs':>6}")
    for r in results:
        print(f"{r['mode']:<14}{r['seconds']:>9.1f}{r['http_calls']:>12}"
              f"{r['calls_per_comparison']:>18.5f}{r['cost_usd']:>11.4f}"
              f"{(r['peak_rss_mib'] or 0):>14.0f}{r['jobs']:>6}")
    for r in results:
        for job_id, items, running_ms, mapping_ms in r.get("job_times", []):
            print(f"job {job_id}: {items} items, submitted -> ended {running_ms} ms, "
                  f"ended -> results mapped back {mapping_ms} ms")
    if len(results) == 2 and results[1]["cost_usd"] > 0:
        print(f"cost batch_api / serial_bundle: {results[0]['cost_usd'] / results[1]['cost_usd']:.3f}")


if __name__ == "__main__":
    main()
