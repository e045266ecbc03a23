#!/usr/bin/env python3
"""Fuzzes the controller's API with schemathesis against its own /api/openapi.json.

Starts a `witness serve` on a free port with a fresh data folder, creates an admin token for the
run (the fuzzer never sees the first admin's), runs `st run` with only the not_a_server_error
check, then counts every request and every 5xx from schemathesis' NDJSON report and greps the
daemon log for panics. Exit 0 only when no request got a 5xx.

    python3 -m venv /opt/witness-tools && /opt/witness-tools/bin/pip install schemathesis==4.32.5
    cargo build --workspace --bins
    python3 tests/fuzz/schemathesis_run.py --seconds 120

DELETE /api/tokens/{id} is left out: the fuzzer would revoke its own token and spend the rest of
the run on 401s. Every other operation is fuzzed, with all phases (coverage, fuzzing, stateful).
"""

import argparse
import base64
import collections
import glob
import json
import os
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import time
import urllib.request

ROOT = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))


def free_port():
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def call(url, method, token, body):
    data = json.dumps(body).encode()
    request = urllib.request.Request(url, data=data, method=method)
    request.add_header("Authorization", f"Bearer {token}")
    request.add_header("Content-Type", "application/json")
    with urllib.request.urlopen(request, timeout=30) as response:
        return json.loads(response.read() or b"null")


def find_st(given):
    for candidate in [given, shutil.which("st"), "/opt/witness-tools/bin/st", "/tmp/st-venv/bin/st"]:
        if candidate and os.path.exists(candidate):
            return candidate
    sys.exit("schemathesis_run.py: no `st` found; install schemathesis (see the docstring) or pass --st")


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--witness", default=os.path.join(ROOT, "target", "debug", "witness"))
    parser.add_argument("--st", default=None, help="the schemathesis CLI (default: st on PATH, /opt/witness-tools/bin/st)")
    parser.add_argument("--seconds", type=int, default=60, help="time budget of the fuzz run")
    parser.add_argument("--workers", default="2")
    parser.add_argument("--seed", default=None)
    parser.add_argument("--keep", action="store_true", help="keep the data folder, log and report")
    args = parser.parse_args()
    st = find_st(args.st)

    work = tempfile.mkdtemp(prefix="witness-fuzz-")
    data = os.path.join(work, "data")
    log_path = os.path.join(work, "daemon.log")
    port = free_port()
    base = f"http://127.0.0.1:{port}"
    log = open(log_path, "wb")
    daemon = subprocess.Popen(
        [args.witness, "serve", "--listen", f"127.0.0.1:{port}", "--data", data],
        stdout=log, stderr=subprocess.STDOUT, env={**os.environ, "RUST_LOG": "info"},
    )
    try:
        credential = os.path.join(data, "admin-credential.txt")
        deadline = time.time() + 30
        while True:
            try:
                urllib.request.urlopen(f"{base}/api/openapi.json", timeout=2).read()
                if os.path.exists(credential):
                    break
            except OSError:
                pass
            if time.time() > deadline or daemon.poll() is not None:
                sys.exit(f"witness serve did not start; log:\n{open(log_path).read()}")
            time.sleep(0.1)
        first = next(l[6:] for l in open(credential).read().splitlines() if l.startswith("token="))
        token = call(f"{base}/api/tokens", "POST", first, {"name": "schemathesis", "role": "admin"})["secret"]
        # Something for {number} to find.
        call(f"{base}/api/projects", "POST", token, {
            "number": "FUZZ-1", "name": "模糊测试项目", "category": "procurement",
            "opening": "2026-03-18T09:30:00+08:00",
        })

        report = os.path.join(work, "report")
        command = [
            st, "run", f"{base}/api/openapi.json",
            "-H", f"Authorization: Bearer {token}",
            "--checks", "not_a_server_error",
            "--exclude-path", "/api/tokens/{id}",
            "--max-time", str(args.seconds),
            "--workers", args.workers,
            "--report", "ndjson", "--report-dir", report,
            "--suppress-health-check", "all",
        ]
        if args.seed:
            command += ["--seed", args.seed]
        started = time.time()
        # In the temporary folder: schemathesis leaves a .schemathesis/ cache in its working folder.
        run = subprocess.run(command, capture_output=True, text=True, cwd=work)
        elapsed = time.time() - started

        statuses = collections.Counter()
        per_operation = collections.Counter()
        server_errors = []
        for path in glob.glob(os.path.join(report, "*.ndjson")):
            for line in open(path):
                event = json.loads(line)
                finished = event.get("ScenarioFinished")
                if not finished:
                    continue
                for interaction in (finished["recorder"].get("interactions") or {}).values():
                    response = interaction.get("response")
                    status = response["status_code"] if response else "no answer"
                    request = interaction["request"]
                    statuses[status] += 1
                    per_operation[f"{request['method']} {request['uri'].split('?')[0].replace(base, '')}"[:80]] += 1
                    if response and status >= 500:
                        content = response.get("content") or {}
                        body = base64.b64decode(content.get("$base64", "")).decode("utf-8", "replace")
                        server_errors.append(f"{request['method']} {request['uri']} → {status}: {body[:300]}")
        panics = [l for l in open(log_path, errors="replace") if "panicked" in l or "internal error" in l]
        total = sum(statuses.values())
        print(run.stdout[-3000:])
        print(f"statuses: {dict(sorted(statuses.items(), key=str))}")
        print(f"schemathesis: {total} requests in {elapsed:.0f} s over {len(per_operation)} distinct URLs, "
              f"{len(server_errors)} answered 5xx, {len(panics)} panics or internal errors in the daemon log")
        for error in server_errors[:20]:
            print("  5xx:", error)
        for line in panics[:20]:
            print("  log:", line.rstrip())
        if total == 0:
            print(run.stderr[-3000:])
            return 2
        return 1 if server_errors or panics else 0
    finally:
        daemon.send_signal(signal.SIGTERM)
        try:
            daemon.wait(timeout=10)
        except subprocess.TimeoutExpired:
            daemon.kill()
        log.close()
        if args.keep:
            print(f"kept {work}")
        else:
            shutil.rmtree(work, ignore_errors=True)


if __name__ == "__main__":
    sys.exit(main())
