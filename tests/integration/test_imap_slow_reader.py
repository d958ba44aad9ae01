"""The imap module: a client that stops reading does not grow server
memory (issue 7).

A FETCH whose answer is ~40 MB (a 4 MB message, ten times) while the
client reads nothing: FETCH streams bodies from disk in bounded chunks
and waits for the connection to drain, so the server's resident memory
grows by far less than the answer; once the client reads, the whole
answer arrives intact and the session goes on.
"""
import os
import time

import imapfixture as f
import tsharness as h


def rss_kib(pid):
    with open(f"/proc/{pid}/status") as st:
        for line in st:
            if line.startswith("VmRSS:"):
                return int(line.split()[1])
    raise AssertionError("no VmRSS")


class SlowReader(f.ImapTest):
    def setUp(self):
        # Under AddressSanitizer freed memory sits in a quarantine and
        # counts as resident: keep it small so RSS means what it says.
        old = os.environ.get("ASAN_OPTIONS")
        os.environ["ASAN_OPTIONS"] = ((old + ":") if old else "") + \
            "quarantine_size_mb=1"
        self.addCleanup(self.restore_env, old)
        super().setUp()

    @staticmethod
    def restore_env(old):
        if old is None:
            os.environ.pop("ASAN_OPTIONS", None)
        else:
            os.environ["ASAN_OPTIONS"] = old

    def test_fetch_waits_for_the_reader(self):
        c = self.client()
        big = f.message("big", ("abcdefghij" * 7 + "\r\n") * 56000)
        self.assertGreater(len(big), 4_000_000)
        self.append(c, msg=big)
        rc = self.raw_login()
        rc.send("s1 SELECT INBOX")
        rc.expect_tagged(b"s1")
        pid = self.srv.proc.pid
        before = rss_kib(pid)
        rc.send("s2 FETCH 1 (" + " ".join(["BODY.PEEK[]"] * 10) + ")")
        # Give the server time to fill every buffer it would fill.
        peak = before
        deadline = time.monotonic() + 1.5
        while time.monotonic() < deadline:
            peak = max(peak, rss_kib(pid))
            time.sleep(0.05)
        growth_mib = (peak - before) / 1024
        self.assertLess(growth_mib, 8, f"grew {growth_mib:.1f} MiB")
        # Now read it all: complete and intact.
        head = rc.readline()
        self.assertTrue(head.startswith(b"* 1 FETCH (BODY[] {"), head)
        body = rc.read_bytes(len(big))
        self.assertEqual(body, big)
        for _ in range(9):
            rest = rc.read_bytes(len(b" BODY[] {%d}\r\n" % len(big)))
            self.assertEqual(rest, b" BODY[] {%d}\r\n" % len(big))
            self.assertEqual(rc.read_bytes(len(big)), big)
        self.assertEqual(rc.readline(), b")")
        rc.expect_tagged(b"s2", b"OK")
        rc.send("s3 NOOP")
        rc.expect_tagged(b"s3", b"OK")


if __name__ == "__main__":
    h.main()
