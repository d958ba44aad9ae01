"""The imap module: IDLE (RFC 2177) reports changes at once (issue 7).

A session in IDLE sees a message delivered over SMTP as "* n EXISTS"
within a second or so, a flag change by another session as FETCH, an
expunge as EXPUNGE; DONE ends IDLE with OK, and anything else with BAD.
"""
import smtplib
import time

import imapfixture as f
import tsharness as h


class Idle(f.ImapTest):
    def setUp(self):
        super().setUp()
        c = self.client()
        self.append(c, msg=f.message("first"))
        self.claim_recent()
        self.a = self.raw_login()
        self.a.send("i1 SELECT INBOX")
        self.a.expect_tagged(b"i1")

    def wait_line(self, want, within=5.0):
        """Read untagged lines until one equals `want`; return seconds."""
        start = time.monotonic()
        self.a.sock.settimeout(within)
        seen = []
        while True:
            line = self.a.readline()
            seen.append(line)
            if line == want:
                return time.monotonic() - start
            self.assertLess(time.monotonic() - start, within, seen)

    def test_idle_sees_smtp_delivery(self):
        self.a.send("i2 IDLE")
        self.assertEqual(self.a.readline(), b"+ idling")
        start = time.monotonic()
        with smtplib.SMTP("127.0.0.1", self.smtp_port, timeout=20) as s:
            s.sendmail("bob@example.org", ["alice@example.org"],
                       f.message("pushed"))
        self.wait_line(b"* 2 EXISTS")
        # generous for sanitizer builds; typically a few milliseconds
        self.assertLess(time.monotonic() - start, 5.0)
        self.a.send("DONE")
        self.a.sock.settimeout(f.TIMEOUT)
        self.a.expect_tagged(b"i2", b"OK IDLE terminated")

    def test_idle_sees_other_sessions(self):
        self.a.send("i2 IDLE")
        self.assertEqual(self.a.readline(), b"+ idling")
        b = self.client()
        b.select("INBOX")
        b.store("1", "+FLAGS", "\\Flagged")
        self.wait_line(b"* 1 FETCH (UID 1 FLAGS (\\Flagged))")
        b.store("1", "+FLAGS", "\\Deleted")
        b.expunge()
        self.wait_line(b"* 1 EXPUNGE")
        self.a.send("DONE")
        self.a.sock.settimeout(f.TIMEOUT)
        self.a.expect_tagged(b"i2")

    def test_idle_bad_end(self):
        self.a.send("i2 IDLE")
        self.a.readline()
        self.a.send("NOT DONE")
        self.a.expect_tagged(b"i2", b"BAD expected DONE")
        self.a.send("i3 NOOP")
        self.a.expect_tagged(b"i3", b"OK")


if __name__ == "__main__":
    h.main()
