"""The dmarc module end to end: SMTP in, SPF, DKIM and DMARC on the fixture.

nsd (tests/integration/dnsfixture.py) serves the zone `example.` with SPF,
DKIM key and DMARC records.  A message from good.example (p=reject) that
passes SPF and carries a valid dkimpy signature arrives with one
Authentication-Results header holding spf=pass, dkim=pass and dmarc=pass
header.from=good.example; a spoofed one (no DKIM, SPF fail) is refused
550 5.7.1 naming the domain and "DMARC policy"; a failing message of a
p=quarantine domain lands in the Junk mailbox; reject_action = quarantine
and ignore are honoured, and so is temperror_action = tempfail on a DNS
failure.  Without the dmarc module spf and dkim still add their results;
enabling dmarc without spf is refused by `tessera config check` and
`tessera serve` with one clear line.
"""
import os
import re
import shutil
import smtplib
import subprocess
import tempfile
import unittest

import dnsfixture
import tsharness as h
from test_smtp_inbound import DOMAINS, SmtpBase

try:
    import dkim
except ImportError:  # pragma: no cover
    dkim = None

SMTP_DIR = os.path.join(h.BUILDDIR, "modules", "smtp", ".libs")
SPF_DIR = os.path.join(h.BUILDDIR, "modules", "spf", ".libs")
DKIM_DIR = os.path.join(h.BUILDDIR, "modules", "dkim", ".libs")
DMARC_DIR = os.path.join(h.BUILDDIR, "modules", "dmarc", ".libs")
IPREV_DIR = os.path.join(h.BUILDDIR, "modules", "iprev", ".libs")
PASSWORD = "dmarc test password"
VECTORS = os.path.join(h.SRCDIR, "..", "shared", "testdata", "dkim",
                       "dkimpy")


def read(name):
    with open(os.path.join(VECTORS, name), "rb") as f:
        return f.read()


def txt_record(owner, text):
    """A zone-file TXT line, the text split into 200-byte strings."""
    parts = [text[i:i + 200] for i in range(0, len(text), 200)]
    return owner + " TXT " + " ".join('"%s"' % p for p in parts)


def message(sender, subject):
    return (b"From: Sender <" + sender.encode() + b">\r\n"
            b"To: alice@example.org\r\n"
            b"Subject: " + subject.encode() + b"\r\n"
            b"Date: Sun, 22 Nov 2026 09:00:00 +0000\r\n"
            b"Message-ID: <" + subject.replace(" ", ".").encode() +
            b"@test>\r\n"
            b"\r\n"
            b"Hello,\r\nthis is a DMARC test.\r\n")


@unittest.skipIf(dkim is None, "python3-dkim missing")
@unittest.skipIf(dnsfixture.tools_missing(), "nsd/ldnsutils not installed")
@unittest.skipUnless(os.path.isdir(VECTORS), "shared DKIM vectors missing")
class Dmarc(h.TempDirTest):
    @classmethod
    def setUpClass(cls):
        cls.fxdir = tempfile.mkdtemp(prefix="tessera-dmarc-dns-")
        fx = dnsfixture.DnsFixture(cls.fxdir)
        fx.zone("example.", "\n".join([
            'good TXT "v=spf1 ip4:127.0.0.1 -all"',
            '_dmarc.good TXT "v=DMARC1; p=reject; '
            'rua=mailto:agg@good.example"',
            txt_record("rsa._domainkey.good", read("test.txt").decode()
                       .strip()),
            'quar TXT "v=spf1 ip4:192.0.2.1 -all"',
            '_dmarc.quar TXT "v=DMARC1; p=quarantine"',
            'evil TXT "v=spf1 ip4:192.0.2.66 -all"',
            'relaxed TXT "v=spf1 ip4:127.0.0.1 -all"',
            'bounce.relaxed TXT "v=spf1 ip4:127.0.0.1 -all"',
            '_dmarc.relaxed TXT "v=DMARC1; p=reject; aspf=r"',
        ]) + "\n", signed=True)
        cls.fx = fx.start()

    @classmethod
    def tearDownClass(cls):
        cls.fx.stop()
        shutil.rmtree(cls.fxdir, ignore_errors=True)

    stored = SmtpBase.stored

    def start(self, dmarc="", spf=True, dmarc_on=True, dns_port=None,
              expect_start=True, submission=False, iprev=False):
        # One module dir of links: five build dirs make a line longer
        # than the ini reader takes in deep (sanitizer) build trees.
        mods = os.path.join(self.tmp, "modules")
        os.makedirs(mods, exist_ok=True)
        for d, name in ((SMTP_DIR, "smtp"), (SPF_DIR, "spf"),
                        (DKIM_DIR, "dkim"), (DMARC_DIR, "dmarc"),
                        (IPREV_DIR, "iprev")):
            link = os.path.join(mods, name + ".so")
            if not os.path.exists(link):
                os.symlink(os.path.abspath(os.path.join(d, name + ".so")),
                           link)
        cfg = self.config(module_dirs=[mods],
                          core={"hostname": "mx.example.org"})
        cfg.write("domains.d/10-example.ini", DOMAINS)
        self.port = h.free_port()
        dns = (f"[dns]\nresolver = forward\n"
               f"forward = 127.0.0.1@{self.fx.port}\n"
               f"trust_anchor = {self.fx.trust_anchor}\n")
        if dns_port is not None:
            dns = (f"[dns]\nresolver = forward\n"
                   f"forward = 127.0.0.1@{dns_port}\n")
        self.sub = h.free_port()
        sub = (f"allow_plaintext_auth = yes\n\n[listener sub]\n"
               f"port = {self.sub}\nprotocol = submission\n\n"
               if submission else "\n")
        cfg.write("conf.d/20-smtp.ini",
                  "[module smtp]\nenabled = yes\n" + sub +
                  f"[listener mx]\nport = {self.port}\nprotocol = smtp\n\n"
                  + dns)
        cfg.write("conf.d/30-spf.ini", "[module spf]\nenabled = %s\n"
                  "check_helo = no\n" % ("yes" if spf else "no"))
        cfg.write("conf.d/30-dkim.ini", "[module dkim]\nenabled = yes\n")
        cfg.write("conf.d/35-dmarc.ini", "[module dmarc]\nenabled = %s\n"
                  % ("yes" if dmarc_on else "no") + dmarc)
        if iprev:
            cfg.write("conf.d/30-iprev.ini",
                      "[module iprev]\nenabled = yes\n")
        self.cfg = cfg
        if submission:
            r = subprocess.run([h.TESSERA, "account", "passwd", "alice",
                                "-c", cfg.path], input=PASSWORD + "\n",
                               capture_output=True, text=True, timeout=60)
            h.check_sanitizers(r.stderr)
            self.assertEqual(r.returncode, 0, r.stderr)
        if not expect_start:
            return cfg
        self.srv = h.Server(cfg)
        self.srv.start()
        self.addCleanup(self.srv.stop)
        return cfg

    def smtp(self):
        c = smtplib.SMTP("127.0.0.1", self.port, timeout=30,
                         local_hostname="client.example")
        self.addCleanup(c.close)
        return c

    def send(self, mail_from, msg):
        c = self.smtp()
        self.assertEqual(c.sendmail(mail_from, ["alice@example.org"], msg),
                         {})
        c.quit()

    def send_refused(self, mail_from, msg):
        """Send msg; return (code, text) of the refusal at DATA."""
        c = self.smtp()
        with self.assertRaises(smtplib.SMTPDataError) as cm:
            c.sendmail(mail_from, ["alice@example.org"], msg)
        c.quit()
        return cm.exception.smtp_code, cm.exception.smtp_error.decode()

    @staticmethod
    def auth_results(msg):
        """The Authentication-Results field, unfolded."""
        head = msg.split(b"\r\n\r\n", 1)[0].decode()
        m = re.search(r"(?ms)^Authentication-Results:(.*?)\r\n(?![ \t])",
                      head + "\r\n")
        assert m, head
        return re.sub(r"\r\n[ \t]+", " ", m.group(1)).strip()

    @staticmethod
    def signed(msg):
        return dkim.sign(msg, b"rsa", b"good.example", read("test.private"),
                         include_headers=[b"from", b"to", b"subject",
                                          b"date", b"message-id"]) + msg

    def test_one_header_for_all_checks(self):
        # spf, dkim, dmarc and iprev (127.0.0.1 is localhost, answered
        # inside the resolver) in one Authentication-Results header.
        self.start(iprev=True)
        self.send("s@good.example",
                  self.signed(message("s@good.example", "all four")))
        msgs = self.stored("alice")
        self.assertEqual(msgs[0].count(b"Authentication-Results:"), 1)
        ar = self.auth_results(msgs[0])
        for part in (r"iprev=pass \(localhost; DNSSEC insecure\) "
                     r"policy\.iprev=127\.0\.0\.1",
                     r"spf=pass \(DNSSEC secure\) "
                     r"smtp\.mailfrom=s@good\.example",
                     r"dkim=pass \([^)]*\) header\.d=good\.example",
                     r"dmarc=pass \(p=reject sp=reject; DNSSEC secure\)"):
            self.assertRegex(ar, part)

    def test_aligned_message_passes(self):
        self.start()
        self.send("s@good.example",
                  self.signed(message("s@good.example", "good one")))
        msgs = self.stored("alice")
        self.assertEqual(len(msgs), 1)
        ar = self.auth_results(msgs[0])
        self.assertRegex(ar, r"^mx\.example\.org; spf=pass \(DNSSEC "
                             r"secure\) smtp\.mailfrom=s@good\.example; ")
        self.assertRegex(ar, r"; dkim=pass \([^)]*\) "
                             r"header\.d=good\.example header\.s=rsa ")
        self.assertRegex(ar, r"; dmarc=pass \(p=reject sp=reject; DNSSEC "
                             r"secure\) "
                             r"header\.from=good\.example polrec\.p=reject "
                             r"polrec\.domain=good\.example "
                             r"policy\.dmarc=none$")
        self.assertEqual(msgs[0].count(b"Authentication-Results:"), 1)
        self.srv.wait_log(r"dmarc result=pass from=good\.example .*"
                          r"spf_aligned=yes dkim_aligned=yes")

    def test_relaxed_spf_alignment_passes(self):
        self.start()
        # No DKIM; SPF passes for a subdomain of the From domain.
        self.send("b@bounce.relaxed.example",
                  message("n@relaxed.example", "relaxed"))
        ar = self.auth_results(self.stored("alice")[0])
        self.assertIn("dkim=none", ar)
        self.assertRegex(ar, r"dmarc=pass .*header\.from=relaxed\.example")

    def test_spoofed_message_rejected(self):
        self.start()
        code, text = self.send_refused(
            "x@evil.example", message("ceo@good.example", "spoofed"))
        self.assertEqual(code, 550)
        self.assertEqual(text, "5.7.1 Email rejected per DMARC policy for "
                               "good.example")
        self.assertEqual(self.stored("alice"), [])
        self.srv.wait_log(r"dmarc result=fail from=good\.example "
                          r"policy=reject disposition=reject action=reject")
        # A tampered signature does not save it either.
        msg = self.signed(message("ceo@good.example", "tampered"))
        code, _ = self.send_refused(
            "x@evil.example", msg.replace(b"DMARC test", b"DMARC TEST"))
        self.assertEqual(code, 550)

    def test_quarantine_goes_to_junk(self):
        self.start()
        self.send("x@evil.example", message("q@quar.example", "quarantined"))
        self.assertEqual(self.stored("alice"), [])
        junk = self.stored("alice", "Junk")
        self.assertEqual(len(junk), 1)
        ar = self.auth_results(junk[0])
        self.assertRegex(ar, r"spf=fail .*smtp\.mailfrom=x@evil\.example")
        self.assertRegex(ar, r"dmarc=fail \(p=quarantine sp=quarantine; "
                             r"DNSSEC secure\) "
                             r"reason=\"no aligned identifier passed\" "
                             r"header\.from=quar\.example "
                             r"polrec\.p=quarantine "
                             r"polrec\.domain=quar\.example "
                             r"policy\.dmarc=quarantine$")

    def test_reject_action_quarantine(self):
        self.start(dmarc="reject_action = quarantine\n")
        self.send("x@evil.example", message("ceo@good.example", "to junk"))
        self.assertEqual(self.stored("alice"), [])
        junk = self.stored("alice", "Junk")
        self.assertEqual(len(junk), 1)
        self.assertRegex(self.auth_results(junk[0]),
                         r"dmarc=fail .*policy\.dmarc=quarantine$")

    def test_actions_ignore(self):
        self.start(dmarc="reject_action = ignore\n"
                         "quarantine_action = ignore\n")
        self.send("x@evil.example", message("ceo@good.example", "kept"))
        self.send("x@evil.example", message("q@quar.example", "kept too"))
        inbox = self.stored("alice")
        self.assertEqual(len(inbox), 2)
        self.assertEqual(self.stored("alice", "Junk"), [])
        self.assertRegex(self.auth_results(inbox[0]),
                         r"dmarc=fail .*header\.from=good\.example .*"
                         r"policy\.dmarc=none$")

    def test_no_from_and_several_from_domains(self):
        self.start()
        # No From at all: permerror, nothing applied.
        self.send("s@good.example",
                  b"To: alice@example.org\r\nSubject: anon\r\n\r\nhi\r\n")
        ar = self.auth_results(self.stored("alice")[0])
        self.assertIn('dmarc=permerror reason="no From header field"', ar)
        # A second From domain cannot switch DMARC off: good.example's
        # reject still applies.
        code, text = self.send_refused(
            "x@evil.example",
            b"From: a@quar.example, ceo@good.example\r\n"
            b"To: alice@example.org\r\nSubject: two\r\n\r\nhi\r\n")
        self.assertEqual((code, text), (550, "5.7.1 Email rejected per "
                                             "DMARC policy for "
                                             "good.example"))

    def test_dns_failure_is_temperror(self):
        with dnsfixture.ServfailServer() as sf:
            self.start(dmarc="temperror_action = tempfail\n",
                       dns_port=sf.port)
            c = self.smtp()
            with self.assertRaises(smtplib.SMTPDataError) as cm:
                c.sendmail("s@good.example", ["alice@example.org"],
                           message("s@good.example", "servfail"))
            c.quit()
            self.assertEqual(cm.exception.smtp_code, 451)
            self.assertIn(b"4.7.1 DMARC policy of good.example could not "
                          b"be checked", cm.exception.smtp_error)
        self.srv.wait_log(r"dmarc result=temperror from=good\.example")

    def test_timeout_is_temperror(self):
        with dnsfixture.DelayProxy(self.fx.port, delay=1.0) as proxy:
            self.start(dmarc="timeout = 300ms\n", dns_port=proxy.port)
            self.send("x@evil.example", message("q@quar.example", "slow"))
        # temperror_action = accept: delivered to the Inbox, not Junk.
        inbox = self.stored("alice")
        self.assertEqual(len(inbox), 1)
        self.assertIn('dmarc=temperror reason="DMARC evaluation timed out" '
                      'header.from=quar.example',
                      self.auth_results(inbox[0]))

    def test_submission_is_not_evaluated(self):
        self.start(submission=True)
        c = smtplib.SMTP("127.0.0.1", self.sub, timeout=30,
                         local_hostname="client.example.org")
        self.addCleanup(c.close)
        c.login("alice", PASSWORD)
        self.assertEqual(c.sendmail("alice@example.org", ["bob@example.org"],
                                    message("alice@example.org",
                                            "submitted")), {})
        c.quit()
        self.assertEqual(len(self.stored("bob")), 1)
        # Every evaluation logs its result; a submission has none.
        self.assertNotIn("dmarc result=", self.srv.log())
        self.assertNotIn(b"dmarc=", self.stored("bob")[0])

    def test_dmarc_disabled_leaves_spf_and_dkim(self):
        self.start(dmarc_on=False)
        self.send("s@good.example",
                  self.signed(message("s@good.example", "no dmarc")))
        ar = self.auth_results(self.stored("alice")[0])
        self.assertRegex(ar, r"spf=pass .*smtp\.mailfrom=s@good\.example")
        self.assertRegex(ar, r"dkim=pass .*header\.d=good\.example")
        self.assertNotIn("dmarc", ar)
        # And a spoofed message is not refused without it.
        self.send("x@evil.example", message("ceo@good.example", "spoof"))
        self.assertEqual(len(self.stored("alice")), 2)

    def test_dmarc_without_spf_is_refused(self):
        cfg = self.start(spf=False, expect_start=False)
        want = ("module dmarc: requires 'spf', which is disabled")
        r = h.run_cli(["config", "check"], config=cfg)
        self.assertNotEqual(r.returncode, 0)
        out = r.stdout + r.stderr
        self.assertIn(want, out)
        self.assertEqual(len([l for l in out.splitlines()
                              if "requires" in l]), 1, out)
        srv = h.Server(cfg, expect_start=False)
        srv.start()
        self.addCleanup(srv.stop)
        self.assertNotEqual(srv.wait_exit(), 0)
        self.assertIn(want, srv.log())
        self.assertNotIn("tessera started", srv.log())
        # Not configured at all: the message says how to fix it.
        os.remove(os.path.join(cfg.dir, "conf.d", "30-spf.ini"))
        r = h.run_cli(["config", "check"], config=cfg)
        self.assertNotEqual(r.returncode, 0)
        self.assertIn("module dmarc: requires 'spf', which is not "
                      "configured (add [module spf] enabled = yes)",
                      r.stdout + r.stderr)


if __name__ == "__main__":
    h.main()
