#!/usr/bin/env python3
"""bench/store.py — durable delivery rate of the message store, next to
the machine's fsync rate.

Usage: bench/store.py BUILD_DIR [-n N] [-j PARALLEL] [--accounts M]
                      [--no-strace]

Uses BUILD_DIR/tests/store/deliver-loop (the store's public delivery API
with a real loop, PARALLEL deliveries in flight) in a temp dir on the
file system of $TMPDIR.  First measures the single-threaded fsync rate
(append 4 KiB + fsync in a loop for ~2 s), then for each scenario
delivers N messages and prints messages/second, and fsyncs per message
from a second run under `strace -f -c -e trace=fsync,fdatasync,syncfs` (strace
slows the process, so the rate comes from the run without it):
  - 4 KiB and 64 KiB messages to one account;
  - 4 KiB messages spread over M accounts (one account each);
  - 4 KiB messages to all M accounts at once (one spool file, M links).
A ratio deliveries/s over fsyncs/s above 1 means group commit pays off:
more durable deliveries per second than one fsync each would allow.
Prints figures; asserts nothing.
"""
import argparse
import os
import re
import shutil
import subprocess
import sys
import tempfile
import time


def fsync_rate(directory, seconds=2.0):
    """Single-threaded write(4 KiB) + fsync per second."""
    path = os.path.join(directory, "fsync-probe")
    block = b"x" * 4096
    n = 0
    fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
    try:
        start = time.monotonic()
        while time.monotonic() - start < seconds:
            os.write(fd, block)
            os.fsync(fd)
            n += 1
        elapsed = time.monotonic() - start
    finally:
        os.close(fd)
        os.unlink(path)
    return n / elapsed


def write_config(directory, accounts):
    data = os.path.join(directory, "data")
    lines = ["[core]", f"data_dir = {data}", "allow_root = yes",
             "log_level = warn", "[domain example.org]"]
    for a in accounts:
        lines += [f"[account {a}]", f"addresses = {a}@example.org"]
    path = os.path.join(directory, "bench.ini")
    with open(path, "w") as f:
        f.write("\n".join(lines) + "\n")
    return path, data


def run_once(helper, directory, accounts, n, parallel, size, multi,
             strace):
    """Deliver n messages into a fresh data dir.  Returns (seconds,
    fsync calls or None)."""
    cfg, data = write_config(directory, accounts)
    spool = os.path.join(directory, "spool")
    for d in (data, spool):
        shutil.rmtree(d, ignore_errors=True)
    os.makedirs(spool)
    cmd = [helper, "deliver", "-c", cfg, "-s", spool, "-n", str(n),
           "-j", str(parallel), "-b", str(size)] + \
        (["-m"] if multi else []) + accounts
    summary = os.path.join(directory, "strace.txt")
    if strace:
        cmd = ["strace", "-f", "-c", "-o", summary,
               "-e", "trace=fsync,fdatasync,syncfs"] + cmd
    r = subprocess.run(cmd, capture_output=True, text=True, timeout=600)
    if r.returncode != 0:
        sys.exit(f"deliver-loop failed: {r.stderr}")
    m = re.search(r"^done (\d+) ([\d.]+)$", r.stdout, re.M)
    if m is None or int(m.group(1)) != n:
        sys.exit(f"deliver-loop: unexpected output {r.stdout[-200:]}")
    calls = None
    if strace:
        calls = 0
        with open(summary) as f:
            for line in f:
                parts = line.split()
                if parts and parts[-1] in ("fsync", "fdatasync", "syncfs"):
                    # % time, seconds, usecs/call, calls, [errors,] name
                    calls += int(parts[3])
    return float(m.group(2)), calls


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("build_dir")
    ap.add_argument("-n", type=int, default=2000)
    ap.add_argument("-j", type=int, default=32)
    ap.add_argument("--accounts", type=int, default=10)
    ap.add_argument("--no-strace", action="store_true")
    args = ap.parse_args()
    helper = os.path.join(args.build_dir, "tests", "store", "deliver-loop")
    if not os.access(helper, os.X_OK):
        sys.exit(f"{helper} missing: run `make check` (or make "
                 f"tests/store/deliver-loop) in {args.build_dir}")
    strace = not args.no_strace and shutil.which("strace") is not None

    tmp = tempfile.mkdtemp(prefix="tessera-bench-store-")
    try:
        rate = fsync_rate(tmp)
        print(f"fsync rate (1 thread, 4 KiB append + fsync): "
              f"{rate:.0f}/s")
        many = [f"user{i}" for i in range(args.accounts)]
        scenarios = [
            ("4 KiB, 1 account", ["alice"], 4096, False),
            ("64 KiB, 1 account", ["alice"], 65536, False),
            (f"4 KiB, spread over {len(many)} accounts", many, 4096,
             False),
            (f"4 KiB, to all {len(many)} accounts", many, 4096, True),
        ]
        print(f"{args.n} messages each, {args.j} deliveries in flight")
        print(f"{'scenario':36} {'msg/s':>8} {'deliv/s':>8} "
              f"{'fsync/msg':>9} {'ratio':>6}")
        for name, accounts, size, multi in scenarios:
            secs, _ = run_once(helper, tmp, accounts, args.n, args.j, size,
                               multi, False)
            per_msg = "-"
            if strace:
                _, calls = run_once(helper, tmp, accounts, args.n, args.j,
                                    size, multi, True)
                per_msg = f"{calls / args.n:.2f}"
            msgs = args.n / secs
            # A message to M accounts is M durable deliveries.
            deliveries = msgs * (len(accounts) if multi else 1)
            print(f"{name:36} {msgs:8.0f} {deliveries:8.0f} "
                  f"{per_msg:>9} {deliveries / rate:6.2f}")
    finally:
        shutil.rmtree(tmp, ignore_errors=True)


if __name__ == "__main__":
    main()
