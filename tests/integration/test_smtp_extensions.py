"""The smtp module's ESMTP extensions and the transaction checks see.

REQUIRETLS is offered only under TLS and kept with the transaction (and
noted in Received); the DSN parameters RET, ENVID, NOTIFY and ORCPT are
kept with the transaction as a check module (tests/modules/hooktest with
report_txn) sees it; BODY=BINARYMIME takes binary content through BDAT
only; results that checks attach come out as one Authentication-Results
header; max_recipients answers 452; SMTPUTF8 addresses and IDNA domains
reach their account; the `pedantic` key makes submission strict; and
SCRAM-SHA-256-PLUS with channel binding works with GNU SASL's gsasl
client.
"""
import os
import re
import shutil
import smtplib
import ssl
import subprocess
import unittest

import tlsfixture
import tsharness as h
from test_smtp_inbound import SmtpBase

SMTP_DIR = os.path.join(h.BUILDDIR, "modules", "smtp", ".libs")

MSG = (b"From: s@remote.test\r\nTo: alice@example.org\r\n"
       b"Subject: x\r\n\r\nbody\r\n")

REPORT = "[hooktest r]\npoint = smtp_data\nreport_txn = yes\n"


class ExtBase(SmtpBase):
    def txn_log(self, point="smtp_data"):
        """The report_txn line of the last transaction at `point`."""
        self.srv.wait_log(f"hooktest txn point={point} ")
        lines = [l for l in self.srv.log().splitlines()
                 if f"hooktest txn point={point} " in l]
        return lines[-1]


class SmtpTlsBase(ExtBase):
    """ExtBase with a STARTTLS certificate on the mx listener."""

    def start_tls(self, module_extra="", extra=""):
        self.ca = tlsfixture.TestCA(os.path.join(self.tmp, "ca"))
        cert, key = self.ca.issue("mx.example.org")
        self.start(module_extra=module_extra,
                   extra=f"tls = starttls\ntls_cert = {cert}\n"
                   f"tls_key = {key}\n" + extra)

    def ctx(self):
        ctx = ssl.create_default_context(cafile=self.ca.cert)
        ctx.check_hostname = False
        return ctx


class SmtpRequireTls(SmtpTlsBase):
    def test_offered_only_under_tls_and_kept(self):
        self.start_tls(extra="\n[module hooktest]\nenabled = yes\n\n" +
                       REPORT)
        c = self.smtp()
        c.ehlo("client.remote.test")
        self.assertFalse(c.has_extn("requiretls"))
        self.assertTrue(c.has_extn("dsn"))
        self.assertTrue(c.has_extn("binarymime"))
        self.assertEqual(c.docmd("MAIL FROM:<s@remote.test> REQUIRETLS"),
                         (555, b"5.5.4 unsupported parameter REQUIRETLS"))
        c.starttls(context=self.ctx())
        c.ehlo("client.remote.test")
        self.assertTrue(c.has_extn("requiretls"))
        self.assertEqual(c.docmd("MAIL FROM:<s@remote.test> REQUIRETLS"),
                         (250, b"2.1.0 OK"))
        self.assertEqual(c.rcpt("alice@example.org")[0], 250)
        self.assertEqual(c.data(MSG)[0], 250)
        c.quit()
        self.assertIn(" requiretls=1 ", self.txn_log())
        msg = self.stored("alice")[0].decode()
        self.assertRegex(msg, r"\(using TLS1\.[23] with cipher [^;)]+; "
                         r"requiretls\)")
        self.assertIn("with ESMTPS id", msg)

    def test_without_requiretls_no_comment(self):
        self.start_tls(extra="\n[module hooktest]\nenabled = yes\n\n" +
                       REPORT)
        c = self.smtp()
        c.starttls(context=self.ctx())
        self.assertEqual(c.sendmail("s@remote.test", ["alice@example.org"],
                                    MSG), {})
        c.quit()
        self.assertIn(" requiretls=0 ", self.txn_log())
        self.assertNotIn("requiretls", self.stored("alice")[0].decode())


class SmtpDsnParams(ExtBase):
    def test_dsn_parameters_kept_with_transaction(self):
        self.start(extra="\n[module hooktest]\nenabled = yes\n\n" + REPORT)
        c = self.smtp()
        c.ehlo("client.remote.test")
        self.assertEqual(c.docmd("MAIL FROM:<s@remote.test> RET=HDRS "
                                 "ENVID=QQ+2B314"), (250, b"2.1.0 OK"))
        self.assertEqual(c.docmd("RCPT TO:<alice@example.org> "
                                 "NOTIFY=SUCCESS,FAILURE "
                                 "ORCPT=rfc822;alice+2Bx@example.org"),
                         (250, b"2.1.5 OK"))
        self.assertEqual(c.docmd("RCPT TO:<bob@example.org> NOTIFY=NEVER"),
                         (250, b"2.1.5 OK"))
        self.assertEqual(c.data(MSG)[0], 250)
        c.quit()
        line = self.txn_log()
        # ret 2 = HDRS; notify bits: NEVER 1, SUCCESS 2, FAILURE 4
        self.assertIn(" ret=2 envid=QQ+314 ", line)
        self.assertIn("rcpts=<alice@example.org>/notify=6/"
                      "orcpt=rfc822;alice+x@example.org/mailbox=Inbox,"
                      "<bob@example.org>/notify=1/orcpt=-;-/mailbox=Inbox",
                      line)
        self.assertIn(" message=yes", line)

    def test_bad_dsn_parameters(self):
        self.start()
        c = self.smtp()
        c.ehlo("client.remote.test")
        self.assertEqual(c.docmd("MAIL FROM:<s@remote.test> RET=ALL"),
                         (501, b"5.5.4 syntax: RET=FULL|HDRS"))
        self.assertEqual(c.docmd("MAIL FROM:<s@remote.test>")[0], 250)
        code, text = c.docmd("RCPT TO:<alice@example.org> NOTIFY=NEVER,"
                             "SUCCESS")
        self.assertEqual(code, 501, text)
        self.assertEqual(self.stored("alice"), [])


class SmtpBinaryMime(SmtpBase):
    def test_binary_through_bdat_stored_exactly(self):
        self.start()
        c = self.raw()
        c.send("EHLO client.remote.test")
        while c.readline().startswith("250-"):
            pass
        c.send("MAIL FROM:<s@remote.test> BODY=BINARYMIME")
        self.assertEqual(c.readline(), "250 2.1.0 OK")
        c.send("RCPT TO:<alice@example.org>")
        self.assertEqual(c.readline(), "250 2.1.5 OK")
        c.send("DATA")
        self.assertEqual(c.readline(),
                         "503 5.5.1 BODY=BINARYMIME requires BDAT")
        body = (b"From: s@remote.test\r\nContent-Type: application/x\r\n"
                b"Content-Transfer-Encoding: binary\r\n\r\n"
                b"\x00\x01bare\nlf\xff\xfe" + bytes(range(256)) + b"\r\n")
        c.sock.sendall(b"BDAT %d LAST\r\n" % len(body) + body)
        self.assertEqual(c.readline()[:3], "250")
        msgs = self.stored("alice")
        self.assertEqual(len(msgs), 1)
        self.assertTrue(msgs[0].endswith(body))

    def test_nul_without_binarymime_still_refused(self):
        self.start()
        c = self.raw()
        c.send("EHLO client.remote.test")
        while c.readline().startswith("250-"):
            pass
        c.send("MAIL FROM:<s@remote.test> BODY=8BITMIME")
        self.assertEqual(c.readline(), "250 2.1.0 OK")
        c.send("RCPT TO:<alice@example.org>")
        self.assertEqual(c.readline(), "250 2.1.5 OK")
        body = b"From: s@remote.test\r\n\r\n\x00\r\n"
        c.sock.sendall(b"BDAT %d LAST\r\n" % len(body) + body)
        self.assertEqual(c.readline()[:3], "554")
        self.assertEqual(self.stored("alice"), [])


AUTH_RESULTS = """
[module hooktest]
enabled = yes

[hooktest spf]
point = smtp_mail
auth_result = spf pass smtp.mailfrom=s@remote.test

[hooktest dkim1]
point = smtp_data
priority = -10
auth_result = dkim pass comment=2048-bit(rsa)key header.d=remote.test header.s=sel1

[hooktest dkim2]
point = smtp_data
priority = -9
auth_result = dkim fail reason=body\\hash\"changed header.d=remote.test header.s=sel2

[hooktest bad]
point = smtp_data
priority = -8
auth_result = bad/method pass

[hooktest dmarc]
point = smtp_data
priority = -5
auth_result = dmarc pass header.from=remote.test

[hooktest r]
point = smtp_data
report_txn = yes
"""


class SmtpAuthResults(SmtpBase):
    def test_one_header_from_typed_results(self):
        self.start(extra=AUTH_RESULTS)
        c = self.smtp()
        self.assertEqual(c.sendmail("s@remote.test", ["alice@example.org"],
                                    MSG), {})
        c.quit()
        # A later hook sees what the earlier checks attached.
        self.assertIn(" results=spf=pass,dkim=pass,dkim=fail,dmarc=pass ",
                      self.srv.log())
        self.assertIn("hooktest auth_result refused: invalid argument",
                      self.srv.log())
        msg = self.stored("alice")[0].decode()
        self.assertIn(
            "Authentication-Results: mx.example.org;\r\n"
            "\tspf=pass smtp.mailfrom=s@remote.test;\r\n"
            "\tdkim=pass (2048-bit\\(rsa\\)key) header.d=remote.test "
            "header.s=sel1;\r\n"
            "\tdkim=fail reason=\"body\\\\hash\\\"changed\" "
            "header.d=remote.test header.s=sel2;\r\n"
            "\tdmarc=pass header.from=remote.test\r\n"
            "Received: ", msg)
        self.assertEqual(msg.count("Authentication-Results:"), 1)


class SmtpLimits(SmtpBase):
    def test_max_recipients(self):
        self.start(module_extra="max_recipients = 2\n")
        c = self.smtp()
        c.ehlo("client.remote.test")
        c.mail("s@remote.test")
        self.assertEqual(c.rcpt("alice@example.org")[0], 250)
        self.assertEqual(c.rcpt("bob@example.org")[0], 250)
        self.assertEqual(c.rcpt("alice+x@example.org"),
                         (452, b"4.5.3 too many recipients"))
        self.assertEqual(c.data(MSG)[0], 250)
        c.quit()
        self.assertEqual(len(self.stored("alice")), 1)
        self.assertEqual(len(self.stored("bob")), 1)


UTF8_DOMAINS = """
[domain bücher.example]

[account juergen]
addresses = jürgen@bücher.example
"""


class SmtpUtf8(SmtpBase):
    def test_utf8_localpart_and_idna_domain(self):
        self.start()
        self.cfg.write("domains.d/20-utf8.ini", UTF8_DOMAINS)
        self.srv.stop()
        self.srv = h.Server(self.cfg)
        self.srv.start()
        self.addCleanup(self.srv.stop)
        c = self.raw()
        c.send("EHLO client.remote.test")
        while c.readline().startswith("250-"):
            pass
        # Without SMTPUTF8 a UTF-8 address is refused.
        c.sock.sendall("MAIL FROM:<jöe@remote.test>\r\n".encode())
        self.assertEqual(c.readline(), "553 5.6.7 non-ASCII address "
                         "requires SMTPUTF8")
        c.sock.sendall("MAIL FROM:<jöe@remote.test> SMTPUTF8\r\n".encode())
        self.assertEqual(c.readline(), "250 2.1.0 OK")
        # The U-label and the A-label form reach the same account.
        c.sock.sendall("RCPT TO:<jürgen@bücher.example>\r\n".encode())
        self.assertEqual(c.readline(), "250 2.1.5 OK")
        c.sock.sendall("RCPT TO:<jürgen@xn--bcher-kva.example>\r\n"
                       .encode())
        self.assertEqual(c.readline(), "250 2.1.5 OK")
        c.sock.sendall("RCPT TO:<jurgen@xn--bcher-kva.example>\r\n"
                       .encode())
        self.assertEqual(c.readline(), "550 5.1.1 no such user here")
        c.send("DATA")
        self.assertEqual(c.readline()[:3], "354")
        c.sock.sendall("From: jöe@remote.test\r\nSubject: grüße\r\n\r\n"
                       "ü\r\n.\r\n".encode())
        self.assertEqual(c.readline()[:3], "250")
        msgs = self.stored("juergen")
        self.assertEqual(len(msgs), 1)
        self.assertIn("Return-Path: <jöe@remote.test>\r\n".encode(),
                      msgs[0])
        self.assertTrue(msgs[0].endswith("ü\r\n".encode()))


class SmtpPedantic(SmtpBase):
    """Submission forgives client deviations unless pedantic = yes."""

    def start_submission(self, pedantic):
        self.sub = h.free_port()
        self.start(module_extra="allow_plaintext_auth = yes\n" +
                   ("pedantic = yes\n" if pedantic else ""),
                   extra=f"\n[listener sub]\nport = {self.sub}\n"
                   "protocol = submission\n")
        r = subprocess.run([h.TESSERA, "account", "passwd", "alice", "-c",
                            self.cfg.path], input="pw\n",
                           capture_output=True, text=True, timeout=60)
        self.assertEqual(r.returncode, 0, r.stderr)

    def session(self):
        c = smtplib.SMTP("127.0.0.1", self.sub, timeout=20)
        self.addCleanup(c.close)
        return c

    def test_lenient_by_default(self):
        self.start_submission(False)
        c = self.session()
        self.assertEqual(c.docmd("EHLO", "[not-a-literal")[0], 250)
        c.login("alice", "pw")
        self.assertEqual(c.docmd("MAIL FROM: <alice@example.org>"),
                         (250, b"2.1.0 OK"))
        self.assertEqual(c.docmd("RCPT TO:bob@example.org"),
                         (250, b"2.1.5 OK"))

    def test_pedantic_refuses_deviations(self):
        self.start_submission(True)
        c = self.session()
        self.assertEqual(c.docmd("EHLO", "[not-a-literal")[0], 501)
        self.assertEqual(c.docmd("EHLO", "client.example.org")[0], 250)
        c.ehlo_resp = None
        c.esmtp_features = {"auth": "PLAIN LOGIN"}
        c.login("alice", "pw")
        self.assertEqual(c.docmd("MAIL FROM: <alice@example.org>"),
                         (501, b"5.5.4 syntax: MAIL FROM:<address>"))
        self.assertEqual(c.docmd("MAIL FROM:<alice@example.org>"),
                         (250, b"2.1.0 OK"))
        self.assertEqual(c.docmd("RCPT TO:bob@example.org"),
                         (501, b"5.5.4 syntax: RCPT TO:<address>"))


@unittest.skipUnless(shutil.which("gsasl"),
                     "gsasl (GNU SASL client) not installed; tools/dev "
                     "installs it")
class SmtpScramPlus(SmtpTlsBase):
    """SCRAM-SHA-256-PLUS from an independent client: GNU SASL's gsasl,
    which binds to the TLS session (tls-exporter under TLS 1.3)."""

    def gsasl(self, password):
        return subprocess.run(
            ["gsasl", "--client", "--smtp", "--starttls",
             f"--connect=127.0.0.1:{self.sub}",
             "--mechanism=SCRAM-SHA-256-PLUS",
             f"--x509-ca-file={self.ca.cert}",
             "--authentication-id=alice", f"--password={password}",
             "--quiet", "--hostname=mx.example.org"],
            stdin=subprocess.DEVNULL, capture_output=True, text=True,
            timeout=60)

    def test_scram_plus(self):
        self.sub = h.free_port()
        self.start_tls(extra="")
        cert, key = self.ca.issue("mx.example.org", tag="sub",
                                  ips=("127.0.0.1",))
        self.srv.stop()
        self.cfg.write("conf.d/30-sub.ini",
                       f"[listener sub]\nport = {self.sub}\n"
                       "protocol = submission\ntls = starttls\n"
                       f"tls_cert = {cert}\ntls_key = {key}\n")
        r = subprocess.run([h.TESSERA, "account", "passwd", "alice", "-c",
                            self.cfg.path], input="pw\n",
                           capture_output=True, text=True, timeout=60)
        self.assertEqual(r.returncode, 0, r.stderr)
        self.srv = h.Server(self.cfg)
        self.srv.start()
        self.addCleanup(self.srv.stop)
        good = self.gsasl("pw")
        self.assertEqual(good.returncode, 0, good.stdout + good.stderr)
        self.srv.wait_log(r"authenticated account=alice "
                          r"mechanism=SCRAM-SHA-256-PLUS")
        bad = self.gsasl("wrong")
        self.assertNotEqual(bad.returncode, 0, bad.stdout + bad.stderr)


if __name__ == "__main__":
    h.main()
