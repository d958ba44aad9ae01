#!/usr/bin/env python3
"""bench/tls.py — accept + TLS handshake rate, and memory per idle TLS
connection, of a tessera serving the example `hello` protocol.

Usage: bench/tls.py BUILD_DIR [--handshakes N] [--idle N] [--threads T]

Starts tessera from BUILD_DIR on 127.0.0.1 with an implicit-TLS listener
(self-signed ECDSA certificate), then
  1. runs N full TLS handshakes (each: connect, handshake, read greeting,
     close) from T client threads, and prints handshakes per second;
  2. opens N idle TLS connections, and prints the server's RSS growth per
     connection.
Every loop is bounded in count and in time (60 s), and tessera is stopped
by PID at the end.  Prints figures; asserts nothing.
"""
import argparse
import os
import resource
import signal
import socket
import ssl
import subprocess
import sys
import tempfile
import threading
import time


def rss_kib(pid):
    with open(f"/proc/{pid}/status") as f:
        for line in f:
            if line.startswith("VmRSS:"):
                return int(line.split()[1])
    return 0


def free_port():
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("build")
    ap.add_argument("--handshakes", type=int, default=2000)
    ap.add_argument("--idle", type=int, default=2000)
    ap.add_argument("--threads", type=int, default=4)
    a = ap.parse_args()
    build = os.path.abspath(a.build)
    soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    resource.setrlimit(resource.RLIMIT_NOFILE, (hard, hard))

    tmp = tempfile.mkdtemp(prefix="tessera-bench-")
    port = free_port()
    with open(os.path.join(tmp, "tessera.ini"), "w") as f:
        f.write(f"""[core]
data_dir = {tmp}/data
module_dir = {build}/examples/hello/.libs
allow_root = yes
log_level = warn
hostname = bench.example.test
[module hello]
enabled = yes
[listener tls]
port = {port}
protocol = hello
tls = implicit
""")
    proc = subprocess.Popen([f"{build}/tessera", "serve", "-c",
                             f"{tmp}/tessera.ini"],
                            stdin=subprocess.DEVNULL)
    ctx = ssl.create_default_context()
    ctx.check_hostname = False
    ctx.verify_mode = ssl.CERT_NONE
    try:
        deadline = time.monotonic() + 10
        while True:
            try:
                socket.create_connection(("127.0.0.1", port), 1).close()
                break
            except OSError:
                if time.monotonic() > deadline:
                    sys.exit("tessera did not start")
                time.sleep(0.05)

        # 1. handshake rate
        done = [0]
        lock = threading.Lock()
        stop_at = time.monotonic() + 60
        per_thread = a.handshakes // a.threads

        def worker():
            for _ in range(per_thread):
                if time.monotonic() > stop_at:
                    return
                raw = socket.create_connection(("127.0.0.1", port), 10)
                s = ctx.wrap_socket(raw, server_hostname="bench.example.test")
                s.recv(100)
                s.close()
                with lock:
                    done[0] += 1

        t0 = time.monotonic()
        threads = [threading.Thread(target=worker) for _ in range(a.threads)]
        for t in threads:
            t.start()
        for t in threads:
            t.join()
        elapsed = time.monotonic() - t0
        print(f"tls handshakes: {done[0]} in {elapsed:.2f}s = "
              f"{done[0] / elapsed:.0f}/s ({a.threads} client threads, "
              f"TLS 1.3, ECDSA P-256)")

        # 2. memory per idle TLS connection
        time.sleep(0.5)
        before = rss_kib(proc.pid)
        conns = []
        stop_at = time.monotonic() + 60
        for _ in range(a.idle):
            if time.monotonic() > stop_at:
                break
            raw = socket.create_connection(("127.0.0.1", port), 10)
            s = ctx.wrap_socket(raw, server_hostname="bench.example.test")
            s.recv(100)
            conns.append(s)
        time.sleep(0.5)
        after = rss_kib(proc.pid)
        n = len(conns)
        print(f"idle tls connections: {n}, server rss {before} -> {after} "
              f"KiB = {(after - before) / max(n, 1):.1f} KiB/connection")
        for s in conns:
            s.close()
    finally:
        proc.send_signal(signal.SIGTERM)
        try:
            proc.wait(timeout=30)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait()


if __name__ == "__main__":
    main()
