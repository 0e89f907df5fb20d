#!/usr/bin/env python3
"""What one durable commit costs on this disk: appends of 4 KiB and 16 KiB to a file in DIR,
each followed by fdatasync (what SQLite does to its WAL at a commit with synchronous=FULL),
timed one by one. Prints p50 / p90 / p99 / max / mean in ms per size. Not part of the test
suite; see docs/benchmarks.md, "Queue-path latency at one request in flight".

    tools/fsync_probe.py [DIR] [COUNT]      (defaults: a new temp dir under /tmp, 500)
"""

import os
import statistics
import sys
import tempfile
import time


def probe(directory: str, count: int) -> None:
    path = os.path.join(directory, "fsync-probe")
    fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
    try:
        for size in (4096, 16384):
            block = b"x" * size
            times = []
            for _ in range(count):
                start = time.perf_counter()
                os.write(fd, block)
                os.fdatasync(fd)
                times.append((time.perf_counter() - start) * 1e3)
            times.sort()
            print(f"append {size:5d} B + fdatasync: n {count} p50 {times[count // 2]:.3f} ms"
                  f" p90 {times[int(count * 0.9)]:.3f} p99 {times[int(count * 0.99)]:.3f}"
                  f" max {times[-1]:.3f} mean {statistics.mean(times):.3f}")
    finally:
        os.close(fd)
        os.unlink(path)


def main() -> int:
    if len(sys.argv) > 3 or (len(sys.argv) > 2 and not sys.argv[2].isdigit()):
        print("usage: tools/fsync_probe.py [DIR] [COUNT]", file=sys.stderr)
        return 2
    count = int(sys.argv[2]) if len(sys.argv) > 2 else 500
    if len(sys.argv) > 1:
        probe(sys.argv[1], max(count, 1))
    else:
        with tempfile.TemporaryDirectory(prefix="lps-fsync-probe.") as directory:
            probe(directory, max(count, 1))
    return 0


if __name__ == "__main__":
    sys.exit(main())
