"""The outbound queue (issue 6): durable, retried, reported.

Messages submitted for remote recipients are queued and handed to the
`direct` transport — here tests/modules/qtransport, which answers by
recipient localpart (ok…, perm…, temp…, flakyN…, slow…) so the queue's
behaviour shows without a network: delivered once and removed;
temporary failures retried with doubling waits ([queue] retry_first is
scaled down) until success; permanent failures and expired temporary
ones produce an RFC 3464 report in the sender's Inbox that Python's
email parser reads as multipart/report with the right recipients and
threading headers; NOTIFY=NEVER suppresses it; one delay notice; and a
SIGKILL with 200 messages queued and deliveries in flight loses nothing
and resends nothing whose success was recorded.
"""
import email
import email.policy
import os
import re
import signal
import smtplib
import sqlite3
import subprocess
import time

import tsharness as h

SMTP_DIR = os.path.join(h.BUILDDIR, "modules", "smtp", ".libs")

DOMAINS = """\
[domain example.org]

[account alice]
addresses = alice@example.org
"""

MSGID = "<orig-1@example.org>"


def body(subject="queued", msgid=MSGID):
    return (f"From: alice@example.org\r\nTo: someone@remote.test\r\n"
            f"Subject: {subject}\r\nMessage-ID: {msgid}\r\n"
            f"Date: Sun, 22 Nov 2026 04:00:00 +0000\r\n\r\n"
            f"hello\r\n").encode()


class QueueBase(h.TempDirTest):
    QUEUE = ("retry_first = 300ms\nretry_max = 2s\ngive_up_after = 1h\n"
             "delay_notice_after = 0\n")
    QTRANSPORT = ""

    def setUp(self):
        super().setUp()
        cfg = self.config(module_dirs=[h.TEST_MODULES, SMTP_DIR],
                          core={"hostname": "mx.example.org"})
        cfg.write("domains.d/10-example.ini", DOMAINS)
        self.port = h.free_port()
        cfg.write("conf.d/20-smtp.ini",
                  "[module smtp]\nenabled = yes\n"
                  "allow_plaintext_auth = yes\n\n"
                  f"[listener sub]\nport = {self.port}\n"
                  "protocol = submission\n\n"
                  "[module qtransport]\nenabled = yes\n" +
                  self.QTRANSPORT + "\n[queue]\n" + self.QUEUE)
        self.cfg = cfg
        r = subprocess.run([h.TESSERA, "account", "passwd", "alice", "-c",
                            cfg.path], input="pw\n", capture_output=True,
                           text=True, timeout=60)
        self.assertEqual(r.returncode, 0, r.stderr)
        self.start_server()

    def start_server(self):
        self.srv = h.Server(self.cfg)
        self.srv.start()
        self.addCleanup(self.srv.stop)

    def session(self):
        c = smtplib.SMTP("127.0.0.1", self.port, timeout=20)
        self.addCleanup(c.close)
        c.login("alice", "pw")
        return c

    def submit(self, rcpts, msg=None, rcpt_options=()):
        c = self.session()
        self.assertEqual(c.sendmail("alice@example.org", rcpts,
                                    msg or body(),
                                    rcpt_options=list(rcpt_options)), {})
        c.quit()

    def queue_rows(self):
        db = os.path.join(self.cfg.data_dir, "queue", "index.db")
        con = sqlite3.connect(db, timeout=10)
        try:
            return con.execute(
                "SELECT r.msg_id, r.address, r.status, r.attempts"
                " FROM recipients r ORDER BY r.msg_id").fetchall()
        finally:
            con.close()

    def inbox(self):
        """alice's Inbox as parsed email messages, in UID order."""
        adir = os.path.join(self.cfg.data_dir, "accounts", "alice")
        db = os.path.join(adir, "index.db")
        if not os.path.exists(db):
            return []
        con = sqlite3.connect(db, timeout=10)
        try:
            rows = con.execute(
                "SELECT m.id, m.prefix FROM messages m JOIN mailboxes b"
                " ON b.id = m.mailbox_id WHERE b.name = 'Inbox'"
                " ORDER BY m.uid").fetchall()
        finally:
            con.close()
        out = []
        for mid, prefix in rows:
            path = os.path.join(adir, "msg", "%x" % (mid // 4096), str(mid))
            with open(path, "rb") as f:
                out.append(email.message_from_bytes(
                    bytes(prefix) + f.read(), policy=email.policy.default))
        return out

    def wait_inbox(self, count, timeout=20):
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            msgs = self.inbox()
            if len(msgs) >= count:
                return msgs
            time.sleep(0.05)
        self.fail(f"Inbox has {len(self.inbox())} messages, "
                  f"want {count}:\n{self.srv.log()}")

    def wait_queue_empty(self, timeout=30):
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            rows = [r for r in self.queue_rows() if r[2] == 0]
            if not rows:
                return
            time.sleep(0.05)
        self.fail(f"queue not empty: {self.queue_rows()}")

    def results(self, log=None):
        """(id, address, attempt, code) of every qtransport result."""
        return [(int(m[0]), m[1], int(m[2]), int(m[3])) for m in re.findall(
            r"qtransport result id=(\d+) to=(\S+) attempt=(\d+) "
            r"code=(\d+) via=", log if log is not None else self.srv.log())]


class QueueDelivery(QueueBase):
    def test_delivered_once_and_removed(self):
        self.submit(["ok1@remote.test"])
        self.srv.wait_log(r"queue delivered id=1 to=<ok1@remote.test> "
                          r"attempt=1 code=250")
        self.wait_queue_empty()
        self.assertEqual(self.results(),
                         [(1, "ok1@remote.test", 1, 250)])
        msgdir = os.path.join(self.cfg.data_dir, "queue", "msg")
        deadline = time.monotonic() + 10
        while os.listdir(msgdir) and time.monotonic() < deadline:
            time.sleep(0.05)
        self.assertEqual(os.listdir(msgdir), [])
        self.assertEqual(self.inbox(), [])  # no DSN for a success

    def test_temporary_then_success_with_backoff(self):
        self.submit(["flaky2@remote.test"])
        self.srv.wait_log(r"queue delivered id=1 to=<flaky2@remote.test> "
                          r"attempt=3 code=250", timeout=20)
        self.assertEqual([r[2:] for r in self.results()],
                         [(1, 451), (2, 451), (3, 250)])
        stamps = []
        for line in self.srv.log().splitlines():
            if "qtransport result id=1" in line:
                t = re.match(r"\S+T(\d\d):(\d\d):(\d\d\.\d+)Z", line)
                stamps.append(int(t[1]) * 3600 + int(t[2]) * 60 +
                              float(t[3]))
        # Timers never fire early: the waits are at least 300 and 600 ms.
        self.assertGreaterEqual(stamps[1] - stamps[0], 0.29)
        self.assertGreaterEqual(stamps[2] - stamps[1], 0.59)
        self.wait_queue_empty()
        self.assertEqual(self.inbox(), [])

    def test_permanent_failure_dsn(self):
        self.submit(["perm1@remote.test", "ok2@remote.test"],
                    rcpt_options=["ORCPT=rfc822;Perm1+40remote.test"])
        msgs = self.wait_inbox(1)
        self.assertEqual(len(msgs), 1)
        dsn = msgs[0]
        self.assertEqual(dsn.get_content_type(), "multipart/report")
        self.assertEqual(dsn.get_param("report-type"), "delivery-status")
        self.assertEqual(dsn["In-Reply-To"], MSGID)
        self.assertEqual(dsn["References"], MSGID)
        self.assertEqual(dsn["To"].addresses[0].addr_spec,
                         "alice@example.org")
        self.assertIn("Failure", dsn["Subject"])
        parts = dsn.get_payload()
        self.assertEqual([p.get_content_type() for p in parts],
                         ["text/plain", "message/delivery-status",
                          "text/rfc822-headers"])
        blocks = parts[1].get_payload()
        self.assertEqual(blocks[0]["Reporting-MTA"], "dns; mx.example.org")
        self.assertEqual(len(blocks), 2)  # per-message + one recipient
        rcpt = blocks[1]
        self.assertEqual(rcpt["Final-Recipient"], "rfc822;perm1@remote.test")
        self.assertEqual(rcpt["Original-Recipient"],
                         "rfc822;Perm1@remote.test")
        self.assertEqual(rcpt["Action"], "failed")
        self.assertEqual(rcpt["Status"], "5.1.1")
        self.assertEqual(rcpt["Remote-MTA"], "dns; mx.qtransport.test")
        self.assertIn("550 5.1.1 no such user", rcpt["Diagnostic-Code"])
        self.assertIn(b"Subject: queued", parts[2].get_payload(
            decode=True) or parts[2].as_bytes())
        self.assertIn("perm1@remote.test", parts[0].get_content())
        self.wait_queue_empty()

    def test_notify_never_means_no_dsn(self):
        self.submit(["perm2@remote.test"], rcpt_options=["NOTIFY=NEVER"])
        self.srv.wait_log(r"queue failed id=1 to=<perm2@remote.test>")
        self.wait_queue_empty()
        time.sleep(0.3)
        self.assertEqual(self.inbox(), [])


class QueueRoutes(QueueBase):
    """queue_route hooks pick a transport instance, or refuse."""
    QTRANSPORT = ("route_domain = routed.test\n"
                  "reject_domain = nowhere.test\n")

    def test_route_hook_picks_transport(self):
        self.submit(["ok1@routed.test", "ok2@remote.test"])
        self.srv.wait_log(r"qtransport result id=1 to=ok1@routed.test "
                          r"attempt=1 code=250 via=relay1")
        self.srv.wait_log(r"qtransport result id=1 to=ok2@remote.test "
                          r"attempt=1 code=250 via=direct")
        self.assertIn("transport=qrelay instance=relay1", self.srv.log())
        self.wait_queue_empty()

    def test_route_hook_refusal_fails_with_dsn(self):
        self.submit(["x@nowhere.test"])
        msgs = self.wait_inbox(1)
        rcpt = msgs[0].get_payload()[1].get_payload()[1]
        self.assertEqual(rcpt["Status"], "5.7.1")
        self.assertIn("no route to nowhere.test",
                      msgs[0].get_payload()[0].get_content())
        self.assertEqual(self.results(), [])


class QueueCli(QueueBase):
    """tessera queue list|hold|release|kick|drop|requiretls."""
    QUEUE = ("retry_first = 1h\nretry_max = 2h\ngive_up_after = 5d\n"
             "delay_notice_after = 0\n")

    def cli(self, *args):
        r = h.run_cli(["queue", *args], config=self.cfg)
        return r.returncode, r.stdout + r.stderr

    def test_list_hold_release_kick_requiretls_drop(self):
        self.submit(["temp1@remote.test"])
        self.srv.wait_log(r"queue deferred id=1 to=<temp1@remote.test>")
        self.submit(["temp2@remote.test"], msg=body(msgid="<b@x>"))
        self.srv.wait_log(r"queue deferred id=2 to=<temp2@remote.test>")
        code, out = self.cli("list")
        self.assertEqual(code, 0, out)
        self.assertTrue(out.startswith("ok 2 messages queued\n"), out)
        self.assertRegex(out, r"(?m)^1 from=<alice@example.org> "
                         r"account=alice size=\d+ queued=\S+Z hold=no "
                         r"requiretls=no$")
        self.assertRegex(out, r"(?m)^  to=<temp1@remote.test> "
                         r"status=queued attempts=1 next=\S+Z "
                         r"last=\"451 4.4.1 try later \(qtransport\)\" "
                         r"remote=mx.qtransport.test \[192.0.2.25\]$")
        # The next attempt is an hour away: kick makes it now.
        self.assertEqual(self.cli("kick", "1"), (0, "ok queue kick done\n"))
        self.srv.wait_log(r"qtransport result id=1 to=temp1@remote.test "
                          r"attempt=2")
        # Held messages are not attempted, even when kicked.
        self.assertEqual(self.cli("hold", "--all")[0], 0)
        self.assertEqual(self.cli("kick", "2")[0], 0)
        time.sleep(0.5)
        self.assertNotIn("id=2 to=temp2@remote.test attempt=2",
                         self.srv.log())
        self.assertIn("hold=yes", self.cli("list")[1])
        self.assertEqual(self.cli("release", "2")[0], 0)
        self.srv.wait_log(r"qtransport result id=2 to=temp2@remote.test "
                          r"attempt=2")
        self.assertEqual(self.cli("requiretls", "1", "no")[0], 0)
        self.assertIn("requiretls=no (override no)", self.cli("list")[1])
        # Bad input: clear errors, exit 1 (server) or 2 (usage).
        self.assertEqual(self.cli("drop", "99"),
                         (1, "error no queued message 99\n"))
        code, out = self.cli("requiretls", "1", "maybe")
        self.assertEqual(code, 1)
        self.assertIn("requiretls takes yes, no or default", out)
        self.assertEqual(self.cli("frobnicate", "1")[0], 1)
        self.assertEqual(self.cli()[0], 2)
        # Drop removes message and file, without a DSN.
        self.assertEqual(self.cli("drop", "--all"),
                         (0, "ok queue drop done\n"))
        self.assertEqual(self.cli("list"), (0, "ok 0 messages queued\n"))
        msgdir = os.path.join(self.cfg.data_dir, "queue", "msg")
        self.assertEqual(os.listdir(msgdir), [])
        self.assertEqual(self.inbox(), [])


class QueueGiveUp(QueueBase):
    QUEUE = ("retry_first = 200ms\nretry_max = 400ms\n"
             "give_up_after = 1500ms\ndelay_notice_after = 500ms\n")

    def test_delay_notice_then_failure(self):
        self.submit(["temp1@remote.test"],
                    msg=body(msgid="<orig-2@example.org>"))
        msgs = self.wait_inbox(2, timeout=30)
        self.wait_queue_empty()
        delay, failure = msgs[0], msgs[1]
        self.assertIn("Delay", delay["Subject"])
        self.assertIn("Failure", failure["Subject"])
        for m in msgs:
            self.assertEqual(m["References"], "<orig-2@example.org>")
        d = delay.get_payload()[1].get_payload()[1]
        self.assertEqual(d["Action"], "delayed")
        self.assertEqual(d["Status"], "4.4.1")
        self.assertIsNotNone(d["Will-Retry-Until"])
        f = failure.get_payload()[1].get_payload()[1]
        self.assertEqual(f["Action"], "failed")
        self.assertIn("gave up after", f["Diagnostic-Code"])
        # Exactly one delay notice, however many attempts.
        time.sleep(0.3)
        self.assertEqual(len(self.inbox()), 2)
        self.assertGreaterEqual(len(self.results()), 3)


class QueueCrash(QueueBase):
    QUEUE = ("retry_first = 200ms\nretry_max = 1s\ngive_up_after = 1h\n"
             "delay_notice_after = 0\nmax_deliveries = 20\n")
    QTRANSPORT = "delay = 300ms\n"

    def test_sigkill_with_200_queued_loses_nothing(self):
        c = self.session()
        for i in range(200):
            rcpt = f"slow{i}@remote.test" if i % 2 else f"ok{i}@remote.test"
            c.sendmail("alice@example.org", [rcpt],
                       body(msgid=f"<m{i}@example.org>"))
        c.quit()
        # Some done, some in flight: then the hard stop.
        self.srv.wait_log(r"queue delivered id=\d+ to=<slow", timeout=30)
        self.srv.signal(signal.SIGKILL)
        self.srv.wait_exit()
        before = self.srv.log()
        left = {r[0] for r in self.queue_rows() if r[2] == 0}
        self.assertTrue(left, "everything finished before the kill")
        done_before = {r[0] for r in self.results(before)} - left
        self.start_server()
        self.wait_queue_empty(timeout=60)
        after = self.results(self.srv.log())
        # Recorded successes are never sent again ...
        resent = {r[0] for r in after} & done_before
        self.assertEqual(resent, set())
        # ... and every message reached its recipient at least once.
        delivered = {r[0] for r in self.results(before) + after
                     if r[3] == 250}
        self.assertEqual(delivered, set(range(1, 201)))
        self.assertEqual(self.inbox(), [])


if __name__ == "__main__":
    h.main()
