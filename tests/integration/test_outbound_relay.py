"""Relay transports and routes (issue 6).

A second tessera plays the smarthost: a submission listener with
STARTTLS (certificate from the test CA, for 127.0.0.1) where the account
`relayuser` may send as alice@example.org, and where bob@remote.example
is local.  Our server has `[transport relay] type = submission` with
username and password_file, and routes that send remote.example's mail
through it: always, per mechanism, or only from the 2nd attempt (the
first goes direct, found through the DNS fixture, to a closed port).
The smarthost's log says which mechanism authenticated.  A wrong
password keeps the mail queued; a route naming an unknown transport is
a config error with file:line.  The socks transport delivers directly
(MX from the DNS fixture: the smarthost's MX listener) through a small
SOCKS5 proxy (socks5fixture.py), which sees the CONNECT to the MX
address; a proxy that refuses leaves the mail queued with its reason.
"""
import os
import re
import shutil
import smtplib
import subprocess
import tempfile
import unittest

import dnsfixture
import socks5fixture
import tlsfixture
import tsharness as h
from test_outbound_direct import read_store, SMTP_DIR, TRANSPORTS_DIR


@unittest.skipIf(dnsfixture.tools_missing(), "nsd/ldnsutils not installed")
class RelayDelivery(h.TempDirTest):
    @classmethod
    def setUpClass(cls):
        cls.fxdir = tempfile.mkdtemp(prefix="tessera-dns-")
        fx = dnsfixture.DnsFixture(cls.fxdir)
        fx.zone("remote.example.", "@ MX 10 mx\nmx A 127.0.0.1")
        cls.fx = fx.start()

    @classmethod
    def tearDownClass(cls):
        cls.fx.stop()
        shutil.rmtree(cls.fxdir, ignore_errors=True)

    def setUp(self):
        super().setUp()
        self.ca = tlsfixture.TestCA(os.path.join(self.tmp, "ca"))
        cert, key = self.ca.issue("smarthost.example", ips=("127.0.0.1",))
        sdir = os.path.join(self.tmp, "smarthost")
        os.makedirs(sdir)
        scfg = h.Config(sdir, core={"hostname": "smarthost.example"},
                        module_dirs=[h.TEST_MODULES, SMTP_DIR])
        scfg.write("domains.d/10-remote.ini",
                   "[domain remote.example]\n\n[account bob]\n"
                   "addresses = bob@remote.example\n\n"
                   "[domain example.org]\n\n[account relayuser]\n"
                   "addresses = alice@example.org\n")
        self.relay_port = h.free_port()
        self.mx_port = h.free_port()
        self.subs_port = h.free_port()
        scfg.write("conf.d/20-smtp.ini",
                   "[module smtp]\nenabled = yes\n\n"
                   f"[listener sub]\nport = {self.relay_port}\n"
                   "protocol = submission\ntls = starttls\n"
                   f"tls_cert = {cert}\ntls_key = {key}\n\n"
                   f"[listener mx]\nport = {self.mx_port}\n"
                   "protocol = smtp\n\n"
                   f"[listener subs]\nport = {self.subs_port}\n"
                   "protocol = submissions\ntls = implicit\n"
                   f"tls_cert = {cert}\ntls_key = {key}\n")
        r = subprocess.run([h.TESSERA, "account", "passwd", "relayuser",
                            "-c", scfg.path], input="relay pw\n",
                           capture_output=True, text=True, timeout=60)
        self.assertEqual(r.returncode, 0, r.stderr)
        self.scfg = scfg
        self.smarthost = h.Server(scfg)
        self.smarthost.start()
        self.addCleanup(self.smarthost.stop)
        self.closed_port = h.free_port()  # nothing listens: direct fails
        self.pwfile = os.path.join(self.tmp, "relay.pw")
        with open(self.pwfile, "w") as f:
            f.write("relay pw\n")
        self.srv = None

    def start_ours(self, transport_extra="", routes="", password_file=None,
                   direct_port=None, ca_file=None):
        cfg = self.config(module_dirs=[h.TEST_MODULES, SMTP_DIR,
                                       TRANSPORTS_DIR],
                          core={"hostname": "mx.example.org"})
        cfg.write("domains.d/10-example.ini",
                  "[domain example.org]\n\n[account alice]\n"
                  "addresses = alice@example.org\n")
        self.port = h.free_port()
        cfg.write("conf.d/20-smtp.ini",
                  "[module smtp]\nenabled = yes\n"
                  "allow_plaintext_auth = yes\n\n"
                  f"[listener sub]\nport = {self.port}\n"
                  "protocol = submission\n\n"
                  "[queue]\nretry_first = 300ms\n\n"
                  "[dns]\nresolver = forward\n"
                  f"forward = 127.0.0.1@{self.fx.port}\n")
        cfg.write("conf.d/20-transports.ini",
                  "[module transports]\nenabled = yes\n"
                  f"direct_port = {direct_port or self.closed_port}\n"
                  "address_family = ipv4-only\n"
                  "connect_timeout = 5s\ncommand_timeout = 20s\n\n"
                  "[transport relay]\ntype = submission\n"
                  f"host = 127.0.0.1\nport = {self.relay_port}\n"
                  "username = relayuser\n"
                  f"password_file = {password_file or self.pwfile}\n"
                  f"tls_ca_file = {ca_file or self.ca.cert}\n"
                  + transport_extra + "\n" + routes)
        self.cfg = cfg
        r = subprocess.run([h.TESSERA, "account", "passwd", "alice", "-c",
                            cfg.path], input="pw\n", capture_output=True,
                           text=True, timeout=60)
        self.assertEqual(r.returncode, 0, r.stderr)
        if self.srv is not None:
            self.srv.stop()
        self.srv = h.Server(cfg)
        self.srv.start()
        self.addCleanup(self.srv.stop)

    def submit(self, rcpt, subject="relayed"):
        c = smtplib.SMTP("127.0.0.1", self.port, timeout=20)
        self.addCleanup(c.close)
        c.login("alice", "pw")
        msg = (f"From: alice@example.org\r\nTo: {rcpt}\r\n"
               f"Subject: {subject}\r\nMessage-ID: <{subject}@example.org>"
               "\r\n\r\nthrough the smarthost\r\n").encode()
        self.assertEqual(c.sendmail("alice@example.org", [rcpt], msg), {})
        c.quit()
        return msg

    def wait_stored(self, count=1, timeout=30):
        import time
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            got = read_store(self.scfg, "bob")
            if len(got) >= count:
                return got
            time.sleep(0.05)
        self.fail("timed out waiting for the smarthost to store the "
                  f"message\n--- ours:\n{self.srv.log()}\n--- smarthost:\n"
                  f"{self.smarthost.log()}")

    ROUTE = "[route remote]\nto_domain = remote.example\ntransport = relay\n"

    def test_relay_prefers_scram(self):
        self.start_ours(routes=self.ROUTE)
        sent = self.submit("bob@remote.example")
        got = self.wait_stored()
        self.assertTrue(got[0].endswith(sent), got[0])
        # Received by the smarthost over TLS, authenticated.
        self.assertRegex(got[0], rb"by smarthost\.example \(tessera\) "
                         rb"with ESMTPSA")
        # The strongest it offers: SCRAM-SHA-256 with channel binding.
        self.smarthost.wait_log(r"authenticated account=relayuser "
                                r"mechanism=SCRAM-SHA-256-PLUS")
        self.srv.wait_log(r"delivery started id=1 domain=remote.example "
                          r"rcpts=1 attempt=1 transport=relay")
        self.srv.wait_log(r"authenticated to relay id=1 "
                          r"mechanism=SCRAM-SHA-256-PLUS user=relayuser")
        self.srv.wait_log(r"queue delivered id=1 to=<bob@remote.example> "
                          r"attempt=1 code=250")
        self.assertNotIn("relay pw", self.srv.log())

    def test_each_mechanism(self):
        mechs = ["SCRAM-SHA-256", "SCRAM-SHA-1", "SCRAM-SHA-1-PLUS",
                 "CRAM-MD5", "PLAIN", "LOGIN"]
        offered = None
        for n, mech in enumerate(mechs, start=1):
            with self.subTest(mechanism=mech):
                self.start_ours(transport_extra=f"mechanism = {mech}\n",
                                routes=self.ROUTE)
                if offered is None:
                    # What does the smarthost offer after STARTTLS?
                    c = smtplib.SMTP("127.0.0.1", self.relay_port,
                                     timeout=20)
                    c.starttls()
                    c.ehlo()
                    offered = c.esmtp_features.get("auth", "").split()
                    c.quit()
                if mech not in offered:
                    continue
                self.submit("bob@remote.example", subject=f"m{n}")
                self.wait_stored(count=len(
                    [m for m in mechs[:n] if m in offered]))
                self.smarthost.wait_log(r"authenticated account=relayuser "
                                        + re.escape(f"mechanism={mech}")
                                        + r"\n")
        # Every kernel mechanism was offered and tried.
        for mech in mechs:
            self.assertIn(mech, offered)

    def test_min_attempt(self):
        self.start_ours(routes="[route late]\nto_domain = remote.example\n"
                        "min_attempt = 2\ntransport = relay\n")
        self.submit("bob@remote.example")
        self.wait_stored()
        log = self.srv.wait_log(r"queue delivered id=1 "
                                r"to=<bob@remote.example> attempt=2 "
                                r"code=250")
        self.assertRegex(log, r"delivery started id=1 domain=remote\.example"
                         r" rcpts=1 attempt=1 transport=direct")
        self.assertRegex(log, r"delivery started id=1 domain=remote\.example"
                         r" rcpts=1 attempt=2 transport=relay")

    def test_scope_precedence(self):
        # An account route (direct, to the closed port) beats the global
        # relay route; the domain route for another sender domain does
        # not apply.
        routes = ("[route global]\nto_domain = remote.example\n"
                  "transport = relay\n\n"
                  "[route other]\ndomain = other.example\n"
                  "transport = relay\n\n"
                  "[route mine]\naccount = alice\n"
                  "to_domain = remote.example\n")
        self.start_ours(routes=routes)
        self.submit("bob@remote.example")
        self.srv.wait_log(r"delivery started id=1 domain=remote\.example "
                          r"rcpts=1 attempt=1 transport=direct")
        self.srv.wait_log(r"route matched id=1 route=mine transport=direct")

    def test_wrong_password_keeps_mail(self):
        bad = os.path.join(self.tmp, "bad.pw")
        with open(bad, "w") as f:
            f.write("not it\n")
        self.start_ours(routes=self.ROUTE, password_file=bad)
        self.submit("bob@remote.example")
        log = self.srv.wait_log(r"authentication to the relay failed: 535",
                                timeout=30)
        self.smarthost.wait_log(r"authentication failed mechanism="
                                r"SCRAM-SHA-256-PLUS user=relayuser")
        self.assertNotRegex(log, r"queue failed id=1")
        self.assertEqual(read_store(self.cfg, "alice"), [])  # no DSN
        r = h.run_cli(["queue", "list"], config=self.cfg)
        self.assertIn("bob@remote.example", r.stdout)

    def test_smtp_relay_without_auth(self):
        # type smtp: the smarthost's port-25 listener, no AUTH.
        self.start_ours(routes="[transport plain]\ntype = smtp\n"
                        f"host = 127.0.0.1\nport = {self.mx_port}\n\n"
                        "[route r]\ntransport = plain\n")
        sent = self.submit("bob@remote.example")
        got = self.wait_stored()
        self.assertTrue(got[0].endswith(sent), got[0])
        log = self.srv.wait_log(r"queue delivered id=1 "
                                r"to=<bob@remote.example> attempt=1")
        self.assertRegex(log, r"attempt=1 transport=plain")
        self.assertNotIn("authenticated to relay", log)

    def test_submissions_implicit_tls(self):
        self.start_ours(routes="[transport tls]\ntype = submissions\n"
                        f"host = 127.0.0.1\nport = {self.subs_port}\n"
                        "username = relayuser\n"
                        f"password_file = {self.pwfile}\n"
                        f"tls_ca_file = {self.ca.cert}\n\n"
                        "[route r]\nto_domain = remote.example\n"
                        "transport = tls\n")
        sent = self.submit("bob@remote.example")
        got = self.wait_stored()
        self.assertTrue(got[0].endswith(sent), got[0])
        self.assertRegex(got[0], rb"with ESMTPSA")
        self.srv.wait_log(r"authenticated to relay id=1 "
                          r"mechanism=SCRAM-SHA-256-PLUS user=relayuser")

    def test_untrusted_certificate_keeps_mail(self):
        # The relay's certificate is checked: against another CA it
        # fails, and the mail waits.
        other = tlsfixture.TestCA(os.path.join(self.tmp, "other-ca"),
                                  name="another CA")
        self.start_ours(routes=self.ROUTE, ca_file=other.cert)
        self.submit("bob@remote.example")
        log = self.srv.wait_log(r"host failed id=1 host=127\.0\.0\.1 "
                                r"code=451", timeout=30)
        self.assertNotRegex(log, r"queue (delivered|failed) id=1")
        self.assertEqual(read_store(self.scfg, "bob"), [])

    def socks_routes(self, proxy_port):
        return ("[transport proxy]\ntype = socks\nsocks_host = 127.0.0.1\n"
                f"socks_port = {proxy_port}\nannounce_ips = 192.0.2.1\n\n"
                "[route viaproxy]\nto_domain = remote.example\n"
                "transport = proxy\n")

    def test_socks(self):
        proxy = socks5fixture.Socks5Proxy()
        self.addCleanup(proxy.stop)
        self.start_ours(routes=self.socks_routes(proxy.port),
                        direct_port=self.mx_port)
        sent = self.submit("bob@remote.example")
        got = self.wait_stored()
        self.assertTrue(got[0].endswith(sent), got[0])
        self.assertEqual(proxy.requests, [("127.0.0.1", self.mx_port)])
        log = self.srv.wait_log(r"queue delivered id=1 "
                                r"to=<bob@remote.example> attempt=1 "
                                r"code=250")
        self.assertRegex(log, r"attempt=1 transport=proxy")
        self.assertRegex(log, r"connected through socks5 id=1 "
                         r"host=mx\.remote\.example addr=127\.0\.0\.1")

    def test_socks_refused(self):
        proxy = socks5fixture.Socks5Proxy(refuse=5)
        self.addCleanup(proxy.stop)
        self.start_ours(routes=self.socks_routes(proxy.port),
                        direct_port=self.mx_port)
        self.submit("bob@remote.example")
        log = self.srv.wait_log(r"socks failed id=1 host=mx\.remote\.example"
                                r" SOCKS5 proxy: connection refused")
        self.assertNotRegex(log, r"queue (delivered|failed) id=1")
        self.assertEqual(read_store(self.scfg, "bob"), [])


class RelayConfigCheck(h.TempDirTest):
    def check(self, text):
        cfg = self.config(module_dirs=[h.TEST_MODULES, TRANSPORTS_DIR])
        path = cfg.write("conf.d/20-transports.ini",
                         "[module transports]\nenabled = yes\n\n" + text)
        return h.run_cli(["config", "check"], config=cfg), path

    def test_unknown_transport_in_route(self):
        r, path = self.check("[route r1]\nto_domain = x.example\n"
                             "transport = nosuch\n")
        self.assertEqual(r.returncode, 1, r.stdout + r.stderr)
        self.assertIn(f"{path}:6: unknown transport \"nosuch\"",
                      r.stdout + r.stderr)

    def test_relay_needs_host_and_credentials(self):
        r, path = self.check("[transport t]\ntype = submission\n")
        out = r.stdout + r.stderr
        self.assertEqual(r.returncode, 1, out)
        self.assertIn("a submission transport needs host", out)
        self.assertIn("needs username and password_file", out)
        r, path = self.check("[transport t]\ntype = smtp\nhost = h\n"
                             "username = u\npassword_file = /nonexistent\n")
        self.assertIn(f"{path}:8: cannot read the password from "
                      "/nonexistent", r.stdout + r.stderr)

    def test_valid(self):
        pw = os.path.join(self.tmp, "pw")
        with open(pw, "w") as f:
            f.write("secret\n")
        r, _ = self.check("[transport relay]\ntype = submissions\n"
                          "host = smtp.example\nusername = u\n"
                          f"password_file = {pw}\n\n"
                          "[route r]\naccount = alice\ntransport = relay\n"
                          "\n[route d]\ntransport =\n")
        self.assertEqual(r.returncode, 0, r.stdout + r.stderr)


if __name__ == "__main__":
    h.main()
