"""The iprev module end to end: SMTP in, the client's reverse DNS checked
on the DNS fixture (RFC 8601 2.7.3).

Clients connect from different loopback addresses (127.0.0.2, .3, .4):
nsd serves a reverse zone 0.0.127.in-addr.arpa whose PTR records make
one of them pass (its name resolves back), one fail (its name resolves
elsewhere) and one permerror (no PTR).  The result appears once in
Authentication-Results with policy.iprev and the name as a comment, is
reused for the connection's next message, fail_action = reject refuses
at MAIL with 550 5.7.25, and logged-in clients are not checked.
"""
import os
import shutil
import smtplib
import tempfile
import unittest

import dnsfixture
import tsharness as h
from test_smtp_inbound import DOMAINS, SmtpBase

SMTP_DIR = os.path.join(h.BUILDDIR, "modules", "smtp", ".libs")
IPREV_DIR = os.path.join(h.BUILDDIR, "modules", "iprev", ".libs")

MSG = (b"From: Sender <s@example.net>\r\n"
       b"To: alice@example.org\r\n"
       b"Subject: iprev\r\n"
       b"\r\n"
       b"body\r\n")


def _loopback_usable(addr):
    """Whether this host lets us bind a client socket to addr."""
    import socket
    s = socket.socket()
    try:
        s.bind((addr, 0))
        return True
    except OSError:
        return False
    finally:
        s.close()


@unittest.skipIf(dnsfixture.tools_missing(), "nsd/ldnsutils not installed")
@unittest.skipUnless(_loopback_usable("127.0.0.4"),
                     "cannot bind client sockets to 127.0.0.x")
class Iprev(h.TempDirTest):
    @classmethod
    def setUpClass(cls):
        cls.fxdir = tempfile.mkdtemp(prefix="tessera-iprev-")
        fx = dnsfixture.DnsFixture(cls.fxdir)
        fx.zone("example.",
                'good.iprev A 127.0.0.2\n'
                'other.iprev A 192.0.2.9\n'
                'two.iprev A 127.0.0.5\n', signed=True)
        fx.zone("0.0.127.in-addr.arpa.",
                '2 PTR good.iprev.example.\n'
                '3 PTR other.iprev.example.\n'
                '5 PTR other.iprev.example.\n'
                '5 PTR two.iprev.example.\n')
        cls.fx = fx.start()

    @classmethod
    def tearDownClass(cls):
        cls.fx.stop()
        shutil.rmtree(cls.fxdir, ignore_errors=True)

    stored = SmtpBase.stored

    def start(self, iprev="", dns_port=None, dns=""):
        cfg = self.config(module_dirs=[SMTP_DIR, IPREV_DIR],
                          core={"hostname": "mx.example.org"})
        cfg.write("domains.d/10-example.ini", DOMAINS)
        self.port = h.free_port()
        cfg.write("conf.d/20-smtp.ini",
                  "[module smtp]\nenabled = yes\n"
                  f"[listener mx]\nport = {self.port}\n"
                  "protocol = smtp\n\n[dns]\nresolver = forward\n"
                  f"forward = 127.0.0.1@{dns_port or self.fx.port}\n"
                  "timeout = 1s\n"
                  f"trust_anchor = {self.fx.trust_anchor}\n"
                  # the fixture serves 0.0.127.in-addr.arpa
                  + (dns or "private_reverse = ask\n"))
        cfg.write("conf.d/30-iprev.ini",
                  "[module iprev]\nenabled = yes\n" + iprev)
        self.cfg = cfg
        self.srv = h.Server(cfg)
        self.srv.start()
        self.addCleanup(self.srv.stop)

    def smtp(self, source):
        c = smtplib.SMTP("127.0.0.1", self.port, timeout=30,
                         local_hostname="client.example.net",
                         source_address=(source, 0))
        self.addCleanup(c.close)
        return c

    def deliver(self, source, count=1):
        """Send MSG count times over one connection from source; return
        the header block we added to the last stored message."""
        c = self.smtp(source)
        for _ in range(count):
            self.assertEqual(c.sendmail("s@example.net",
                                        ["alice@example.org"], MSG), {})
        c.quit()
        msgs = self.stored("alice")
        self.assertEqual(len(msgs), count)
        msg = msgs[-1].decode()
        return msg[:msg.index("From: Sender")]

    def test_pass(self):
        self.start()
        head = self.deliver("127.0.0.2")
        self.assertIn("Authentication-Results: mx.example.org;\r\n"
                      "\tiprev=pass (good.iprev.example; DNSSEC insecure)"
                      " policy.iprev=127.0.0.2\r\n", head)

    def test_second_name_passes(self):
        self.start()
        head = self.deliver("127.0.0.5")
        self.assertIn("iprev=pass (two.iprev.example; DNSSEC insecure) "
                      "policy.iprev=127.0.0.5", head)

    def test_fail_and_result_reused_on_the_connection(self):
        self.start()
        head = self.deliver("127.0.0.3", count=2)
        self.assertIn("iprev=fail (other.iprev.example; DNSSEC insecure) "
                      "policy.iprev=127.0.0.3", head)
        self.assertEqual(head.count("\tiprev="), 1)
        # One check per connection: two messages, one log line.
        self.assertEqual(self.srv.log().count("iprev ip=127.0.0.3"), 1,
                         self.srv.log())

    def test_no_ptr_is_permerror(self):
        self.start()
        head = self.deliver("127.0.0.4")
        self.assertIn("iprev=permerror (DNSSEC insecure) "
                      "policy.iprev=127.0.0.4", head)

    def test_private_reverse_local(self):
        # [dns] private_reverse = local: libunbound's own answer for
        # 127/8 (NXDOMAIN but for 127.0.0.1), not the fixture's PTR.
        self.start(dns="private_reverse = local\n")
        head = self.deliver("127.0.0.2")
        self.assertIn("iprev=permerror (DNSSEC insecure) "
                      "policy.iprev=127.0.0.2", head)

    def test_fail_action_reject(self):
        self.start(iprev="fail_action = reject\n")
        c = self.smtp("127.0.0.3")
        code, text = c.ehlo()
        self.assertEqual(code, 250)
        code, text = c.mail("s@example.net")
        self.assertEqual(code, 550)
        self.assertIn(b"5.7.25", text)
        self.assertIn(b"127.0.0.3", text)
        # A client that passes is not affected.
        head = self.deliver("127.0.0.2")
        self.assertIn("iprev=pass", head)
        self.assertEqual(self.stored("alice")[0].count(b"\tiprev="), 1)

    def test_temperror_when_dns_is_down(self):
        # Nothing answers on this port: every lookup times out.
        self.start(iprev="temperror_action = tempfail\ntimeout = 5s\n",
                   dns_port=h.free_port())
        c = self.smtp("127.0.0.2")
        c.ehlo()
        code, text = c.mail("s@example.net")
        self.assertEqual(code, 451, text)
        self.assertIn(b"4.4.3", text)


if __name__ == "__main__":
    h.main()
