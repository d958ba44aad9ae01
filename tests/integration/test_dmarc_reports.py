"""DMARC aggregate reports received by mail, end to end.

tessera runs with the dmarc module's report_address set; the five real
report mails in ../shared/testdata/dmarc/reports/mox (zip and gzip
attachments from five reporters) are sent to it over SMTP.  Each is
parsed and stored, still delivered to the mailbox, listed by `tessera
dmarc reports` with its message counts, not stored twice when sent again;
a mail without a report is delivered and logged as refused; `tessera
dmarc import` takes report files; a report_address that is not an
address is a config error naming file:line.  DNS goes to the local
fixture only (the dmarc/spf checks of these mails find nothing there).
"""
import json
import os
import shutil
import smtplib
import tempfile
import unittest

import dnsfixture
import tsharness as h
from test_smtp_inbound import DOMAINS, SmtpBase

MODS = [(os.path.join(h.BUILDDIR, "modules", n, ".libs"), n)
        for n in ("smtp", "spf", "dkim", "dmarc")]
REPORTS = os.path.join(h.SRCDIR, "..", "shared", "testdata", "dmarc",
                       "reports")
MOX = ("google", "mailru", "outlook", "xs4all", "yahoo")
# org name -> messages in the report (read with Python's XML parser)
EXPECT = {"google.com": 5, "Mail.Ru": 1, "Outlook.com": 2, "xs4all.nl": 1,
          "Yahoo! Inc.": 1}


@unittest.skipIf(dnsfixture.tools_missing(), "nsd/ldnsutils not installed")
@unittest.skipUnless(os.path.isdir(REPORTS), "shared DMARC test data missing")
class DmarcReports(h.TempDirTest):
    @classmethod
    def setUpClass(cls):
        cls.fxdir = tempfile.mkdtemp(prefix="tessera-dmarc-rep-")
        cls.fx = dnsfixture.DnsFixture(cls.fxdir).zone(
            "example.", "", signed=True).start()

    @classmethod
    def tearDownClass(cls):
        cls.fx.stop()
        shutil.rmtree(cls.fxdir, ignore_errors=True)

    stored = SmtpBase.stored

    def configure(self, dmarc="report_address = bob@example.org\n"):
        mods = os.path.join(self.tmp, "modules")
        os.makedirs(mods, exist_ok=True)
        for d, name in MODS:
            link = os.path.join(mods, name + ".so")
            if not os.path.exists(link):
                os.symlink(os.path.abspath(os.path.join(d, name + ".so")),
                           link)
        cfg = self.config(module_dirs=[mods],
                          core={"hostname": "mx.example.org"})
        cfg.write("domains.d/10-example.ini", DOMAINS)
        self.port = h.free_port()
        cfg.write("conf.d/20-smtp.ini",
                  "[module smtp]\nenabled = yes\n"
                  f"[listener mx]\nport = {self.port}\nprotocol = smtp\n\n"
                  "[dns]\nresolver = forward\n"
                  f"forward = 127.0.0.1@{self.fx.port}\n"
                  f"trust_anchor = {self.fx.trust_anchor}\n")
        cfg.write("conf.d/30-spf.ini", "[module spf]\nenabled = yes\n")
        cfg.write("conf.d/30-dkim.ini", "[module dkim]\nenabled = yes\n")
        cfg.write("conf.d/35-dmarc.ini",
                  "[module dmarc]\nenabled = yes\n" + dmarc)
        self.cfg = cfg
        return cfg

    def start(self):
        self.configure()
        self.srv = h.Server(self.cfg)
        self.srv.start()
        self.addCleanup(self.srv.stop)

    def send(self, raw, rcpt="bob@example.org"):
        c = smtplib.SMTP("127.0.0.1", self.port, timeout=60)
        self.addCleanup(c.close)
        self.assertEqual(c.sendmail("noreply@reporter.example", [rcpt], raw),
                         {})
        c.quit()

    def listing(self, *args):
        r = h.run_cli(["dmarc", "reports"] + list(args), config=self.cfg)
        self.assertEqual(r.returncode, 0, r.stderr)
        return r.stdout

    def test_reports_by_mail(self):
        self.start()
        for name in MOX:
            with open(os.path.join(REPORTS, "mox", name + ".eml"),
                      "rb") as f:
                self.send(f.read())
        self.srv.wait_log(r"dmarc report stored", count=5)
        out = self.listing()
        self.assertIn("5 reports", out)
        for org, messages in EXPECT.items():
            line = next((l for l in out.splitlines() if org in l), None)
            self.assertIsNotNone(line, out)
            self.assertIn("ueber.net", line)
            self.assertEqual(int(line.split()[-3]), messages, line)
        # Every report mail is in the mailbox too.
        self.assertEqual(len(self.stored("bob")), 5)
        # The same report again: delivered, not counted twice.
        with open(os.path.join(REPORTS, "mox", "yahoo.eml"), "rb") as f:
            self.send(f.read())
        self.srv.wait_log(r"dmarc report duplicate org=\"Yahoo! Inc.\"")
        self.assertIn("5 reports", self.listing())
        self.assertEqual(len(self.stored("bob")), 6)
        # A mail without a report: delivered, logged.
        self.send(b"From: x@reporter.example\r\nSubject: hi\r\n\r\nhi\r\n")
        self.srv.wait_log(r"dmarc report refused .*no aggregate report")
        self.assertEqual(len(self.stored("bob")), 7)
        # Mail to others is not looked at.
        with open(os.path.join(REPORTS, "mox", "mailru.eml"), "rb") as f:
            self.send(f.read(), rcpt="alice@example.org")
        self.assertEqual(len(self.stored("alice")), 1)
        self.assertIn("5 reports", self.listing())
        # JSON, and one report in full.
        reports = json.loads(self.listing("--json"))
        self.assertEqual(len(reports), 5)
        google = next(r for r in reports
                      if r["report_metadata"]["org_name"] == "google.com")
        self.assertEqual(len(google["records"]), 2)
        self.assertEqual(google["policy_published"]["domain"], "ueber.net")
        r = h.run_cli(["dmarc", "show", google["key"]], config=self.cfg)
        self.assertEqual(r.returncode, 0, r.stderr)
        self.assertEqual(json.loads(r.stdout)["report_metadata"],
                         google["report_metadata"])

    def test_import_files(self):
        cfg = self.configure()
        files = [os.path.join(REPORTS, "mail-dmarc", "test_dmarc.xml.zip"),
                 os.path.join(REPORTS, "opendmarc",
                              "yeah.net!example.com!1337270400!1337356799"
                              ".20120518.xml")]
        r = h.run_cli(["dmarc", "import"] + files, config=cfg)
        self.assertEqual(r.returncode, 0, r.stderr)
        self.assertEqual(r.stdout.count(": stored "), 2, r.stdout)
        out = self.listing("--domain", "example.com")
        self.assertIn("2 reports", out)
        line = next(l for l in out.splitlines() if "yeah.net" in l)
        self.assertEqual(int(line.split()[-3]), 21679)
        # Again: already stored; and a malformed one fails cleanly.
        bad = os.path.join(REPORTS, "opendmarc",
                           "bad.com!example.com!1337140800!1337227200.xml")
        r = h.run_cli(["dmarc", "import", files[0], bad], config=cfg)
        self.assertEqual(r.returncode, 1)
        self.assertIn("already stored", r.stdout)
        self.assertIn("line", r.stderr)
        self.assertIn("2 reports", self.listing())

    def test_bad_report_address(self):
        cfg = self.configure(dmarc="report_address = not an address\n")
        r = h.run_cli(["config", "check"], config=cfg)
        self.assertNotEqual(r.returncode, 0)
        self.assertRegex(r.stderr + r.stdout,
                         r"35-dmarc\.ini:\d+: .*report_address|"
                         r"35-dmarc\.ini:\d+: 'not an address' is not")


if __name__ == "__main__":
    h.main()
