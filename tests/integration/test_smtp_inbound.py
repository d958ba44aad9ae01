"""The smtp module, inbound on a plain listener (issue 5, first slice).

Python's smtplib and raw sockets talk to a real tessera: delivery lands in
the store byte-exact after our prefix (read back with `tessera export
maildir`), unknown recipients get 550 5.1.1, a table of relay tricks gets
550 5.7.1, a non-SMTP first line closes the session, oversize, NUL and
8-bit-without-8BITMIME messages are refused and leave nothing stored,
BDAT works, hooks (the hooktest module) reject, tempfail, redirect and
add headers as a client sees it.
"""
import os
import signal
import smtplib
import socket
import sqlite3
import ssl
import time

import tsharness as h

SMTP_DIR = os.path.join(h.BUILDDIR, "modules", "smtp", ".libs")

DOMAINS = """\
[domain example.org]
localpart_separator = +

[account alice]
addresses = alice@example.org

[account bob]
addresses = bob@example.org
postmaster = yes
"""

BODY = (b"From: Sender <sender@remote.test>\r\n"
        b"To: alice@example.org\r\n"
        b"Subject: hello\r\n"
        b"\r\n"
        b"first line\r\n"
        b".leading dot\r\n"
        b"\r\n"
        b"last line\r\n")


class SmtpBase(h.TempDirTest):
    """Start tessera with the smtp module; read the store back."""

    def start(self, module_extra="", extra=""):
        cfg = self.config(module_dirs=[h.TEST_MODULES, SMTP_DIR],
                          core={"hostname": "mx.example.org"})
        cfg.write("domains.d/10-example.ini", DOMAINS)
        self.port = h.free_port()
        cfg.write("conf.d/20-smtp.ini",
                  "[module smtp]\nenabled = yes\nmax_errors = 4\n" +
                  (module_extra or "max_message_size = 200k\n") +
                  f"\n[listener mx]\nport = {self.port}\n"
                  "protocol = smtp\n" + extra)
        self.cfg = cfg
        self.srv = h.Server(cfg)
        self.srv.start()
        self.addCleanup(self.srv.stop)

    def smtp(self):
        c = smtplib.SMTP("127.0.0.1", self.port, timeout=20)
        self.addCleanup(c.close)
        return c

    def raw(self):
        c = self.srv.connect(self.port, timeout=20)
        self.addCleanup(c.close)
        self.assertEqual(c.readline(), "220 mx.example.org ESMTP tessera")
        return c

    def stored(self, account, mailbox="Inbox"):
        """Contents (prefix + file, as the store layout of
        kernel/store/store-private.h says) of every message of a
        mailbox, in UID order."""
        adir = os.path.join(self.cfg.data_dir, "accounts", account)
        db = os.path.join(adir, "index.db")
        if not os.path.exists(db):
            return []
        con = sqlite3.connect(db)
        try:
            rows = con.execute(
                "SELECT m.id, m.prefix FROM messages m JOIN mailboxes b "
                "ON b.id = m.mailbox_id WHERE b.name = ? ORDER BY m.uid",
                (mailbox,)).fetchall()
        finally:
            con.close()
        result = []
        for mid, prefix in rows:
            path = os.path.join(adir, "msg", "%x" % (mid // 4096), str(mid))
            with open(path, "rb") as f:
                result.append(bytes(prefix) + f.read())
        return result

    def split_prefix(self, msg):
        """Our header lines and the message as the client sent it."""
        i = msg.index(b"From: Sender")
        return msg[:i].decode(), msg[i:]

    def send_raw_message(self, c, body, mail="MAIL FROM:<s@remote.test>"):
        c.send("EHLO client.remote.test")
        while c.readline().startswith("250-"):
            pass
        c.send(mail)
        self.assertEqual(c.readline(), "250 2.1.0 OK")
        c.send("RCPT TO:<alice@example.org>")
        self.assertEqual(c.readline(), "250 2.1.5 OK")
        c.send("DATA")
        self.assertEqual(c.readline(),
                         "354 end data with <CR><LF>.<CR><LF>")
        c.sock.sendall(body + b".\r\n")
        return c.readline()


class SmtpInbound(SmtpBase):
    def test_delivery_is_byte_exact_after_prefix(self):
        self.start()
        c = self.smtp()
        code, ehlo = c.ehlo("client.remote.test")
        self.assertEqual(code, 250)
        ext = ehlo.decode().splitlines()
        self.assertEqual(ext[0], "mx.example.org Hello client.remote.test")
        for word in ("PIPELINING", "SIZE 204800", "8BITMIME", "SMTPUTF8",
                     "ENHANCEDSTATUSCODES", "CHUNKING"):
            self.assertIn(word, ext)
        self.assertNotIn("STARTTLS", ext)
        self.assertFalse(any(e.startswith("AUTH") for e in ext))
        refused = c.sendmail("sender@remote.test",
                             ["alice@example.org"], BODY)
        self.assertEqual(refused, {})
        c.quit()
        msgs = self.stored("alice")
        self.assertEqual(len(msgs), 1)
        prefix, rest = self.split_prefix(msgs[0])
        self.assertEqual(rest, BODY)
        lines = prefix.split("\r\n")
        self.assertEqual(lines[0], "Return-Path: <sender@remote.test>")
        # No check attached a result: RFC 8601's "none".
        self.assertEqual(lines[1],
                         "Authentication-Results: mx.example.org; none")
        self.assertEqual(lines[2],
                         "Received: from client.remote.test ([127.0.0.1])")
        self.assertRegex(lines[3], r"^\tby mx\.example\.org \(tessera\) "
                         r"with ESMTP id [0-9a-f]+x[0-9a-f]+$")
        self.assertEqual(lines[4], "\tfor <alice@example.org>;")
        self.assertRegex(lines[5], r"^\t\w{3}, \d\d \w{3} \d{4} ")
        self.assertEqual(lines[6], "")

    def test_postmaster_and_multiple_recipients(self):
        self.start()
        c = self.smtp()
        c.ehlo("client.remote.test")
        refused = c.sendmail("", ["alice@example.org", "Postmaster",
                                  "postmaster@example.org",
                                  "bob@example.org"], BODY)
        self.assertEqual(refused, {})
        c.quit()
        self.assertEqual(len(self.stored("alice")), 1)
        bob = self.stored("bob")
        self.assertEqual(len(bob), 1)  # three recipients, one copy
        prefix, rest = self.split_prefix(bob[0])
        self.assertEqual(rest, BODY)
        self.assertTrue(prefix.startswith("Return-Path: <>\r\n"))
        self.assertNotIn("\tfor <", prefix)

    def test_unknown_recipient(self):
        self.start()
        c = self.smtp()
        c.ehlo("client.remote.test")
        c.mail("sender@remote.test")
        self.assertEqual(c.rcpt("nobody@example.org"),
                         (550, b"5.1.1 no such user here"))
        self.assertEqual(c.rcpt("alice@example.org")[0], 250)
        c.quit()

    def test_relay_tricks_refused(self):
        self.start()
        tricks = [
            "<user@remote.test>",
            "<USER@REMOTE.TEST>",
            "<alice%remote.test@example.org>",
            "<remote.test!alice@example.org>",
            "<@example.org:user@remote.test>",
            "<@example.org,@mx.example.org:user@remote.test>",
            '<"user@remote.test"@example.org>',
            '<"alice%remote.test"@example.org>',
            "<alice@[127.0.0.1]>",
            "<alice@[IPv6:::1]>",
            "<user@example.org.remote.test>",
            "<user@sub.example.org>",
            "<user@remote.test.>",
            "<alice@example.org@remote.test>",
            "<user%example.org@remote.test>",
            "<nobody@example.org>",
        ]
        c = self.raw()
        c.send("EHLO mx.example.org")
        while c.readline().startswith("250-"):
            pass
        c.send("MAIL FROM:<alice@example.org>")
        self.assertEqual(c.readline(), "250 2.1.0 OK")
        for t in tricks:
            c.send(f"RCPT TO:{t}")
            reply = c.readline()
            self.assertRegex(reply, r"^5\d\d ", f"{t}: {reply}")
            if "nobody" in t:
                self.assertEqual(reply, "550 5.1.1 no such user here")
            elif t in ("<user@remote.test.>",
                       "<alice@example.org@remote.test>"):
                self.assertTrue(reply.startswith("553 5.1.3 "), reply)
            else:
                self.assertEqual(reply, "550 5.7.1 relaying denied",
                                 f"{t}: {reply}")
        c.send("DATA")
        self.assertEqual(c.readline(), "554 5.5.1 no valid recipients")
        c.send("QUIT")
        self.assertEqual(c.readline(),
                         "221 2.0.0 mx.example.org closing connection")
        self.assertEqual(self.stored("alice"), [])

    def test_first_command_invalid_closes(self):
        self.start()
        for first in ("GET / HTTP/1.1", "\x16\x03\x01\x02\x00\x01"):
            c = self.raw()
            c.sock.sendall(first.encode() + b"\r\nEHLO x\r\n")
            self.assertTrue(c.closed())
            self.assertEqual(c.buf, b"")

    def test_first_bytes_without_line_end_close_at_once(self):
        """A TLS ClientHello (or `GET /` not yet ended) on the plain port
        closes the session without waiting for a line end; a slow but
        valid client is not disturbed."""
        self.start(extra="idle_timeout = 60s\n")
        t0 = time.monotonic()
        with socket.create_connection(("127.0.0.1", self.port),
                                      timeout=20) as raw:
            ctx = ssl.create_default_context()
            ctx.check_hostname = False
            ctx.verify_mode = ssl.CERT_NONE
            with self.assertRaises((ssl.SSLError, OSError)):
                ctx.wrap_socket(raw).do_handshake()
        # The start of a ClientHello, with no LF in it by construction.
        hello = b"\x16\x03\x01\x00\xc8\x01\x00\x00\xc4\x03\x03" + \
            bytes(range(0x20, 0x40))
        for first in (hello, b"GET / HTT"):
            c = self.raw()
            c.sock.sendall(first)
            self.assertTrue(c.closed())
        self.assertLess(time.monotonic() - t0, 15)
        self.srv.wait_log("first bytes are not this protocol", count=2)
        c = self.raw()
        c.sock.sendall(b"EH")
        time.sleep(0.2)
        c.sock.sendall(b"LO client.remote.test\r\n")
        self.assertTrue(c.readline().startswith("250-"))

    def test_later_invalid_commands_continue_up_to_limit(self):
        self.start()
        c = self.raw()
        c.send("EHLO client.remote.test")
        while c.readline().startswith("250-"):
            pass
        c.send("FOO bar")
        self.assertEqual(c.readline(), "500 5.5.2 unknown command")
        c.send("MAIL FROM:bad")
        self.assertTrue(c.readline().startswith("501 5."))
        c.send("NOOP")
        self.assertEqual(c.readline(), "250 2.0.0 OK")
        c.send("VRFY alice")
        self.assertTrue(c.readline().startswith("252 2.5.0"))
        c.send("RCPT TO:<alice@example.org>")
        self.assertEqual(c.readline(), "503 5.5.1 need MAIL before RCPT")
        c.send("BAR")
        self.assertEqual(c.readline(), "500 5.5.2 unknown command")
        self.assertEqual(c.readline(),
                         "421 4.7.0 mx.example.org too many errors, "
                         "closing")
        self.assertTrue(c.closed())

    def test_oversize_refused_nothing_stored(self):
        self.start()
        c = self.smtp()
        c.ehlo("client.remote.test")
        self.assertEqual(c.mail("s@remote.test", ["SIZE=300000"]),
                         (552, b"5.3.4 message size exceeds the limit of 204800 bytes"))
        c.rset()
        big = b"Subject: big\r\n\r\n" + (b"x" * 998 + b"\r\n") * 300
        # smtplib declares SIZE=, refused at MAIL.
        with self.assertRaises(smtplib.SMTPSenderRefused) as e:
            c.sendmail("s@remote.test", ["alice@example.org"], big)
        self.assertEqual(e.exception.smtp_code, 552)
        # Undeclared, it is counted while read.
        r = self.raw()
        self.assertEqual(self.send_raw_message(r, big),
                         "552 5.3.4 message size exceeds the limit of "
                         "204800 bytes")
        # The session goes on.
        self.assertEqual(c.sendmail("s@remote.test", ["alice@example.org"],
                                    BODY), {})
        c.quit()
        msgs = self.stored("alice")
        self.assertEqual(len(msgs), 1)
        self.assertEqual(self.split_prefix(msgs[0])[1], BODY)
        # Spool files go (on the work pool) once the store is done.
        spool = os.path.join(self.cfg.data_dir, "spool", "smtp")
        deadline = time.monotonic() + 10
        while os.listdir(spool) and time.monotonic() < deadline:
            time.sleep(0.05)
        self.assertEqual(os.listdir(spool), [])

    def test_nul_and_8bit_refused(self):
        self.start()
        c = self.raw()
        self.assertEqual(self.send_raw_message(c, b"Subject: a\r\n\r\nx\0y\r\n"),
                         "554 5.6.0 message contains NUL bytes")
        c.send("RSET")
        self.assertEqual(c.readline(), "250 2.0.0 OK")
        self.assertEqual(
            self.send_raw_message(c, b"Subject: a\r\n\r\n\xc3\xa9t\xc3\xa9\r\n"),
            "554 5.6.0 8-bit data needs BODY=8BITMIME")
        self.assertEqual(self.stored("alice"), [])
        # With BODY=8BITMIME the same message is taken.
        body = b"Subject: a\r\n\r\n\xc3\xa9t\xc3\xa9\r\n"
        reply = self.send_raw_message(
            c, body, mail="MAIL FROM:<s@remote.test> BODY=8BITMIME")
        self.assertRegex(reply, r"^250 2\.0\.0 OK id=")
        msgs = self.stored("alice")
        self.assertEqual(len(msgs), 1)
        self.assertTrue(msgs[0].endswith(body))

    def test_bare_lf_in_data_refused_no_smuggling(self):
        self.start()
        c = self.raw()
        self.assertEqual(
            self.send_raw_message(c, b"Subject: a\r\n\r\nbare\nlf\r\n"),
            "554 5.6.0 message contains a bare LF; lines must end with "
            "CRLF")
        c.send("RSET")
        self.assertEqual(c.readline(), "250 2.0.0 OK")
        # SMTP smuggling: "\n.\n" must not end one message and start
        # another that gets delivered.
        smuggled = (b"Subject: outer\r\n\r\nhello\r\n\n.\n"
                    b"MAIL FROM:<evil@remote.test>\r\n"
                    b"RCPT TO:<alice@example.org>\r\nDATA\r\n"
                    b"Subject: smuggled\r\n\r\nx\r\n")
        reply = self.send_raw_message(c, smuggled)
        # One refusal for the whole thing: the smuggled commands were
        # part of the (refused) message, not a second transaction.
        self.assertEqual(reply, "554 5.6.0 message contains a bare LF; "
                                "lines must end with CRLF")
        c.send("NOOP")
        self.assertEqual(c.readline(), "250 2.0.0 OK")
        self.assertEqual(self.stored("alice"), [])

    def test_overlong_line_in_data(self):
        self.start()
        c = self.raw()
        reply = self.send_raw_message(
            c, b"Subject: a\r\n\r\n" + b"y" * (1024 * 1024) + b"\r\n")
        self.assertEqual(reply,
                         "554 5.6.0 message contains an overlong line")
        c.send("NOOP")
        self.assertEqual(c.readline(), "250 2.0.0 OK")
        reply = self.send_raw_message(
            c, b"Subject: a\r\n\r\n" + b"y" * 5000 + b"\r\n")
        self.assertEqual(reply,
                         "554 5.6.0 message contains an overlong line")
        self.assertEqual(self.stored("alice"), [])

    def test_large_message_spooled_in_chunks(self):
        self.start(module_extra="max_message_size = 5M\n")
        body = b"Subject: large\r\n\r\n" + b"".join(
            b"%06d " % i + b"z" * 70 + b"\r\n" for i in range(40000))
        # 3 MB through ASan on a loaded machine: a generous wait.
        c = smtplib.SMTP("127.0.0.1", self.port, timeout=120)
        self.addCleanup(c.close)
        self.assertEqual(c.sendmail("s@remote.test", ["alice@example.org"],
                                    body), {})
        c.quit()
        msgs = self.stored("alice")
        self.assertEqual(len(msgs), 1)
        self.assertTrue(msgs[0].startswith(b"Return-Path: <s@remote.test>"))
        i = msgs[0].index(b"Subject: large")
        self.assertEqual(msgs[0][i:], body)

    def test_bdat(self):
        self.start()
        c = self.raw()
        c.send("EHLO client.remote.test")
        while c.readline().startswith("250-"):
            pass
        body = BODY
        a, b = body[:40], body[40:]
        c.sock.sendall(b"MAIL FROM:<s@remote.test>\r\n"
                       b"RCPT TO:<alice@example.org>\r\n" +
                       b"BDAT %d\r\n" % len(a) + a +
                       b"BDAT %d LAST\r\n" % len(b) + b)
        self.assertEqual(c.readline(), "250 2.1.0 OK")
        self.assertEqual(c.readline(), "250 2.1.5 OK")
        self.assertEqual(c.readline(), f"250 2.0.0 {len(a)} octets received")
        self.assertRegex(c.readline(), r"^250 2\.0\.0 OK id=")
        # A bare LF in a chunk is refused.
        bad = b"Subject: x\r\n\r\nbare\nlf\r\n"
        c.sock.sendall(b"MAIL FROM:<s@remote.test>\r\n"
                       b"RCPT TO:<alice@example.org>\r\n" +
                       b"BDAT %d LAST\r\n" % len(bad) + bad)
        self.assertEqual(c.readline(), "250 2.1.0 OK")
        self.assertEqual(c.readline(), "250 2.1.5 OK")
        self.assertEqual(c.readline(),
                         "554 5.6.0 message contains a bare LF; lines "
                         "must end with CRLF")
        # BDAT without a transaction: the chunk is read, then 503.
        c.sock.sendall(b"BDAT 5\r\nhelloNOOP\r\n")
        self.assertEqual(c.readline(),
                         "503 5.5.1 need MAIL and RCPT before BDAT")
        self.assertEqual(c.readline(), "250 2.0.0 OK")
        msgs = self.stored("alice")
        self.assertEqual(len(msgs), 1)
        self.assertEqual(self.split_prefix(msgs[0])[1], body)

    def test_pipelining_keeps_order(self):
        self.start()
        c = self.raw()
        c.sock.sendall(b"EHLO client.remote.test\r\n"
                       b"MAIL FROM:<s@remote.test>\r\n"
                       b"RCPT TO:<nobody@example.org>\r\n"
                       b"RCPT TO:<alice@example.org>\r\n"
                       b"DATA\r\n")
        while c.readline().startswith("250-"):
            pass
        self.assertEqual(c.readline(), "250 2.1.0 OK")
        self.assertEqual(c.readline(), "550 5.1.1 no such user here")
        self.assertEqual(c.readline(), "250 2.1.5 OK")
        self.assertEqual(c.readline(),
                         "354 end data with <CR><LF>.<CR><LF>")
        c.sock.sendall(BODY + b".\r\nQUIT\r\n")
        self.assertRegex(c.readline(), r"^250 2\.0\.0 OK id=")
        self.assertEqual(c.readline(),
                         "221 2.0.0 mx.example.org closing connection")
        self.assertEqual(len(self.stored("alice")), 1)

    def test_quoted_localparts_round_trip(self):
        self.start()
        for sender, expect in (('<"john doe"@remote.test>',
                                b'Return-Path: <"john doe"@remote.test>'),
                               ('<""@remote.test>',
                                b'Return-Path: <""@remote.test>'),
                               ('<"a\\"b"@Remote.TEST>',
                                b'Return-Path: <"a\\"b"@remote.test>')):
            c = self.raw()
            reply = self.send_raw_message(c, BODY,
                                          mail=f"MAIL FROM:{sender}")
            self.assertRegex(reply, r"^250 2\.0\.0 OK id=")
            c.send("QUIT")
            c.readline()
            msg = self.stored("alice")[-1]
            self.assertTrue(msg.startswith(expect + b"\r\n"), msg[:80])

    def test_client_leaving_mid_data_leaves_nothing(self):
        self.start(module_extra="max_message_size = 5M\n")
        c = self.raw()
        c.send("EHLO client.remote.test")
        while c.readline().startswith("250-"):
            pass
        c.sock.sendall(b"MAIL FROM:<s@remote.test>\r\n"
                       b"RCPT TO:<alice@example.org>\r\nDATA\r\n")
        for _ in range(3):
            c.readline()
        c.sock.sendall(b"Subject: cut\r\n\r\n" +
                       (b"x" * 78 + b"\r\n") * 20000)
        c.close()
        self.srv.wait_log(r"session closed")
        spool = os.path.join(self.cfg.data_dir, "spool", "smtp")
        deadline = time.monotonic() + 10
        while os.listdir(spool) and time.monotonic() < deadline:
            time.sleep(0.05)
        self.assertEqual(os.listdir(spool), [])
        self.assertEqual(self.stored("alice"), [])

    def test_shutdown_says_421(self):
        self.start()
        c = self.raw()
        c.send("EHLO client.remote.test")
        while c.readline().startswith("250-"):
            pass
        self.srv.signal(signal.SIGTERM)
        self.assertEqual(c.readline(),
                         "421 4.3.2 mx.example.org shutting down")
        self.assertTrue(c.closed())
        self.assertEqual(self.srv.wait_exit(), 0)

    def test_mail_before_ehlo_and_nested_mail(self):
        self.start()
        c = self.raw()
        c.send("MAIL FROM:<s@remote.test>")
        self.assertEqual(c.readline(), "503 5.5.1 say EHLO first")
        c.send("HELO client.remote.test")
        self.assertEqual(c.readline(), "250 mx.example.org")
        c.send("MAIL FROM:<s@remote.test>")
        self.assertEqual(c.readline(), "250 2.1.0 OK")
        c.send("MAIL FROM:<s@remote.test>")
        self.assertEqual(c.readline(), "503 5.5.1 nested MAIL command")


HOOKS = {
    "reject_rcpt": ("[hooktest r]\npoint = smtp_rcpt\naction = reject\n"
                    "text = no thanks\n"),
    "tempfail_mail": ("[hooktest m]\npoint = smtp_mail\n"
                      "action = tempfail\ntext = later please\n"),
    "reject_helo": ("[hooktest h]\npoint = smtp_helo\naction = reject\n"
                    "text = bad helo\n"),
    "junk_data": ("[hooktest d]\npoint = smtp_data\naction = mailbox\n"
                  "header = X-Spam: yes\n"),
    "reject_data": ("[hooktest d]\npoint = smtp_data\naction = reject\n"
                    "text = spam\n"),
    "delay_rcpt": ("[hooktest p]\npoint = smtp_rcpt\naction = pending\n"
                   "wait = 300ms\nresume = continue\n"
                   "header = X-Checked: rcpt\n"),
}


class SmtpHooks(SmtpBase):
    def start_hook(self, name):
        self.start(extra="\n[module hooktest]\nenabled = yes\n\n" +
                   HOOKS[name])

    def test_rcpt_reject(self):
        self.start_hook("reject_rcpt")
        c = self.smtp()
        c.ehlo("client.remote.test")
        c.mail("s@remote.test")
        code, text = c.rcpt("alice@example.org")
        self.assertEqual(code, 550)
        self.assertTrue(text.endswith(b"no thanks"), text)

    def test_mail_tempfail(self):
        self.start_hook("tempfail_mail")
        c = self.smtp()
        c.ehlo("client.remote.test")
        code, text = c.mail("s@remote.test")
        self.assertEqual(code // 100, 4)
        self.assertTrue(text.endswith(b"later please"), text)

    def test_helo_reject(self):
        self.start_hook("reject_helo")
        c = self.smtp()
        code, text = c.ehlo("client.remote.test")
        self.assertEqual(code // 100, 5)
        self.assertTrue(text.endswith(b"bad helo"), text)

    def test_data_redirect_and_header(self):
        self.start_hook("junk_data")
        c = self.smtp()
        self.assertEqual(c.sendmail("s@remote.test", ["alice@example.org"],
                                    BODY), {})
        c.quit()
        self.assertEqual(self.stored("alice"), [])
        junk = self.stored("alice", "Junk")
        self.assertEqual(len(junk), 1)
        prefix, rest = self.split_prefix(junk[0])
        self.assertEqual(rest, BODY)
        self.assertIn("\r\nX-Spam: yes\r\n"
                      "Authentication-Results: mx.example.org; none\r\n"
                      "Received: ", prefix)

    def test_data_reject(self):
        self.start_hook("reject_data")
        c = self.smtp()
        with self.assertRaises(smtplib.SMTPDataError) as e:
            c.sendmail("s@remote.test", ["alice@example.org"], BODY)
        self.assertEqual(e.exception.smtp_code, 550)
        self.assertTrue(e.exception.smtp_error.endswith(b"spam"))
        self.assertEqual(self.stored("alice"), [])

    def test_pending_rcpt_hook_adds_header(self):
        self.start_hook("delay_rcpt")
        c = self.smtp()
        t0 = time.monotonic()
        self.assertEqual(c.sendmail("s@remote.test", ["alice@example.org"],
                                    BODY), {})
        self.assertGreaterEqual(time.monotonic() - t0, 0.25)
        c.quit()
        msgs = self.stored("alice")
        self.assertEqual(len(msgs), 1)
        prefix, rest = self.split_prefix(msgs[0])
        self.assertEqual(rest, BODY)
        self.assertIn("\r\nX-Checked: rcpt\r\n"
                      "Authentication-Results: mx.example.org; none\r\n"
                      "Received: ", prefix)


if __name__ == "__main__":
    h.main()
