"""`tessera localserve`: the developer's mail server on loopback (issue 5,
acceptance 6).

It runs as its own process (not through tsharness.Server, which runs
`serve`) in a temp dir with a random free port base: any recipient on
any domain lands in the localserve account's Inbox, the special
localparts give their errors (temperror 451, permerror 550, timeout no
answer for a long while), and authenticated submission with the
documented password delivers a remote recipient locally, from any
sender; a wrong password is refused.
"""
import imaplib
import os
import re
import signal
import smtplib
import socket
import ssl
import subprocess
import time

import tsharness as h

MSG = b"From: dev@example.com\r\nSubject: localserve\r\n\r\nhello\r\n"


def free_base():
    """A port base B with B+25, B+143, B+465, B+587 and B+993 free a
    moment ago."""
    for _ in range(200):
        base = h.free_port() % 60000 + 1000
        try:
            for off in (25, 143, 465, 587, 993):
                with socket.socket() as s:
                    s.bind(("127.0.0.1", base + off))
            return base
        except OSError:
            continue
    raise AssertionError("no free port base found")


class Localserve(h.TempDirTest):

    def setUp(self):
        super().setUp()
        self.dir = os.path.join(self.tmp, "ls")
        self.base = free_base()
        self.log_path = os.path.join(self.tmp, "localserve.log")
        self.logf = open(self.log_path, "w")
        self.proc = subprocess.Popen(
            [h.TESSERA, "localserve", "--dir", self.dir,
             "--port-base", str(self.base)],
            stdout=self.logf, stderr=subprocess.STDOUT,
            stdin=subprocess.DEVNULL)
        self.addCleanup(self.stop)
        deadline = time.monotonic() + 20
        while "tessera started" not in self.log():
            if self.proc.poll() is not None:
                raise AssertionError("localserve exited:\n" + self.log())
            if time.monotonic() > deadline:
                raise AssertionError("localserve did not start:\n" +
                                     self.log())
            time.sleep(0.02)

    def log(self):
        with open(self.log_path, errors="replace") as f:
            return f.read()

    def stop(self):
        """SIGTERM by PID, wait, fail on sanitizer reports."""
        if self.proc.poll() is None:
            self.proc.send_signal(signal.SIGTERM)
            try:
                self.proc.wait(timeout=20)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait()
        self.logf.close()
        h.check_sanitizers(self.log())

    def inbox_total(self):
        r = h.run_cli(["mailbox", "list", "localserve", "-c",
                       os.path.join(self.dir, "tessera.ini")])
        self.assertEqual(r.returncode, 0, r.stderr)
        m = re.search(r"^Inbox\s+-\s+(\d+)", r.stdout, re.M)
        self.assertIsNotNone(m, r.stdout)
        return int(m.group(1))

    def smtp(self):
        c = smtplib.SMTP("127.0.0.1", self.base + 25, timeout=10)
        self.addCleanup(c.close)
        c.ehlo("client.example")
        return c

    def test_banner_and_files(self):
        out = self.log()
        self.assertIn(f"127.0.0.1:{self.base + 25}", out)
        self.assertIn(f"127.0.0.1:{self.base + 587}", out)
        self.assertIn(f"127.0.0.1:{self.base + 465}", out)
        self.assertIn("account localserve, password localserve", out)
        for name in ("tessera.ini", "domains.d/localserve.ini",
                     "conf.d/20-smtp.ini"):
            self.assertTrue(os.path.isfile(os.path.join(self.dir, name)))

    def test_any_address_and_special_localparts(self):
        c = self.smtp()
        self.assertEqual(c.sendmail("dev@example.com",
                                    ["anyone@anywhere.example"], MSG), {})
        self.assertEqual(c.sendmail("dev@example.com", ["x@localhost"],
                                    MSG), {})
        self.assertEqual(self.inbox_total(), 2)

        c.mail("dev@example.com")
        self.assertEqual(c.rcpt("temperror@x.test"),
                         (451, b"4.0.0 temporary error (test address)"))
        self.assertEqual(c.rcpt("permerror@x.test"),
                         (550, b"5.0.0 permanent error (test address)"))
        c.rset()
        c.quit()

        # timeout…: no answer within 2 s (the server waits 30 s).
        s = socket.create_connection(("127.0.0.1", self.base + 25),
                                     timeout=10)
        cl = h.LineClient(s)
        self.assertTrue(cl.readline().startswith("220 "))
        cl.send("HELO client.example")
        self.assertTrue(cl.readline().startswith("250 "))
        cl.send("MAIL FROM:<dev@example.com>")
        self.assertEqual(cl.readline(), "250 2.1.0 OK")
        cl.send("RCPT TO:<timeout@x.test>")
        s.settimeout(2)
        with self.assertRaises(socket.timeout):
            cl.readline()
        cl.close()
        self.assertEqual(self.inbox_total(), 2)

    def test_submission_delivers_locally(self):
        ctx = ssl.create_default_context()
        ctx.check_hostname = False
        ctx.verify_mode = ssl.CERT_NONE
        c = smtplib.SMTP("127.0.0.1", self.base + 587, timeout=10)
        self.addCleanup(c.close)
        c.ehlo("client.example")
        c.starttls(context=ctx)
        c.ehlo("client.example")
        c.login("localserve", "localserve")
        # Any sender too: a development server takes what the app sends.
        self.assertEqual(c.sendmail("dev@example.com",
                                    ["someone@remote.example"], MSG), {})
        c.quit()
        self.assertEqual(self.inbox_total(), 1)

    def test_imap_reads_the_inbox(self):
        if not os.path.exists(os.path.join(self.dir, "conf.d",
                                           "20-imap.ini")):
            self.skipTest("imap module not built")
        self.assertIn(f"127.0.0.1:{self.base + 143}", self.log())
        s = self.smtp()
        s.sendmail("dev@example.com", ["anyone@example.net"], MSG)
        ctx = ssl._create_unverified_context()
        c = imaplib.IMAP4("127.0.0.1", self.base + 143, timeout=10)
        self.addCleanup(c.shutdown)
        c.starttls(ssl_context=ctx)
        c.login("localserve", "localserve")
        self.assertEqual(c.select("INBOX"), ("OK", [b"1"]))
        d = imaplib.IMAP4_SSL("127.0.0.1", self.base + 993,
                              ssl_context=ctx, timeout=10)
        self.addCleanup(d.shutdown)
        d.login("localserve", "localserve")
        d.select("INBOX")
        typ, data = d.fetch("1", "(BODY.PEEK[HEADER.FIELDS (Subject)])")
        self.assertEqual(data[0][1], b"Subject: localserve\r\n\r\n")

    def test_wrong_password_refused(self):
        c = smtplib.SMTP("127.0.0.1", self.base + 587, timeout=10)
        self.addCleanup(c.close)
        c.ehlo("client.example")
        c.starttls(context=ssl._create_unverified_context())
        c.ehlo("client.example")
        with self.assertRaises(smtplib.SMTPAuthenticationError):
            c.login("localserve", "wrong")


if __name__ == "__main__":
    h.main()
