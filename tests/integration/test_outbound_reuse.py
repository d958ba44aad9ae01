"""Outbound connection reuse and per-destination limits (issue 6).

The direct transport delivers to a small SMTP sink in this test (a
thread per connection; it counts connections, connections open at once,
MAIL and RSET commands, and messages) found through the DNS fixture:
reuse.example and other.example both have MX mx.reuse.example.  Twenty
messages to one domain travel over at most max_connections_per_host
connections at once, most of them reused (RSET, then the next MAIL); two
domains with the same MX share a connection; max_messages_per_connection
= 1 turns reuse off; a kept connection the server dropped is replaced by
a new one without failing the delivery; an idle kept connection is ended
with QUIT after idle_timeout.
"""
import os
import shutil
import smtplib
import socket
import subprocess
import tempfile
import threading
import time
import unittest

import dnsfixture
import tsharness as h

SMTP_DIR = os.path.join(h.BUILDDIR, "modules", "smtp", ".libs")
TRANSPORTS_DIR = os.path.join(h.BUILDDIR, "modules", "transports", ".libs")


class Sink:
    """A minimal SMTP server on 127.0.0.1 that accepts everything."""

    def __init__(self, drop_on_rset=False):
        self.drop_on_rset = drop_on_rset
        self.lock = threading.Lock()
        self.connections = self.open = self.max_open = 0
        self.mails = self.rsets = self.messages = self.quits = 0
        self.sock = socket.socket()
        self.sock.bind(("127.0.0.1", 0))
        self.sock.listen(64)
        self.port = self.sock.getsockname()[1]
        self.stopping = False
        self.threads = []
        t = threading.Thread(target=self.accept_loop, daemon=True)
        t.start()
        self.threads.append(t)

    def stop(self):
        self.stopping = True
        self.sock.close()

    def count(self, **kw):
        with self.lock:
            for k, v in kw.items():
                setattr(self, k, getattr(self, k) + v)
            self.max_open = max(self.max_open, self.open)

    def accept_loop(self):
        while not self.stopping:
            try:
                c, _ = self.sock.accept()
            except OSError:
                return
            c.settimeout(30)
            self.count(connections=1, open=1)
            t = threading.Thread(target=self.serve, args=(c,), daemon=True)
            t.start()

    def serve(self, c):
        f = c.makefile("rb")
        try:
            c.sendall(b"220 sink.example ESMTP\r\n")
            in_data = False
            for line in f:
                if in_data:
                    if line == b".\r\n":
                        in_data = False
                        self.count(messages=1)
                        c.sendall(b"250 2.0.0 queued\r\n")
                    continue
                cmd = line[:4].upper()
                if cmd == b"EHLO":
                    c.sendall(b"250-sink.example\r\n250-PIPELINING\r\n"
                              b"250-8BITMIME\r\n250 SIZE 10000000\r\n")
                elif cmd == b"MAIL":
                    self.count(mails=1)
                    c.sendall(b"250 2.1.0 ok\r\n")
                elif cmd == b"RCPT":
                    c.sendall(b"250 2.1.5 ok\r\n")
                elif cmd == b"DATA":
                    in_data = True
                    c.sendall(b"354 go on\r\n")
                elif cmd == b"RSET":
                    self.count(rsets=1)
                    if self.drop_on_rset:
                        return  # a server that went away meanwhile
                    c.sendall(b"250 2.0.0 reset\r\n")
                elif cmd == b"QUIT":
                    self.count(quits=1)
                    c.sendall(b"221 2.0.0 bye\r\n")
                    return
                else:
                    c.sendall(b"502 5.5.2 what?\r\n")
        except OSError:
            pass
        finally:
            self.count(open=-1)
            c.close()


@unittest.skipIf(dnsfixture.tools_missing(), "nsd/ldnsutils not installed")
class OutboundReuse(h.TempDirTest):
    @classmethod
    def setUpClass(cls):
        cls.fxdir = tempfile.mkdtemp(prefix="tessera-reuse-")
        fx = dnsfixture.DnsFixture(cls.fxdir)
        fx.zone("reuse.example.", "@ MX 10 mx\nmx A 127.0.0.1")
        fx.zone("other.example.", "@ MX 10 mx.reuse.example.")
        cls.fx = fx.start()

    @classmethod
    def tearDownClass(cls):
        cls.fx.stop()
        shutil.rmtree(cls.fxdir, ignore_errors=True)

    def start(self, transports="", drop_on_rset=False):
        self.sink = Sink(drop_on_rset=drop_on_rset)
        self.addCleanup(self.sink.stop)
        cfg = self.config(module_dirs=[SMTP_DIR, TRANSPORTS_DIR],
                          core={"hostname": "mx.example.org"})
        cfg.write("domains.d/10-example.ini",
                  "[domain example.org]\n\n[account alice]\n"
                  "addresses = alice@example.org\n")
        self.port = h.free_port()
        cfg.write("conf.d/20-smtp.ini",
                  "[module smtp]\nenabled = yes\n"
                  "allow_plaintext_auth = yes\n"
                  "max_messages_per_day = 0\n"
                  "max_new_recipients_per_day = 0\n\n"
                  f"[listener sub]\nport = {self.port}\n"
                  "protocol = submission\n\n"
                  "[module transports]\nenabled = yes\n"
                  f"direct_port = {self.sink.port}\n"
                  "address_family = ipv4-only\n"
                  "connect_timeout = 5s\ncommand_timeout = 20s\n"
                  + transports +
                  "\n[queue]\nretry_first = 500ms\nmax_deliveries = 50\n\n"
                  "[dns]\nresolver = forward\n"
                  f"forward = 127.0.0.1@{self.fx.port}\n")
        self.cfg = cfg
        r = subprocess.run([h.TESSERA, "account", "passwd", "alice", "-c",
                            cfg.path], input="pw\n", capture_output=True,
                           text=True, timeout=60)
        self.assertEqual(r.returncode, 0, r.stderr)
        self.srv = h.Server(cfg)
        self.srv.start()
        self.addCleanup(self.srv.stop)

    def submit(self, rcpts):
        """One submission session, one message per recipient."""
        c = smtplib.SMTP("127.0.0.1", self.port, timeout=30)
        self.addCleanup(c.close)
        c.login("alice", "pw")
        for i, rcpt in enumerate(rcpts):
            msg = (f"From: alice@example.org\r\nTo: {rcpt}\r\n"
                   f"Subject: m{i}\r\n\r\nbody {i}\r\n").encode()
            self.assertEqual(c.sendmail("alice@example.org", [rcpt], msg),
                             {})
        c.quit()

    def wait_messages(self, n, timeout=60):
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if self.sink.messages >= n:
                return
            time.sleep(0.05)
        self.fail(f"sink got {self.sink.messages} of {n} messages\n"
                  + self.srv.log())

    def test_reuse_and_limit(self):
        self.start("max_connections_per_host = 2\nidle_timeout = 10s\n")
        # Hold the queue so all twenty are due at once.
        r = h.run_cli(["queue", "hold", "--all"], config=self.cfg)
        self.submit([f"u{i}@reuse.example" for i in range(20)])
        r = h.run_cli(["queue", "release", "--all"], config=self.cfg)
        self.assertEqual(r.returncode, 0, r.stdout + r.stderr)
        self.wait_messages(20)
        self.srv.wait_log(r"queue delivered id=20 ", timeout=30)
        self.assertEqual(self.sink.mails, 20)
        self.assertLessEqual(self.sink.max_open, 2)
        self.assertLessEqual(self.sink.connections, 4)
        self.assertGreaterEqual(self.sink.rsets, 16)
        self.assertIn("connection reused", self.srv.log())

    def test_domains_with_one_mx_share(self):
        self.start("idle_timeout = 10s\n")
        self.submit(["a@reuse.example"])
        self.wait_messages(1)
        self.srv.wait_log(r"queue delivered id=1 ")
        self.submit(["b@other.example"])
        self.wait_messages(2)
        self.assertEqual(self.sink.connections, 1)
        self.assertEqual(self.sink.rsets, 1)

    def test_reuse_off(self):
        self.start("max_messages_per_connection = 1\n")
        self.submit([f"u{i}@reuse.example" for i in range(3)])
        self.wait_messages(3)
        self.assertEqual(self.sink.connections, 3)
        self.assertEqual(self.sink.rsets, 0)

    def test_dead_kept_connection_replaced(self):
        self.start("idle_timeout = 10s\n", drop_on_rset=True)
        self.submit(["a@reuse.example"])
        self.wait_messages(1)
        self.srv.wait_log(r"queue delivered id=1 ")
        self.submit(["b@reuse.example"])
        self.wait_messages(2)
        self.srv.wait_log(r"kept connection failed, connecting anew id=2")
        self.srv.wait_log(r"queue delivered id=2 to=<b@reuse.example> "
                          r"attempt=1 code=250")
        self.assertEqual(self.sink.connections, 2)

    def test_idle_connection_quits(self):
        self.start("idle_timeout = 300ms\n")
        self.submit(["a@reuse.example"])
        self.wait_messages(1)
        deadline = time.monotonic() + 20
        while time.monotonic() < deadline and self.sink.quits < 1:
            time.sleep(0.05)
        self.assertEqual(self.sink.quits, 1)
        self.assertEqual(self.sink.open, 0)


if __name__ == "__main__":
    h.main()
