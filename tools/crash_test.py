#!/usr/bin/env python3
"""Crash test for lps: exactly one final result per accepted request, across SIGKILLs.

Runs lps (mock provider, small latency, some simulated errors) under load from a few
client threads, kills it with SIGKILL at a random moment in every cycle, restarts it on
the same data dir, and finally checks that every request answered 202 has exactly one
final result event: readable at GET /api/v1/results/{id} with a stable event_id, and
POSTed to the callback receiver, never with two different results for one request.

    python3 tools/crash_test.py [--binary build/lps] [--cycles 5] [--rate 500]
                                [--seconds-per-cycle 4] [--seed N] [--keep-dir] [--quick]
                                [--backend sqlite|postgres] [--pg-dir ./var/pg]

With --backend=postgres lps keeps its queue in a fresh database on the tools/pg.sh server
in --pg-dir (which must be running), handed to lps through its environment, and dropped at
the end.

Exit status: 0 when nothing was lost or duplicated, 1 otherwise, 2 on a setup problem
(binary missing, lps did not start, overall deadline passed).
Python 3 standard library only; binds and connects to 127.0.0.1 only.
See docs/operations.md, "Crash safety and the crash test".
"""

import argparse
import http.client
import json
import os
import random
import re
import shutil
import signal
import subprocess
import sys
import tempfile
import threading
import time
import uuid
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

HOST = "127.0.0.1"
LISTEN_RE = re.compile(r"lps listening on http://127\.0\.0\.1:(\d+)")
T0 = time.monotonic()


def now():
    """Seconds since the test started."""
    return time.monotonic() - T0


def log(msg):
    print(f"[{now():7.2f}s] {msg}", flush=True)


def outcome_of(event):
    """'Essay A' / 'Essay B' on success, 'error:<CODE>' on a final error event."""
    data = event.get("data") or {}
    err = data.get("error_detail")
    if err:
        return "error:" + str(err.get("error_code"))
    return str(data.get("winner"))


# --------------------------------------------------------------------------------------
# Callback receiver


class Receiver:
    """Records every POSTed event; answers 500 to a small fraction of first deliveries."""

    def __init__(self, fail_fraction, seed):
        self.lock = threading.Lock()
        self.rng = random.Random(seed)
        self.fail_fraction = fail_fraction
        # request_id -> list of dict(event_id, outcome, correlation_id, status, t)
        self.events = {}
        self.posts = 0
        self.refused = 0  # deliveries answered 500 on purpose
        self.malformed = 0
        self.resets = 0  # callback connections reset (lps killed mid-exchange)
        receiver = self

        class Handler(BaseHTTPRequestHandler):
            protocol_version = "HTTP/1.1"  # keep-alive, lps pools callback connections

            def log_message(self, *args):
                pass

            def do_POST(self):
                try:
                    n = int(self.headers.get("Content-Length") or 0)
                    body = self.rfile.read(n)
                except Exception:
                    self.close_connection = True
                    return
                status = receiver.record(body)
                payload = b"{}"
                self.send_response(status)
                self.send_header("Content-Type", "application/json")
                self.send_header("Content-Length", str(len(payload)))
                self.end_headers()
                self.wfile.write(payload)

        class Server(ThreadingHTTPServer):
            daemon_threads = True
            request_queue_size = 256  # lps opens up to 32 connections per origin at once

            def handle_error(self, request, client_address):
                # A SIGKILLed lps resets its callback connections: expected, not news.
                exc = sys.exc_info()[1]
                if isinstance(exc, (ConnectionError, TimeoutError)):
                    with receiver.lock:
                        receiver.resets += 1
                    return
                super().handle_error(request, client_address)

        self.server = Server((HOST, 0), Handler)
        self.port = self.server.server_address[1]
        self.thread = threading.Thread(target=self.server.serve_forever, name="receiver",
                                       daemon=True)

    def start(self):
        self.thread.start()

    def stop(self):
        self.server.shutdown()
        self.server.server_close()

    def record(self, body):
        try:
            event = json.loads(body)
            data = event["data"]
            rid = data["request_id"]
            rec = {"event_id": event["event_id"], "outcome": outcome_of(event),
                   "correlation_id": data.get("correlation_id"),
                   "event_type": event.get("event_type"), "t": now()}
        except Exception:
            with self.lock:
                self.malformed += 1
            return 400
        with self.lock:
            self.posts += 1
            first = rid not in self.events
            status = 200
            if first and self.rng.random() < self.fail_fraction:
                status = 500
                self.refused += 1
            rec["status"] = status
            self.events.setdefault(rid, []).append(rec)
        return status

    def snapshot(self):
        with self.lock:
            return {k: list(v) for k, v in self.events.items()}

    def acked_ids(self):
        with self.lock:
            return {k for k, v in self.events.items() if any(r["status"] == 200 for r in v)}


# --------------------------------------------------------------------------------------
# The lps process


class Lps:
    def __init__(self, binary, data_dir, log_path, extra_args):
        self.binary = binary
        self.data_dir = data_dir
        self.log_path = log_path
        self.extra_args = extra_args
        self.proc = None
        self.port = None
        self.generation = 0
        self.starts = []  # (generation, pid, port, started_at)

    def start(self, timeout=20.0):
        self.generation += 1
        args = [self.binary, f"--http-host={HOST}", "--http-port=0",
                f"--data-dir={self.data_dir}", "--log-level=warn"] + self.extra_args
        logf = open(self.log_path, "ab")
        logf.write(f"\n==== start #{self.generation} at {now():.2f}s: {' '.join(args)}\n"
                   .encode())
        logf.flush()
        t = time.monotonic()
        self.proc = subprocess.Popen(args, stdin=subprocess.DEVNULL, stdout=subprocess.PIPE,
                                     stderr=logf, start_new_session=True)
        logf.close()
        found = {}
        ready = threading.Event()
        proc = self.proc

        def drain():
            for raw in proc.stdout:
                line = raw.decode(errors="replace")
                m = LISTEN_RE.search(line)
                if m and not ready.is_set():
                    found["port"] = int(m.group(1))
                    ready.set()
            ready.set()

        threading.Thread(target=drain, name=f"lps-stdout-{self.generation}",
                         daemon=True).start()
        if not ready.wait(timeout) or "port" not in found:
            self.kill()
            raise RuntimeError(f"lps did not print its port within {timeout} s "
                               f"(exit code {proc.poll()}); see {self.log_path}")
        self.port = found["port"]
        self.starts.append((self.generation, proc.pid, self.port, now()))
        return time.monotonic() - t

    def kill(self):
        """SIGKILL and wait for the exit."""
        if self.proc and self.proc.poll() is None:
            self.proc.send_signal(signal.SIGKILL)
        if self.proc:
            self.proc.wait(timeout=30)
        self.port = None

    def terminate(self, timeout=30.0):
        """SIGTERM; returns the exit code (None when it had to be killed)."""
        self.proc.send_signal(signal.SIGTERM)
        try:
            rc = self.proc.wait(timeout=timeout)
        except subprocess.TimeoutExpired:
            self.kill()
            rc = None
        self.port = None
        return rc


# --------------------------------------------------------------------------------------
# Load


class Load:
    """Client threads: single and bulk submissions, each item with its own correlation_id."""

    def __init__(self, lps, receiver_port, rate, threads, seed):
        self.lps = lps
        self.callback_url = f"http://{HOST}:{receiver_port}/callback"
        self.rate = rate
        self.threads = threads
        self.seed = seed
        self.stop_event = threading.Event()
        self.lock = threading.Lock()
        self.accepted = {}   # queue_id -> dict(corr, t, gen, kind)
        self.sent = {}       # correlation_id -> (t, gen) for every item ever sent
        self.stats = {"http_requests": 0, "items_sent": 0, "conn_errors": 0,
                      "status_503": 0, "other_status": 0, "item_errors": 0,
                      "bad_reply": 0}
        self.workers = []

    def start(self):
        for i in range(self.threads):
            t = threading.Thread(target=self.worker, args=(i,), name=f"client-{i}",
                                 daemon=True)
            t.start()
            self.workers.append(t)

    def stop(self):
        self.stop_event.set()
        for t in self.workers:
            t.join(timeout=15)

    def bump(self, key, n=1):
        with self.lock:
            self.stats[key] += n

    def make_item(self, rng, gen):
        corr = str(uuid.UUID(int=rng.getrandbits(128), version=4))
        n = rng.getrandbits(32)
        item = {
            "user_prompt": (f"Which essay better answers the prompt?\n\n"
                            f"**Essay A (ID: a{n}):** The first essay, number {n}.\n\n"
                            f"**Essay B (ID: b{n}):** The second essay, number {n}."),
            "callback_url": self.callback_url,
            "correlation_id": corr,
            "priority": rng.choice([3, 5, 5, 5, 8]),
            "metadata": {"essay_a_id": f"a{n}", "essay_b_id": f"b{n}",
                         "bos_batch_id": "crash-test"},
        }
        if rng.random() < 0.2:  # breaks bundles: a different compatibility class
            item["metadata"]["cj_llm_batching_mode"] = "per_request"
        with self.lock:
            self.sent[corr] = (now(), gen)
        return item

    def worker(self, index):
        rng = random.Random(f"{self.seed}-client-{index}")
        per_thread = self.rate / self.threads
        conn, conn_port = None, None
        next_at = time.monotonic()
        while not self.stop_event.is_set():
            port = self.lps.port
            gen = self.lps.generation
            if port is None:
                time.sleep(0.02)
                continue
            if conn is None or conn_port != port:
                if conn:
                    conn.close()
                conn, conn_port = http.client.HTTPConnection(HOST, port, timeout=5), port
            bulk = rng.random() < 0.4
            count = rng.randint(2, 10) if bulk else 1
            # Pacing: count items per request; never burst more than 1 s of backlog.
            next_at = max(next_at + count / per_thread, time.monotonic() - 1.0)
            delay = next_at - time.monotonic()
            if delay > 0 and self.stop_event.wait(delay):
                break
            items = [self.make_item(rng, gen) for _ in range(count)]
            if bulk:
                path, body = "/api/v1/comparisons", {"requests": items}
            else:
                path, body = "/api/v1/comparison", items[0]
            self.bump("http_requests")
            self.bump("items_sent", count)
            try:
                conn.request("POST", path, body=json.dumps(body).encode(),
                             headers={"Content-Type": "application/json"})
                resp = conn.getresponse()
                raw = resp.read()
                status = resp.status
            except Exception:
                self.bump("conn_errors")
                conn.close()
                conn = None
                time.sleep(0.05)
                continue
            t = now()
            if status == 503:
                self.bump("status_503")
                continue
            if status != 202:
                self.bump("other_status")
                continue
            try:
                reply = json.loads(raw)
                results = reply["results"] if bulk else [reply]
                if len(results) != count:
                    raise ValueError("result count")
            except Exception:
                self.bump("bad_reply")
                continue
            with self.lock:
                for item, r in zip(items, results):
                    if "queue_id" in r:
                        self.accepted[r["queue_id"]] = {
                            "corr": item["correlation_id"], "t": t, "gen": gen,
                            "kind": "bulk" if bulk else "single",
                            "reply_corr": r.get("correlation_id")}
                    else:
                        self.stats["item_errors"] += 1
        if conn:
            conn.close()

    def accepted_snapshot(self):
        with self.lock:
            return dict(self.accepted)


# --------------------------------------------------------------------------------------
# Reading results


def fetch_results(port, ids, threads=4, timeout=5.0):
    """GET /api/v1/results/{id} for every id; returns id -> (status, event or None)."""
    ids = list(ids)
    out = {}
    lock = threading.Lock()

    def work(chunk):
        conn = None
        for qid in chunk:
            for attempt in range(3):
                try:
                    if conn is None:
                        conn = http.client.HTTPConnection(HOST, port, timeout=timeout)
                    conn.request("GET", f"/api/v1/results/{qid}")
                    resp = conn.getresponse()
                    raw = resp.read()
                    event = None
                    if resp.status == 200:
                        event = json.loads(raw)
                    with lock:
                        out[qid] = (resp.status, event)
                    break
                except Exception:
                    if conn:
                        conn.close()
                    conn = None
                    if attempt == 2:
                        with lock:
                            out[qid] = (0, None)
                    time.sleep(0.05)
        if conn:
            conn.close()

    chunks = [ids[i::threads] for i in range(threads)]
    ts = [threading.Thread(target=work, args=(c,), daemon=True) for c in chunks if c]
    for t in ts:
        t.start()
    for t in ts:
        t.join()
    return out


# --------------------------------------------------------------------------------------
# Main


def parse_args():
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--binary", default="build/lps")
    p.add_argument("--cycles", type=int, default=None, help="kill/restart cycles (5)")
    p.add_argument("--rate", type=float, default=None, help="items per second (500)")
    p.add_argument("--seconds-per-cycle", type=float, default=None, help="(4)")
    p.add_argument("--seed", type=int, default=None)
    p.add_argument("--keep-dir", action="store_true", help="keep the data dir and log")
    p.add_argument("--quick", action="store_true",
                   help="CI mode: 2 cycles of ~2 s at a lower rate (< 40 s in all)")
    p.add_argument("--threads", type=int, default=4, help="client threads (4)")
    p.add_argument("--drain-timeout", type=float, default=None,
                   help="seconds to wait for every result after the load (120; quick 20)")
    p.add_argument("--callback-fail-fraction", type=float, default=0.02,
                   help="fraction of first deliveries answered 500 (0.02)")
    p.add_argument("--mock-latency-ms", type=int, default=25)
    p.add_argument("--mock-latency-jitter-ms", type=int, default=20)
    p.add_argument("--mock-error-rate", type=float, default=0.2)
    p.add_argument("--queue-max-retries", type=int, default=2)
    p.add_argument("--backend", choices=["sqlite", "postgres"], default="sqlite",
                   help="store backend (sqlite); postgres: a fresh database on the "
                        "tools/pg.sh server in --pg-dir")
    p.add_argument("--pg-dir", default="./var/pg",
                   help="directory of the running tools/pg.sh server (./var/pg)")
    p.add_argument("--lps-arg", action="append", default=[],
                   help="extra lps flag, repeatable (e.g. --lps-arg=--queue-processing-mode=per_request)")
    a = p.parse_args()
    quick = a.quick
    if a.cycles is None:
        a.cycles = 2 if quick else 5
    if a.rate is None:
        a.rate = 150.0 if quick else 500.0
    if a.seconds_per_cycle is None:
        a.seconds_per_cycle = 2.0 if quick else 4.0
    if a.drain_timeout is None:
        a.drain_timeout = 20.0 if quick else 120.0
    if a.seed is None:
        a.seed = random.SystemRandom().randrange(1 << 31)
    return a


class PgDatabase:
    """A fresh database on the tools/pg.sh server in `pg_dir`, for one run: its URL goes to
    lps through the environment (never on a command line lps shows), and it is dropped by
    drop(). psql gets the server URL on its command line: a throw-away test server."""

    def __init__(self, pg_dir):
        pg_sh = os.path.join(os.path.dirname(os.path.abspath(__file__)), "pg.sh")
        server = subprocess.run(["bash", pg_sh, "url", pg_dir], check=True,
                                capture_output=True, text=True).stdout.strip()
        self.server = server
        self.name = f"lps_crash_{os.getpid()}"
        self._psql(f"DROP DATABASE IF EXISTS {self.name} WITH (FORCE)")
        self._psql(f"CREATE DATABASE {self.name}")
        self.url = server.rsplit("/", 1)[0] + "/" + self.name

    def _psql(self, sql):
        subprocess.run(["psql", self.server, "-qc", sql], check=True,
                       stdout=subprocess.DEVNULL)

    def environment(self):
        return {"LLM_PROVIDER_SERVICE_STORE_BACKEND": "postgres",
                "LLM_PROVIDER_SERVICE_POSTGRES_URL": self.url}

    def drop(self):
        try:
            self._psql(f"DROP DATABASE IF EXISTS {self.name} WITH (FORCE)")
        except Exception as e:
            log(f"crash test: could not drop database {self.name}: {e!r}")


def resolve_binary(path):
    if os.path.isabs(path) or os.path.exists(path):
        return os.path.abspath(path)
    root = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
    return os.path.join(root, path)


def main():
    a = parse_args()
    binary = resolve_binary(a.binary)
    if not os.access(binary, os.X_OK):
        print(f"crash_test: no executable lps at {binary} (build it, or pass --binary)",
              file=sys.stderr)
        return 2
    database = None
    if a.backend == "postgres":
        try:
            database = PgDatabase(a.pg_dir)
        except (OSError, subprocess.CalledProcessError) as e:
            print(f"crash_test: no PostgreSQL database on the server in {a.pg_dir}: {e}",
                  file=sys.stderr)
            return 2
        os.environ.update(database.environment())  # lps inherits it
    try:
        return run(a, binary)
    finally:
        if database:
            database.drop()


def run(a, binary):
    rng = random.Random(a.seed)
    work = tempfile.mkdtemp(prefix="lps-crash-")
    data_dir = os.path.join(work, "data")
    os.makedirs(data_dir)
    log_path = os.path.join(work, "lps.log")
    # Overall deadline: the load, the drain, and slack for starts, stops and checks.
    budget = a.cycles * a.seconds_per_cycle * 1.2 + a.drain_timeout + (15 if a.quick else 90)
    deadline = time.monotonic() + budget
    log(f"crash test: binary {binary}, store {a.backend}, cycles {a.cycles}, rate {a.rate:g}/s, "
        f"{a.seconds_per_cycle:g} s per cycle, seed {a.seed}, data dir {data_dir}, "
        f"deadline {budget:.0f} s")

    lps_args = [f"--mock-latency-ms={a.mock_latency_ms}",
                f"--mock-latency-jitter-ms={a.mock_latency_jitter_ms}",
                f"--mock-error-rate={a.mock_error_rate}",
                f"--queue-max-retries={a.queue_max_retries}"] + a.lps_arg
    receiver = Receiver(a.callback_fail_fraction, a.seed)
    receiver.start()
    lps = Lps(binary, data_dir, log_path, lps_args)
    load = None
    failed_setup = False
    problems = []
    report = {}

    def watchdog():
        while time.monotonic() < deadline:
            time.sleep(0.5)
        log(f"crash test: overall deadline of {budget:.0f} s passed; killing lps")
        try:
            lps.kill()
        finally:
            print(f"crash test: ABORTED (deadline); data dir kept: {work}", flush=True)
            os._exit(2)

    threading.Thread(target=watchdog, name="watchdog", daemon=True).start()

    kills = []  # (cycle, generation, pid, t_kill, accepted_so_far)
    try:
        took = lps.start()
        log(f"lps #{lps.generation} (pid {lps.proc.pid}) listening on port {lps.port} "
            f"after {took:.2f} s; receiver on port {receiver.port}")
        load = Load(lps, receiver.port, a.rate, a.threads, a.seed)
        load.start()
        for cycle in range(1, a.cycles + 1):
            run_for = rng.uniform(0.25, 1.0) * a.seconds_per_cycle
            time.sleep(run_for)
            pid, gen = lps.proc.pid, lps.generation
            acc = len(load.accepted)
            t_kill = now()
            lps.kill()
            kills.append((cycle, gen, pid, t_kill, acc))
            took = lps.start()
            log(f"cycle {cycle}/{a.cycles}: SIGKILL lps #{gen} (pid {pid}) after "
                f"{run_for:.2f} s; lps #{lps.generation} up on port {lps.port} in "
                f"{took:.2f} s; accepted so far {len(load.accepted)}, callbacks so far "
                f"{receiver.posts}, connection errors {load.stats['conn_errors']}")
            if cycle < a.cycles:
                time.sleep(max(0.0, a.seconds_per_cycle - run_for))
        # Some load on the last instance too, then stop it.
        time.sleep(a.seconds_per_cycle / 2)
        load.stop()
        accepted = load.accepted_snapshot()
        log(f"load stopped: {len(accepted)} accepted of {load.stats['items_sent']} items "
            f"sent; draining (up to {a.drain_timeout:g} s)")

        # Drain: every accepted id final at GET /api/v1/results, and acknowledged by the
        # receiver (callbacks answered 500 are retried with backoff).
        drain_end = time.monotonic() + a.drain_timeout
        finals = {}  # queue_id -> event from the first GET 200
        pending = set(accepted)
        while True:
            got = fetch_results(lps.port, pending)
            for qid, (status, event) in got.items():
                if status == 200:
                    finals[qid] = event
            pending -= set(finals)
            acked = receiver.acked_ids()
            unacked = [q for q in accepted if q not in acked]
            if (not pending and not unacked) or time.monotonic() > drain_end:
                break
            time.sleep(0.5)
        log(f"drain: {len(finals)}/{len(accepted)} final, "
            f"{len(accepted) - len(unacked)}/{len(accepted)} acknowledged callbacks")

        # Ids the receiver saw that were stored but whose 202 was lost by a kill.
        events = receiver.snapshot()
        extra = sorted(set(events) - set(accepted))
        extra_get = fetch_results(lps.port, extra)
        for qid, (status, event) in extra_get.items():
            if status == 200:
                finals[qid] = event

        # Second read of everything, then SIGTERM, then a final restart and a third read.
        all_ids = list(accepted) + extra
        second = fetch_results(lps.port, all_ids)
        rc1 = lps.terminate()
        log(f"SIGTERM lps #{lps.generation}: exit code {rc1}")
        took = lps.start()
        log(f"final restart: lps #{lps.generation} up on port {lps.port} in {took:.2f} s")
        third = fetch_results(lps.port, all_ids)
        time.sleep(1.5)  # anything left undelivered would be redelivered now
        rc2 = lps.terminate()
        log(f"SIGTERM lps #{lps.generation}: exit code {rc2}")
        events = receiver.snapshot()

        # ---- verification
        sent = dict(load.sent)
        lost, lost_callbacks, duplicates, unstable = [], [], [], []
        completed = failed = expired = 0
        redeliveries = 0
        unknown_events = []
        for qid in all_ids:
            evs = events.get(qid, [])
            ev_ids = {e["event_id"] for e in evs}
            outcomes = {e["outcome"] for e in evs}
            reads = [finals.get(qid)] + [x.get(qid, (0, None))[1] for x in (second, third)]
            statuses = [200 if finals.get(qid) else 0] + [x.get(qid, (0, None))[0]
                                                          for x in (second, third)]
            if any(r is None for r in reads):
                lost.append((qid, statuses))
                if not evs:
                    continue
            read_ids = {r["event_id"] for r in reads if r}
            read_outcomes = {outcome_of(r) for r in reads if r}
            if len(read_ids) > 1:
                unstable.append((qid, sorted(read_ids)))
            if len(ev_ids | read_ids) > 1 or len(outcomes | read_outcomes) > 1:
                duplicates.append((qid, sorted(ev_ids | read_ids),
                                   sorted(outcomes | read_outcomes)))
            if qid in accepted and not any(e["status"] == 200 for e in evs):
                lost_callbacks.append(qid)
            if evs:
                redeliveries += len(evs) - 1
            first_read = next((r for r in reads if r), None)
            o = outcome_of(first_read) if first_read else (evs[0]["outcome"] if evs else "")
            if o == "error:EXPIRED":
                expired += 1
            elif o.startswith("error:"):
                failed += 1
            elif o:
                completed += 1
        for qid, evs in events.items():
            for e in evs:
                if e["correlation_id"] not in sent or e["event_type"] != "LLMComparisonResultV1":
                    unknown_events.append((qid, e["correlation_id"]))
        # One submitted item (correlation_id) must map to one queue_id only.
        by_corr = {}
        for qid, evs in events.items():
            for e in evs:
                by_corr.setdefault(e["correlation_id"], set()).add(qid)
        for qid, info in accepted.items():
            by_corr.setdefault(info["corr"], set()).add(qid)
        double_stored = {c: sorted(q) for c, q in by_corr.items() if len(q) > 1}
        mismatched_corr = [q for q, info in accepted.items()
                           if any(e["correlation_id"] != info["corr"]
                                  for e in events.get(q, []))]

        report = {
            "cycles": len(kills), "accepted": len(accepted), "completed": completed,
            "failed": failed, "expired": expired, "lost": len(lost),
            "lost_callbacks": len(lost_callbacks),
            "duplicates": len(duplicates) + len(double_stored),
            "redeliveries": redeliveries,
            "accepted_unacknowledged": len(extra),
            "callbacks_refused_500": receiver.refused,
            "callback_conn_resets": receiver.resets,
            "unknown_events": len(unknown_events) + receiver.malformed,
            "items_sent": load.stats["items_sent"],
            "conn_errors": load.stats["conn_errors"], "status_503": load.stats["status_503"],
            "other_status": load.stats["other_status"] + load.stats["bad_reply"],
            "exit_codes": [rc1, rc2],
        }
        if lost:
            problems.append(f"LOST (accepted, no final result at GET): {len(lost)}")
            for qid, st in lost[:20]:
                info = accepted.get(qid, {})
                problems.append(f"  {qid} accepted at {info.get('t', 0):.2f}s by lps "
                                f"#{info.get('gen')} ({info.get('kind')}), GET statuses "
                                f"{st}, callbacks {events.get(qid, [])}")
        if lost_callbacks:
            problems.append(f"LOST CALLBACKS (accepted, never acknowledged by the "
                            f"receiver): {len(lost_callbacks)}")
            for qid in lost_callbacks[:20]:
                info = accepted[qid]
                problems.append(f"  {qid} accepted at {info['t']:.2f}s by lps #{info['gen']}, "
                                f"callbacks {events.get(qid, [])}")
        if duplicates:
            problems.append(f"DUPLICATES (different final results for one id): "
                            f"{len(duplicates)}")
            for qid, ids, outs in duplicates[:20]:
                info = accepted.get(qid, {})
                problems.append(f"  {qid} accepted at {info.get('t', 0):.2f}s by lps "
                                f"#{info.get('gen')}: event_ids {ids}, outcomes {outs}, "
                                f"callbacks {events.get(qid, [])}")
        if unstable:
            problems.append(f"UNSTABLE event_id at GET: {unstable[:20]}")
        if double_stored:
            problems.append(f"DOUBLE-STORED (one submitted item, several queue_ids): "
                            f"{list(double_stored.items())[:20]}")
        if unknown_events or receiver.malformed:
            problems.append(f"UNKNOWN/MALFORMED events: {unknown_events[:20]}, "
                            f"malformed {receiver.malformed}")
        if mismatched_corr:
            problems.append(f"CORRELATION_ID MISMATCH: {mismatched_corr[:20]}")
        if rc1 != 0 or rc2 != 0:
            problems.append(f"lps exit codes after SIGTERM: {rc1}, {rc2} (expected 0)")
    except Exception as e:  # setup failures: lps did not start, etc.
        failed_setup = True
        problems.append(f"crash test could not run: {e!r}")
    finally:
        if load:
            load.stop_event.set()
        try:
            lps.kill()
        except Exception:
            pass
        receiver.stop()

    print()
    print("crash test summary")
    if report:
        for k in ("cycles", "accepted", "completed", "failed", "expired", "lost",
                  "lost_callbacks", "duplicates", "redeliveries", "accepted_unacknowledged",
                  "callbacks_refused_500", "callback_conn_resets", "unknown_events",
                  "items_sent", "conn_errors", "status_503", "other_status", "exit_codes"):
            print(f"  {k:24} {report[k]}")
        for c, gen, pid, t, acc in kills:
            print(f"  kill {c}: lps #{gen} pid {pid} at {t:.2f}s ({acc} accepted before)")
    print(f"  seed                     {a.seed}")
    print(f"  elapsed                  {now():.1f} s")
    ok = not problems
    for p in problems:
        print(p)
    keep = a.keep_dir or not ok
    if keep:
        store = os.path.join(data_dir, "lps.db") if a.backend == "sqlite" else "PostgreSQL"
        print(f"  data dir kept: {data_dir} (store {store}, log {log_path})")
    else:
        shutil.rmtree(work, ignore_errors=True)
    print("RESULT: " + ("PASS" if ok else "FAIL"), flush=True)
    if failed_setup:
        return 2
    return 0 if ok else 1


if __name__ == "__main__":
    sys.exit(main())
