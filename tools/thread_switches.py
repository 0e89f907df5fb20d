#!/usr/bin/env python3
"""Wake-ups and CPU per request of each thread of a running process: voluntary context
switches (the thread blocked and was woken: a hand-off or a wait), involuntary ones and CPU
time, read from /proc/PID/task/*/{status,schedstat} before and after a load. Not part of the
test suite; see docs/benchmarks.md, "Queue-path latency at one request in flight".

    tools/thread_switches.py PID save FILE          # before the load
    tools/thread_switches.py PID diff FILE COUNT    # after COUNT requests: per request
"""

import json
import os
import sys


def snapshot(pid: str) -> dict:
    threads = {}
    for tid in os.listdir(f"/proc/{pid}/task"):
        base = f"/proc/{pid}/task/{tid}"
        try:
            with open(f"{base}/comm") as f:
                name = f.read().strip()
            with open(f"{base}/status") as f:
                fields = dict(line.split(":\t", 1) for line in f if ":\t" in line)
            with open(f"{base}/schedstat") as f:
                cpu_ns = int(f.read().split()[0])
        except FileNotFoundError:  # the thread ended meanwhile
            continue
        threads[tid] = [name, int(fields["voluntary_ctxt_switches"]),
                        int(fields["nonvoluntary_ctxt_switches"]), cpu_ns]
    return threads


def report(before: dict, after: dict, count: int) -> None:
    total_switches = 0
    total_cpu_us = 0.0
    for tid, (name, vol, invol, cpu_ns) in sorted(after.items(), key=lambda kv: int(kv[0])):
        vol0, invol0, cpu0 = before.get(tid, [name, 0, 0, 0])[1:]
        switches = vol - vol0
        cpu_us = (cpu_ns - cpu0) / 1e3 / count
        total_switches += switches
        total_cpu_us += cpu_us
        if switches or cpu_us >= 1:
            print(f"{tid:>8} {name:<16} wake-ups/request {switches / count:6.2f}"
                  f"  involuntary/request {(invol - invol0) / count:5.2f}"
                  f"  CPU us/request {cpu_us:7.1f}")
    print(f"all threads: wake-ups/request {total_switches / count:.2f},"
          f" CPU us/request {total_cpu_us:.0f}")


def main() -> int:
    args = sys.argv[1:]
    if len(args) == 3 and args[1] == "save":
        with open(args[2], "w") as f:
            json.dump(snapshot(args[0]), f)
        return 0
    if len(args) == 4 and args[1] == "diff" and args[3].isdigit() and int(args[3]) > 0:
        with open(args[2]) as f:
            before = json.load(f)
        report(before, snapshot(args[0]), int(args[3]))
        return 0
    print(__doc__.strip().splitlines()[-2].strip(), file=sys.stderr)
    print(__doc__.strip().splitlines()[-1].strip(), file=sys.stderr)
    return 2


if __name__ == "__main__":
    sys.exit(main())
