"""Direct delivery through the queue and the transports module (issue 6).

A submitted message for bob@remote.example is queued, its MX found through
the DNS fixture (nsd on loopback: remote.example MX mx.remote.example, A
127.0.0.1), and delivered by the `direct` transport to a second tessera
acting as the remote MX on a loopback port ([module transports]
direct_port), over STARTTLS since the remote offers it; the attempt's
STARTTLS/REQUIRETLS capabilities are recorded.  A domain with a null MX
(RFC 7505) fails at once, and the sender gets a DSN saying so; an MX
whose server refuses the recipient gives a DSN naming that server.
The outbound_tls_policy hook (tests/modules/tlspolicy, standing in for
the dane and mtasts modules) can demand PKIX (an untrusted certificate
then keeps the mail queued, with no retry in clear), DANE (a TLSA record
matching the MX's key delivers even with an untrusted CA), MX patterns
(hosts outside them are skipped), or defer the delivery.
(The zones are under example., not test.: libunbound answers the
special-use test. domain itself, with NXDOMAIN.)
"""
import base64
import email
import email.policy
import os
import re
import shutil
import smtplib
import sqlite3
import subprocess
import tempfile
import time
import unittest

import dnsfixture
import tlsfixture
import tsharness as h

SMTP_DIR = os.path.join(h.BUILDDIR, "modules", "smtp", ".libs")
TRANSPORTS_DIR = os.path.join(h.BUILDDIR, "modules", "transports", ".libs")


def read_store(cfg, account, mailbox="Inbox"):
    adir = os.path.join(cfg.data_dir, "accounts", account)
    db = os.path.join(adir, "index.db")
    if not os.path.exists(db):
        return []
    con = sqlite3.connect(db, timeout=10)
    try:
        rows = con.execute(
            "SELECT m.id, m.prefix FROM messages m JOIN mailboxes b"
            " ON b.id = m.mailbox_id WHERE b.name = ? ORDER BY m.uid",
            (mailbox,)).fetchall()
    except sqlite3.OperationalError:
        # The store is being created (file there, schema not yet
        # committed): nothing stored yet; callers poll again.
        return []
    finally:
        con.close()
    out = []
    for mid, prefix in rows:
        path = os.path.join(adir, "msg", "%x" % (mid // 4096), str(mid))
        with open(path, "rb") as f:
            out.append(bytes(prefix) + f.read())
    return out


@unittest.skipIf(dnsfixture.tools_missing(), "nsd/ldnsutils not installed")
class DirectDelivery(h.TempDirTest):
    @classmethod
    def setUpClass(cls):
        cls.fxdir = tempfile.mkdtemp(prefix="tessera-dns-")
        fx = dnsfixture.DnsFixture(cls.fxdir)
        fx.zone("remote.example.", "@ MX 10 mx\nmx A 127.0.0.1")
        fx.zone("nullmx.example.", "@ MX 0 .")
        cls.fx = fx.start()

    @classmethod
    def tearDownClass(cls):
        cls.fx.stop()
        shutil.rmtree(cls.fxdir, ignore_errors=True)

    def setUp(self):
        super().setUp()
        self.ca = tlsfixture.TestCA(os.path.join(self.tmp, "ca"))
        cert, key = self.ca.issue("mx.remote.example")
        self.mx_cert = cert
        # The remote MX: a second tessera receiving for remote.example.
        rdir = os.path.join(self.tmp, "remote")
        os.makedirs(rdir)
        rcfg = h.Config(rdir, core={"hostname": "mx.remote.example"},
                        module_dirs=[h.TEST_MODULES, SMTP_DIR])
        rcfg.write("domains.d/10-remote.ini",
                   "[domain remote.example]\n\n[account bob]\n"
                   "addresses = bob@remote.example\n")
        self.mx_port = h.free_port()
        rcfg.write("conf.d/20-smtp.ini",
                   "[module smtp]\nenabled = yes\n\n"
                   f"[listener mx]\nport = {self.mx_port}\n"
                   "protocol = smtp\ntls = starttls\n"
                   f"tls_cert = {cert}\ntls_key = {key}\n")
        self.rcfg = rcfg
        self.remote = h.Server(rcfg)
        self.remote.start()
        self.addCleanup(self.remote.stop)
        # Our server: submission, the queue, direct delivery.
        self.cfg = self.config(module_dirs=[h.TEST_MODULES, SMTP_DIR,
                                            TRANSPORTS_DIR],
                               core={"hostname": "mx.example.org"})
        self.cfg.write("domains.d/10-example.ini",
                       "[domain example.org]\n\n[account alice]\n"
                       "addresses = alice@example.org\n")
        self.port = h.free_port()
        self.write_config()
        r = subprocess.run([h.TESSERA, "account", "passwd", "alice", "-c",
                            self.cfg.path], input="pw\n",
                           capture_output=True, text=True, timeout=60)
        self.assertEqual(r.returncode, 0, r.stderr)
        self.srv = h.Server(self.cfg)
        self.srv.start()
        self.addCleanup(self.srv.stop)

    def write_config(self, transports=""):
        self.cfg.write("conf.d/20-smtp.ini",
                       "[module smtp]\nenabled = yes\n"
                       "allow_plaintext_auth = yes\n\n"
                       f"[listener sub]\nport = {self.port}\n"
                       "protocol = submission\n\n"
                       "[module transports]\nenabled = yes\n"
                       f"direct_port = {self.mx_port}\n"
                       "address_family = ipv4-only\n"
                       "connect_timeout = 5s\ncommand_timeout = 20s\n"
                       + transports +
                       "\n[queue]\nretry_first = 500ms\n\n"
                       "[dns]\nresolver = forward\n"
                       f"forward = 127.0.0.1@{self.fx.port}\n")

    def restart_with_policy(self, policy, trust_ca=False):
        """Our server again, with the tlspolicy test module's hook."""
        self.srv.stop()
        self.write_config(f"tls_ca_file = {self.ca.cert}\n"
                          if trust_ca else "")
        self.cfg.write("conf.d/40-tlspolicy.ini",
                       "[module tlspolicy]\nenabled = yes\n" + policy)
        self.srv = h.Server(self.cfg)
        self.srv.start()
        self.addCleanup(self.srv.stop)

    def submit(self, rcpt, subject="out"):
        c = smtplib.SMTP("127.0.0.1", self.port, timeout=20)
        self.addCleanup(c.close)
        c.login("alice", "pw")
        msg = (f"From: alice@example.org\r\nTo: {rcpt}\r\n"
               f"Subject: {subject}\r\nMessage-ID: <{subject}@example.org>"
               "\r\n\r\nhello over there\r\n").encode()
        self.assertEqual(c.sendmail("alice@example.org", [rcpt], msg), {})
        c.quit()
        return msg

    def wait_for(self, fn, what, timeout=30):
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            got = fn()
            if got:
                return got
            time.sleep(0.05)
        self.fail(f"timed out waiting for {what}\n--- ours:\n"
                  f"{self.srv.log()}\n--- remote:\n{self.remote.log()}")

    def test_delivered_to_mx_over_starttls(self):
        sent = self.submit("bob@remote.example")
        msgs = self.wait_for(lambda: read_store(self.rcfg, "bob"),
                             "the remote MX to store the message")
        self.assertEqual(len(msgs), 1)
        got = msgs[0]
        self.assertTrue(got.endswith(sent), got)
        # Our Received (from submission) and theirs, with STARTTLS.
        self.assertIn(b"by mx.example.org (tessera) with ESMTPA", got)
        self.assertRegex(got, rb"Received: from mx\.example\.org "
                         rb"\(\[127\.0\.0\.1\]\)\r\n\tby mx\.remote\.example "
                         rb"\(tessera\) with ESMTPS")
        self.assertIn(b"Return-Path: <alice@example.org>", got)
        self.srv.wait_log(r"queue id=1 domain=remote.example host=\S+ "
                          r"starttls=yes requiretls=yes")
        self.srv.wait_log(r"queue delivered id=1 to=<bob@remote.example> "
                          r"attempt=1 code=250")
        # What remote.example offered is kept for alice's account.
        con = sqlite3.connect(os.path.join(self.cfg.data_dir, "queue",
                                           "index.db"), timeout=10)
        try:
            rows = con.execute("SELECT account, domain, starttls,"
                               " requiretls FROM recipient_domain_tls"
                               ).fetchall()
        finally:
            con.close()
        self.assertEqual(rows, [("alice", "remote.example", 1, 1)])
        # Nothing left in the queue.
        r = h.run_cli(["queue", "list"], config=self.cfg)
        self.assertEqual(r.stdout, "ok 0 messages queued\n")

    def dsn(self):
        msgs = self.wait_for(lambda: read_store(self.cfg, "alice"),
                             "a DSN in alice's Inbox")
        m = email.message_from_bytes(msgs[0], policy=email.policy.default)
        self.assertEqual(m.get_content_type(), "multipart/report")
        return m, m.get_payload()[1].get_payload()[1]

    def test_null_mx_fails_at_once(self):
        self.submit("x@nullmx.example", subject="nullmx")
        m, rcpt = self.dsn()
        self.assertEqual(rcpt["Final-Recipient"], "rfc822;x@nullmx.example")
        self.assertEqual(rcpt["Action"], "failed")
        self.assertEqual(rcpt["Status"], "5.1.10")
        self.assertEqual(m["References"], "<nullmx@example.org>")
        self.srv.wait_log(r"queue failed id=1 to=<x@nullmx.example> "
                          r"attempt=1 code=556")

    def test_remote_refusal_reported(self):
        self.submit("nobody@remote.example", subject="nobody")
        m, rcpt = self.dsn()
        self.assertEqual(rcpt["Final-Recipient"],
                         "rfc822;nobody@remote.example")
        self.assertEqual(rcpt["Status"], "5.1.1")
        self.assertEqual(rcpt["Remote-MTA"], "dns; mx.remote.example")
        self.assertIn("550 5.1.1", rcpt["Diagnostic-Code"])

    # --- the outbound_tls_policy hook (tests/modules/tlspolicy) ---------

    def queue_error(self):
        r = h.run_cli(["queue", "list"], config=self.cfg)
        return r.stdout

    def test_policy_pkix_verified_delivers(self):
        self.restart_with_policy("pkix_domain = remote.example\n"
                                 "pending = yes\n", trust_ca=True)
        self.submit("bob@remote.example")
        self.wait_for(lambda: read_store(self.rcfg, "bob"),
                      "delivery under a PKIX policy")
        self.srv.wait_log(r"tls policy id=1 domain=remote.example "
                          r"mode=require-pkix .*source=tlspolicy")

    def test_policy_pkix_unverified_keeps_mail(self):
        # The MX's certificate is from a CA we do not trust: no
        # delivery, and no retry in clear.
        self.restart_with_policy("pkix_domain = remote.example\n")
        self.submit("bob@remote.example")
        self.srv.wait_log(r"host failed id=1 host=mx.remote.example "
                          r"code=451")
        self.srv.wait_log(r"queue deferred id=1 to=<bob@remote.example> "
                          r"attempt=1 code=451 status=4.7.5")
        self.assertNotIn("retrying without it", self.srv.log())
        self.assertEqual(read_store(self.rcfg, "bob"), [])

    def test_policy_mx_patterns(self):
        self.restart_with_policy("mx_domain = remote.example\n"
                                 "mx_patterns = *.elsewhere.example\n")
        self.submit("bob@remote.example")
        self.srv.wait_log(r"host skipped id=1 host=mx.remote.example: MX "
                          r"host mx.remote.example is not allowed by the "
                          r"TLS policy \(tlspolicy\)")
        self.srv.wait_log(r"queue deferred id=1 .*status=4.7.5")
        self.assertEqual(read_store(self.rcfg, "bob"), [])
        # A matching pattern lets it through.
        self.restart_with_policy("mx_domain = remote.example\n"
                                 "mx_patterns = mail.other.example "
                                 "*.remote.example\n")
        r = h.run_cli(["queue", "kick", "--all"], config=self.cfg)
        self.assertEqual(r.returncode, 0, r.stdout + r.stderr)
        self.wait_for(lambda: read_store(self.rcfg, "bob"),
                      "delivery once the pattern matches")

    def spki_sha256(self, cert):
        """DANE-EE 3 1 1 data of a PEM certificate (certtool)."""
        r = subprocess.run(["certtool", "--certificate-info",
                            "--infile", cert], capture_output=True,
                           text=True, timeout=30)
        self.assertEqual(r.returncode, 0, r.stderr)
        m = re.search(r"Public Key PIN:\s*pin-sha256:(\S+)", r.stdout)
        self.assertIsNotNone(m, r.stdout)
        return base64.b64decode(m.group(1)).hex()

    def test_policy_dane(self):
        # The MX's certificate is from a CA we do not trust, but its
        # key matches the policy's TLSA record: DANE-EE passes.
        good = self.spki_sha256(self.mx_cert)
        self.restart_with_policy("dane_host = mx.remote.example\n"
                                 f"dane_tlsa = 3 1 1 {good}\n")
        self.submit("bob@remote.example")
        self.wait_for(lambda: read_store(self.rcfg, "bob"),
                      "delivery verified by DANE")
        # A record that does not match: kept, no clear retry.
        bad = "00" * 32
        self.restart_with_policy("dane_host = mx.remote.example\n"
                                 f"dane_tlsa = 3 1 1 {bad}\n")
        self.submit("bob@remote.example", subject="second")
        self.srv.wait_log(r"queue deferred id=2 to=<bob@remote.example> "
                          r"attempt=1 code=451 status=4.7.5")
        self.assertNotIn("retrying without it", self.srv.log())
        self.assertEqual(len(read_store(self.rcfg, "bob")), 1)

    def test_policy_hook_tempfail(self):
        self.restart_with_policy("tempfail_domain = remote.example\n")
        self.submit("bob@remote.example")
        self.srv.wait_log(r"queue deferred id=1 to=<bob@remote.example> "
                          r"attempt=1 code=451 status=4.7.5 remote=- "
                          r"reply=\"policy not ready\"")


if __name__ == "__main__":
    h.main()
