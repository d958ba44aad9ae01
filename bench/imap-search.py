#!/usr/bin/env python3
"""bench/imap-search.py — IMAP SELECT and SEARCH on a large mailbox.

Usage: bench/imap-search.py [--build DIR] [-n MESSAGES] [-r REPEATS]

Issue 7 asks for SEARCH results "on mailboxes of 100,000 messages in well
under a second for flag/date/size keys".  This script imports N messages
(default 100,000; dates spread over two years, sizes 200 B to 8 KiB,
about half \\Seen, a tenth \\Flagged, some keywords) with `tessera import
mbox`, starts tessera with the imap module on 127.0.0.1, and times, from
Python's imaplib: SELECT, then each SEARCH (median of REPEATS), checking
each result's count against what the generator put in.  It prints
seconds per command and the server's RSS after SELECT.  Run by hand;
asserts nothing; stops the server it starts.
"""
import argparse
import imaplib
import os
import random
import shutil
import socket
import subprocess
import sys
import tempfile
import time

HERE = os.path.dirname(os.path.abspath(__file__))
REPO = os.path.dirname(HERE)


def free_port():
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def make_mbox(path, n, seed=7):
    """Write n messages; return what each search should find."""
    rnd = random.Random(seed)
    start = 1735689600  # 2025-01-01
    counts = {"seen": 0, "unseen": 0, "flagged": 0, "since": 0,
              "larger": 0, "smaller": 0, "kw": 0, "unseen_flagged": 0}
    since = 1767225600  # 2026-01-01
    with open(path, "w") as f:
        for i in range(n):
            t = start + rnd.randrange(2 * 365 * 86400)
            size = rnd.choice((200, 500, 1500, 3000, 8000))
            seen = rnd.random() < 0.5
            flagged = rnd.random() < 0.1
            kw = rnd.random() < 0.05
            date = time.strftime("%a %b %d %H:%M:%S %Y", time.gmtime(t))
            hdate = time.strftime("%a, %d %b %Y %H:%M:%S +0000",
                                  time.gmtime(t))
            f.write(f"From sender{i % 97}@example.net {date}\n"
                    f"From: sender{i % 97}@example.net\n"
                    f"To: alice@example.org\nSubject: message {i}\n"
                    f"Date: {hdate}\nMessage-ID: <m{i}@example.net>\n")
            if seen:
                f.write("Status: RO\n")
            if flagged:
                f.write("X-Status: F\n")
            if kw:
                f.write("X-Keywords: $Work\n")
            f.write("\n" + ("x" * 76 + "\n") * max(1, size // 77) + "\n")
            counts["seen"] += seen
            counts["unseen"] += not seen
            counts["flagged"] += flagged
            counts["unseen_flagged"] += flagged and not seen
            counts["kw"] += kw
            counts["since"] += t >= since
            counts["larger"] += size >= 3000
            counts["smaller"] += size <= 200
    return counts


def rss_kib(pid):
    with open(f"/proc/{pid}/status") as f:
        for line in f:
            if line.startswith("VmRSS:"):
                return int(line.split()[1])
    return 0


def main():
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--build", default=os.path.join(REPO, "build"))
    ap.add_argument("-n", "--messages", type=int, default=100000)
    ap.add_argument("-r", "--repeats", type=int, default=3)
    args = ap.parse_args()
    tessera = os.path.join(args.build, "tessera")
    imap_dir = os.path.join(args.build, "modules", "imap", ".libs")
    if not os.path.exists(tessera) or not os.path.isdir(imap_dir):
        sys.exit(f"no tessera build with the imap module in {args.build}")
    tmp = tempfile.mkdtemp(prefix="tessera-bench-imap-")
    proc = None
    try:
        port = free_port()
        cfg = os.path.join(tmp, "tessera.ini")
        with open(cfg, "w") as f:
            f.write(f"[core]\ndata_dir = {tmp}/data\nmodule_dir = {imap_dir}"
                    "\nallow_root = yes\nlog_level = warn\n\n"
                    "[domain example.org]\n\n[account alice]\n"
                    "addresses = alice@example.org\n\n"
                    "[module imap]\nenabled = yes\n"
                    "allow_plaintext_auth = yes\n\n"
                    f"[listener imap]\naddress = 127.0.0.1\nport = {port}\n"
                    "protocol = imap\nmax_line = 64k\n"
                    "memory_budget = 64M\n")
        mbox = os.path.join(tmp, "big.mbox")
        t0 = time.monotonic()
        want = make_mbox(mbox, args.messages)
        print(f"generated {args.messages} messages in "
              f"{time.monotonic() - t0:.1f} s")
        subprocess.run([tessera, "account", "passwd", "alice", "-c", cfg],
                       input="pw\n", text=True, check=True,
                       capture_output=True)
        t0 = time.monotonic()
        subprocess.run([tessera, "import", "mbox", "alice", "Inbox", mbox,
                        "-c", cfg], check=True, capture_output=True)
        print(f"imported in {time.monotonic() - t0:.1f} s")
        os.unlink(mbox)
        log = open(os.path.join(tmp, "server.log"), "w")
        proc = subprocess.Popen([tessera, "serve", "-c", cfg,
                                 "--allow-root"], stdout=log,
                                stderr=subprocess.STDOUT)
        deadline = time.monotonic() + 20
        while True:
            try:
                c = imaplib.IMAP4("127.0.0.1", port, timeout=120)
                break
            except OSError:
                if time.monotonic() > deadline:
                    raise
                time.sleep(0.1)
        c.login("alice", "pw")
        t0 = time.monotonic()
        typ, data = c.select("INBOX")
        print(f"SELECT: {time.monotonic() - t0:.3f} s, {data[0].decode()} "
              f"messages, server RSS {rss_kib(proc.pid) // 1024} MiB")
        searches = [
            ("SEEN", want["seen"]),
            ("UNSEEN", want["unseen"]),
            ("FLAGGED", want["flagged"]),
            ("UNSEEN FLAGGED", want["unseen_flagged"]),
            ("SINCE 1-Jan-2026", want["since"]),
            ("LARGER 2999", want["larger"]),
            ("SMALLER 500", want["smaller"]),
            ("KEYWORD $Work", want["kw"]),
            ("OR FLAGGED LARGER 2999", None),
            ("NOT SEEN SINCE 1-Jan-2026 LARGER 2999", None),
        ]
        print(f"{'SEARCH':40} {'seconds':>8} {'found':>8} {'expected':>8}")
        for crit, expected in searches:
            times = []
            for _ in range(args.repeats):
                t0 = time.monotonic()
                typ, data = c.uid("SEARCH", None, crit)
                times.append(time.monotonic() - t0)
            found = len(data[0].split()) if data[0] else 0
            times.sort()
            print(f"{crit:40} {times[len(times) // 2]:8.3f} {found:8d} "
                  f"{'' if expected is None else expected:>8}")
        c.logout()
    finally:
        if proc is not None:
            proc.terminate()
            try:
                proc.wait(20)
            except subprocess.TimeoutExpired:
                proc.kill()
        shutil.rmtree(tmp, ignore_errors=True)


if __name__ == "__main__":
    main()
