"""The spf module end to end: SMTP in, SPF checked on the DNS fixture.

nsd (tests/integration/dnsfixture.py) serves zones under `example.` with
SPF records for 127.0.0.1, the client's address: mail whose MAIL FROM
domain passes, fails or softfails arrives with the matching
Authentication-Results (one header, written by smtp from the attached
results; the DNSSEC status as a comment) and Received-SPF (RFC 7208 9.1);
the HELO identity is checked too; fail_action = reject answers 550 5.7.23
(RFC 7372) at MAIL with the domain's exp= explanation; a DNS failure or a
DNS timeout gives temperror, and temperror_action = tempfail 451 4.7.24.
"""
import os
import re
import shutil
import smtplib
import socket
import subprocess
import tempfile
import time
import unittest

import dnsfixture
import tsharness as h
from test_smtp_inbound import DOMAINS, SmtpBase

PASSWORD = "correct horse"

SMTP_DIR = os.path.join(h.BUILDDIR, "modules", "smtp", ".libs")
SPF_DIR = os.path.join(h.BUILDDIR, "modules", "spf", ".libs")

ZONES = {
    "pass.example.": '@ TXT "v=spf1 ip4:127.0.0.1 -all"\n'
                     'client TXT "v=spf1 a -all"\n'
                     'client A 127.0.0.1\n',
    "fail.example.": '@ TXT "v=spf1 ip4:192.0.2.1 exp=why.%{d} -all"\n'
                     'why TXT "%{i} may not send for %{d}"\n',
    "soft.example.": '@ TXT "v=spf1 ip4:192.0.2.1 ~all"\n',
    "nospf.example.": '@ TXT "just some text"\n',
    # Bounded work: a loop, and a record with 50 includes.
    "loop.example.": '@ TXT "v=spf1 include:loop.example -all"\n',
    # (character-strings of at most 255 octets, joined by SPF 3.3)
    "wide.example.": '@ TXT "v=spf1" ' +
                     " ".join(f'" include:i{i}.wide.example"'
                              for i in range(50)) + ' " -all"\n' +
                     "".join(f'i{i} TXT "v=spf1 -all"\n'
                             for i in range(50)),
}

MSG = (b"From: Sender <s@pass.example>\r\n"
       b"To: alice@example.org\r\n"
       b"Subject: spf\r\n"
       b"\r\n"
       b"body\r\n")


@unittest.skipIf(dnsfixture.tools_missing(), "nsd/ldnsutils not installed")
class Spf(h.TempDirTest):
    @classmethod
    def setUpClass(cls):
        cls.fxdir = tempfile.mkdtemp(prefix="tessera-spf-")
        fx = dnsfixture.DnsFixture(cls.fxdir)
        fx.zone("example.", signed=True)
        fx.zone("secure.example.",
                '@ TXT "v=spf1 a:mx.secure.example -all"\n'
                'mx A 127.0.0.1\n', signed=True)
        for name, records in ZONES.items():
            fx.zone(name, records)
        cls.fx = fx.start()

    @classmethod
    def tearDownClass(cls):
        cls.fx.stop()
        shutil.rmtree(cls.fxdir, ignore_errors=True)

    stored = SmtpBase.stored

    def start(self, spf="", dns=None, smtp=""):
        if dns is None:
            dns = {"resolver": "forward",
                   "forward": f"127.0.0.1@{self.fx.port}",
                   "trust_anchor": self.fx.trust_anchor}
        cfg = self.config(module_dirs=[h.TEST_MODULES, SMTP_DIR, SPF_DIR],
                          core={"hostname": "mx.example.org"})
        cfg.write("domains.d/10-example.ini", DOMAINS)
        self.port = h.free_port()
        cfg.write("conf.d/20-smtp.ini",
                  "[module smtp]\nenabled = yes\n" + smtp +
                  f"\n[listener mx]\nport = {self.port}\n"
                  "protocol = smtp\n\n[dns]\n" +
                  "".join(f"{k} = {v}\n" for k, v in dns.items()))
        cfg.write("conf.d/30-spf.ini", "[module spf]\nenabled = yes\n" + spf)
        self.cfg = cfg
        if smtp:
            r = subprocess.run([h.TESSERA, "account", "passwd", "alice",
                                "-c", cfg.path], input=PASSWORD + "\n",
                               capture_output=True, text=True, timeout=60)
            h.check_sanitizers(r.stderr)
            self.assertEqual(r.returncode, 0, r.stderr)
        self.srv = h.Server(cfg)
        self.srv.start()
        self.addCleanup(self.srv.stop)

    def smtp(self, helo="client.pass.example"):
        c = smtplib.SMTP("127.0.0.1", self.port, timeout=30,
                         local_hostname=helo)
        self.addCleanup(c.close)
        return c

    def deliver(self, sender, helo="client.pass.example"):
        """Send MSG from sender; return our header block of the stored
        message."""
        c = self.smtp(helo)
        self.assertEqual(c.sendmail(sender, ["alice@example.org"], MSG), {})
        c.quit()
        msgs = self.stored("alice")
        self.assertEqual(len(msgs), 1)
        msg = msgs[0].decode()
        return msg[:msg.index("From: Sender")]

    def test_pass_with_helo(self):
        self.start()
        head = self.deliver("s@pass.example")
        self.assertIn(
            "Authentication-Results: mx.example.org;\r\n"
            "\tspf=pass (DNSSEC insecure) smtp.helo=client.pass.example;\r\n"
            "\tspf=pass (DNSSEC insecure) smtp.mailfrom=s@pass.example\r\n",
            head)
        self.assertIn(
            "Received-SPF: pass (mx.example.org: domain of s@pass.example "
            "designates 127.0.0.1 as permitted sender)\r\n"
            "\tclient-ip=127.0.0.1; envelope-from=\"s@pass.example\"; "
            "helo=\"client.pass.example\";\r\n"
            "\treceiver=mx.example.org; identity=mailfrom; "
            "mechanism=\"ip4:127.0.0.1\"\r\n", head)
        self.assertEqual(head.count("Authentication-Results:"), 1)
        self.assertEqual(head.count("Received-SPF:"), 1)

    def test_secure_domain(self):
        self.start(spf="check_helo = no\n")
        head = self.deliver("s@secure.example")
        self.assertIn("\tspf=pass (DNSSEC secure) "
                      "smtp.mailfrom=s@secure.example\r\n", head)
        self.assertNotIn("smtp.helo", head)

    def check_bounded(self, sender):
        # RFC 7208 4.6.4: the 10-lookup limit ends it with permerror,
        # long before any timeout.
        self.start(spf="check_helo = no\ntimeout = 60s\n")
        t0 = time.monotonic()
        head = self.deliver(sender)
        self.assertLess(time.monotonic() - t0, 15)
        self.assertRegex(head, r"\tspf=permerror \(DNSSEC insecure\) "
                         r"reason=\"too many DNS-querying terms\" "
                         r"smtp\.mailfrom=" + re.escape(sender))

    def test_include_loop_ends_fast(self):
        self.check_bounded("s@loop.example")

    def test_fifty_includes_end_fast(self):
        self.check_bounded("s@wide.example")

    def test_helo_fail_action(self):
        self.start(spf="helo_fail_action = reject\n")
        # HELO fails (fail.example lists 192.0.2.1 only), MAIL FROM
        # passes: the HELO identity's own fail refuses.
        c = self.smtp(helo="fail.example")
        c.ehlo()
        code, text = c.mail("s@pass.example")
        self.assertEqual(code, 550, text)
        self.assertIn(b"5.7.23 SPF validation of HELO fail.example failed",
                      text)
        # A passing HELO is not affected.
        self.deliver("s@pass.example")

    def test_fail_is_ignored_by_default(self):
        self.start()
        head = self.deliver("s@fail.example")
        self.assertIn("spf=fail (DNSSEC insecure) "
                      "smtp.mailfrom=s@fail.example", head)
        self.assertIn("Received-SPF: fail (mx.example.org: domain of "
                      "s@fail.example does not designate 127.0.0.1 as "
                      "permitted sender)", head)
        self.assertIn("mechanism=\"-all\"", head)

    def test_softfail_and_none(self):
        self.start()
        head = self.deliver("s@soft.example")
        self.assertIn("spf=softfail (DNSSEC insecure) "
                      "smtp.mailfrom=s@soft.example", head)
        self.assertIn("Received-SPF: softfail ", head)
        # a second message: none (a TXT that is not SPF)
        c = self.smtp()
        c.sendmail("s@nospf.example", ["alice@example.org"], MSG)
        c.quit()
        msg = self.stored("alice")[1].decode()
        self.assertIn("spf=none (DNSSEC insecure) "
                      "smtp.mailfrom=s@nospf.example", msg)

    def test_null_sender_uses_helo(self):
        self.start()
        head = self.deliver("", helo="client.pass.example")
        self.assertIn("\tspf=pass (DNSSEC insecure) "
                      "smtp.helo=client.pass.example\r\n", head)
        self.assertNotIn("smtp.mailfrom", head)
        self.assertIn("envelope-from=\"postmaster@client.pass.example\"",
                      head)
        self.assertIn("identity=helo", head)

    def test_fail_action_reject(self):
        self.start(spf="fail_action = reject\n")
        c = self.smtp()
        c.ehlo()
        code, text = c.mail("s@fail.example")
        self.assertEqual(code, 550)
        self.assertEqual(text.decode(),
                         "5.7.23 SPF validation failed: 127.0.0.1 may not "
                         "send for fail.example")
        # a passing sender in the same session goes through
        code, _ = c.mail("s@pass.example")
        self.assertEqual(code, 250)
        c.rset()
        # softfail is not a fail
        self.assertEqual(c.mail("s@soft.example")[0], 250)

    def test_dns_failure_temperror(self):
        with dnsfixture.ServfailServer() as sf:
            self.start(spf="temperror_action = tempfail\ncheck_helo = no\n",
                       dns={"resolver": "forward",
                            "forward": f"127.0.0.1@{sf.port}"})
            c = self.smtp()
            c.ehlo()
            code, text = c.mail("s@pass.example")
        self.assertEqual(code, 451)
        self.assertTrue(text.decode().startswith("4.7.24 "), text)
        self.assertIn("spf mailfrom=s@pass.example result=temperror",
                      self.srv.log())

    def test_dns_timeout_temperror(self):
        # A socket that never answers: only the spf timeout ends the wait.
        with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as hole:
            hole.bind(("127.0.0.1", 0))
            self.start(spf="timeout = 1s\n",
                       dns={"resolver": "forward",
                            "forward": "127.0.0.1@%d" %
                            hole.getsockname()[1],
                            "timeout": "30s"})
            head = self.deliver("s@pass.example")
        # no answer came: no DNSSEC comment
        self.assertIn("\tspf=temperror "
                      "reason=\"SPF check timed out\" "
                      "smtp.helo=client.pass.example;\r\n", head)
        self.assertIn("\tspf=temperror "
                      "reason=\"SPF check timed out\" "
                      "smtp.mailfrom=s@pass.example\r\n", head)
        self.assertIn("Received-SPF: temperror ", head)

    def test_client_leaves_while_checking(self):
        # The check waits on DNS that never answers; the client goes; the
        # check is cancelled (its lookups too) and the server carries on.
        with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as hole:
            hole.bind(("127.0.0.1", 0))
            self.start(spf="timeout = 60s\n",
                       dns={"resolver": "forward",
                            "forward": "127.0.0.1@%d" %
                            hole.getsockname()[1],
                            "timeout": "60s"})
            c = self.srv.connect(self.port, timeout=30)
            self.assertEqual(c.readline()[:4], "220 ")
            c.send("EHLO client.pass.example")
            while c.readline().startswith("250-"):
                pass
            c.send("MAIL FROM:<s@pass.example>")
            self.srv.wait_log("spf: waiting for DNS ip=127.0.0.1")
            c.close()
            self.srv.wait_log("spf: check cancelled ip=127.0.0.1")
            c = self.smtp()
            self.assertEqual(c.noop()[0], 250)
            c.quit()
        # stopping the server (cleanup) checks for leaks under ASan

    def test_submission_is_not_checked(self):
        # A client that logged in is not checked (example.org is not in
        # the fixture: a check would be a temperror, refused here).
        sub = h.free_port()
        self.start(spf="temperror_action = tempfail\n",
                   smtp="allow_plaintext_auth = yes\n"
                   f"[listener sub]\nport = {sub}\n"
                   "protocol = submission\n")
        c = smtplib.SMTP("127.0.0.1", sub, timeout=30,
                         local_hostname="client.pass.example")
        self.addCleanup(c.close)
        c.login("alice", PASSWORD)
        self.assertEqual(c.mail("alice@example.org")[0], 250)
        c.quit()
        self.assertNotIn("spf mailfrom=", self.srv.log())
        # while the same sender on port 25 is checked
        c = self.smtp()
        c.ehlo()
        self.assertEqual(c.mail("alice@example.org")[0], 451)


if __name__ == "__main__":
    h.main()
