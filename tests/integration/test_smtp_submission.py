"""The smtp module under TLS and with AUTH (issue 5, first slice).

STARTTLS on the inbound listener and implicit TLS on submissions (the
Received header says ESMTPS/ESMTPSA with the TLS version and cipher);
AUTH refused before TLS on submission; PLAIN, LOGIN and CRAM-MD5 through
smtplib, SCRAM-SHA-256 and SCRAM-SHA-1 through a client written here with
hashlib/hmac, each with the right and a wrong password; an authenticated
account may send only from its own addresses (MAIL FROM and every From:
address; a message without From: is refused), and remote recipients get
451 4.3.0 until the outbound queue exists.  Submitted messages get Date
and Message-ID when they lack them (DATA and BDAT), and the
submit_message hooks can refuse them or add a header.
"""
import base64
import hashlib
import hmac
import os
import re
import smtplib
import sqlite3
import ssl
import subprocess

import tlsfixture
import tsharness as h

SMTP_DIR = os.path.join(h.BUILDDIR, "modules", "smtp", ".libs")

DOMAINS = """\
[domain example.org]

[account alice]
addresses = alice@example.org

[account bob]
addresses = bob@example.org
"""

BODY = (b"From: alice@example.org\r\nTo: bob@example.org\r\n"
        b"Subject: submitted\r\n\r\nhello bob\r\n")

PASSWORD = "correct horse"


class SmtpTls(h.TempDirTest):
    EXTRA = ""  # more configuration for conf.d/20-smtp.ini

    def setUp(self):
        super().setUp()
        self.ca = tlsfixture.TestCA(os.path.join(self.tmp, "ca"))
        cert, key = self.ca.issue("mx.example.org")
        cfg = self.config(module_dirs=[h.TEST_MODULES, SMTP_DIR],
                          core={"hostname": "mx.example.org"})
        cfg.write("domains.d/10-example.ini", DOMAINS)
        self.mx, self.sub, self.subs = (h.free_port(), h.free_port(),
                                        h.free_port())
        tls = f"tls_cert = {cert}\ntls_key = {key}\n"
        cfg.write("conf.d/20-smtp.ini",
                  "[module smtp]\nenabled = yes\n\n"
                  f"[listener mx]\nport = {self.mx}\nprotocol = smtp\n"
                  f"tls = starttls\n{tls}\n"
                  f"[listener sub]\nport = {self.sub}\n"
                  f"protocol = submission\ntls = starttls\n{tls}\n"
                  f"[listener subs]\nport = {self.subs}\n"
                  f"protocol = submissions\ntls = implicit\n{tls}" +
                  self.EXTRA)
        self.cfg = cfg
        r = subprocess.run([h.TESSERA, "account", "passwd", "alice", "-c",
                            cfg.path], input=PASSWORD + "\n",
                           capture_output=True, text=True, timeout=60)
        h.check_sanitizers(r.stderr)
        self.assertEqual(r.returncode, 0, r.stderr)
        self.srv = h.Server(cfg)
        self.srv.start()
        self.addCleanup(self.srv.stop)

    def ctx(self):
        """Verify the chain against the test CA; the clients connect to
        127.0.0.1, so the name is not checked."""
        ctx = ssl.create_default_context(cafile=self.ca.cert)
        ctx.check_hostname = False
        return ctx

    def stored(self, account):
        adir = os.path.join(self.cfg.data_dir, "accounts", account)
        db = os.path.join(adir, "index.db")
        if not os.path.exists(db):
            return []
        con = sqlite3.connect(db)
        try:
            rows = con.execute("SELECT id, prefix FROM messages "
                               "ORDER BY id").fetchall()
        finally:
            con.close()
        out = []
        for mid, prefix in rows:
            with open(os.path.join(adir, "msg", "%x" % (mid // 4096),
                                   str(mid)), "rb") as f:
                out.append(bytes(prefix) + f.read())
        return out

    def submissions(self):
        c = smtplib.SMTP_SSL("127.0.0.1", self.subs, timeout=20,
                             context=self.ctx())
        self.addCleanup(c.close)
        c.ehlo("client.example.org")
        return c

    def test_starttls_inbound(self):
        c = smtplib.SMTP("127.0.0.1", self.mx, timeout=20)
        self.addCleanup(c.close)
        c.ehlo("client.remote.test")
        self.assertTrue(c.has_extn("starttls"))
        self.assertFalse(c.has_extn("auth"))
        c.starttls(context=self.ctx())
        c.ehlo("client.remote.test")
        self.assertFalse(c.has_extn("starttls"))
        self.assertEqual(c.sendmail("s@remote.test", ["bob@example.org"],
                                    BODY), {})
        c.quit()
        msgs = self.stored("bob")
        self.assertEqual(len(msgs), 1)
        self.assertIn(b"with ESMTPS id ", msgs[0])
        self.assertIn(b"\r\n\t(using TLS1.3 with cipher TLS_", msgs[0])
        self.assertTrue(msgs[0].endswith(BODY))

    def test_submission_refuses_auth_before_tls(self):
        c = smtplib.SMTP("127.0.0.1", self.sub, timeout=20)
        self.addCleanup(c.close)
        c.ehlo("client.example.org")
        self.assertTrue(c.has_extn("starttls"))
        self.assertFalse(c.has_extn("auth"))
        self.assertEqual(c.docmd("AUTH", "PLAIN AGFsaWNlAHg="),
                         (530, b"5.7.0 must issue a STARTTLS command first"))
        self.assertEqual(c.mail("alice@example.org"),
                         (530, b"5.7.0 authentication required"))
        c.starttls(context=self.ctx())
        c.ehlo("client.example.org")
        self.assertIn("PLAIN", c.esmtp_features["auth"].split())
        c.login("alice", PASSWORD)
        self.assertEqual(c.sendmail("alice@example.org",
                                    ["bob@example.org"], BODY), {})
        c.quit()
        msgs = self.stored("bob")
        self.assertEqual(len(msgs), 1)
        self.assertIn(b"with ESMTPSA id ", msgs[0])

    def test_plain_login_cram(self):
        for mech in ("PLAIN", "LOGIN", "CRAM-MD5"):
            c = self.submissions()
            self.assertIn(mech, c.esmtp_features["auth"].split())
            meth = {"PLAIN": c.auth_plain, "LOGIN": c.auth_login,
                    "CRAM-MD5": c.auth_cram_md5}[mech]
            c.user, c.password = "alice", "wrong"
            with self.assertRaises(smtplib.SMTPAuthenticationError) as e:
                c.auth(mech, meth, initial_response_ok=False)
            self.assertEqual(e.exception.smtp_code, 535, mech)
            self.assertEqual(e.exception.smtp_error,
                             b"5.7.8 authentication credentials invalid")
            c.user, c.password = "alice", PASSWORD
            code, _ = c.auth(mech, meth, initial_response_ok=False)
            self.assertEqual(code, 235, mech)
            c.quit()

    def test_sender_and_remote_recipients(self):
        c = self.submissions()
        c.login("alice", PASSWORD)
        self.assertEqual(c.mail("bob@example.org"),
                         (550, b"5.7.1 sender address not owned by the "
                               b"authenticated account"))
        self.assertEqual(c.mail("alice@example.org")[0], 250)
        # A remote recipient goes to the outbound queue.
        self.assertEqual(c.rcpt("someone@Remote.test"), (250, b"2.1.5 OK"))
        self.assertEqual(c.rcpt("bob@example.org")[0], 250)
        code, _ = c.data(BODY)
        self.assertEqual(code, 250)
        c.quit()
        self.assertEqual(len(self.stored("bob")), 1)
        qdir = os.path.join(self.cfg.data_dir, "queue")
        con = sqlite3.connect(os.path.join(qdir, "index.db"))
        try:
            rows = con.execute(
                "SELECT m.id, m.sender, m.account, r.address, r.domain,"
                " m.prefix FROM messages m JOIN recipients r"
                " ON r.msg_id = m.id").fetchall()
        finally:
            con.close()
        self.assertEqual(len(rows), 1, rows)
        mid, sender, account, address, domain, prefix = rows[0]
        self.assertEqual((sender, account, address, domain),
                         ("alice@example.org", "alice",
                          "someone@remote.test", "remote.test"))
        # Queued mail carries Received but no Return-Path.
        prefix = bytes(prefix)
        self.assertIn(b"\r\nReceived: from ", prefix)
        self.assertNotIn(b"Return-Path:", prefix)
        self.assertIn(b"Message-ID: <", prefix)
        with open(os.path.join(qdir, "msg", str(mid)), "rb") as f:
            self.assertEqual(f.read(), BODY)
        # No transport is enabled here: the attempt is deferred.
        self.srv.wait_log(r"queue deferred id=1 to=<someone@remote.test> "
                          r"attempt=1 code=451 status=4\.3\.5")

    def submit(self, body, sender="alice@example.org"):
        """Submit body from alice to bob; the DATA reply."""
        c = self.submissions()
        c.login("alice", PASSWORD)
        self.assertEqual(c.mail(sender)[0], 250)
        self.assertEqual(c.rcpt("bob@example.org")[0], 250)
        reply = c.data(body)
        c.quit()
        return reply

    @staticmethod
    def fields(msg, name):
        """The values of header field `name` (any case) in msg."""
        head = msg.split(b"\r\n\r\n", 1)[0]
        return re.findall(rb"(?im)^" + name.encode() + rb"[ \t]*:[ \t]*(.*)$",
                          head.replace(b"\r\n", b"\n"))

    def test_date_and_message_id_added(self):
        self.assertEqual(self.submit(BODY)[0], 250)
        msgs = self.stored("bob")
        self.assertEqual(len(msgs), 1)
        self.assertTrue(msgs[0].endswith(BODY))
        date = self.fields(msgs[0], "Date")
        self.assertEqual(len(date), 1)
        self.assertRegex(date[0], rb"^[A-Z][a-z]{2}, \d{2} [A-Z][a-z]{2} "
                                  rb"\d{4} \d{2}:\d{2}:\d{2} [+-]\d{4}$")
        mid = self.fields(msgs[0], "Message-ID")
        self.assertEqual(len(mid), 1)
        self.assertRegex(mid[0], rb"^<[0-9a-f]{32}@mx\.example\.org>$")
        # Another message gets another Message-ID.
        self.assertEqual(self.submit(BODY)[0], 250)
        self.assertNotEqual(
            self.fields(self.stored("bob")[1], "Message-ID"), mid)

    def test_date_and_message_id_kept(self):
        body = (b"DATE: Mon, 2 Nov 2026 10:00:00 +0100\r\n"
                b"From: Alice\r\n <alice@example.org>\r\n"
                b"message-id: <given@client.example.org>\r\n"
                b"\r\nDate: in the body\r\n")
        self.assertEqual(self.submit(body)[0], 250)
        msg = self.stored("bob")[0]
        self.assertTrue(msg.endswith(body))
        self.assertEqual(self.fields(msg, "Date"),
                         [b"Mon, 2 Nov 2026 10:00:00 +0100"])
        self.assertEqual(self.fields(msg, "Message-ID"),
                         [b"<given@client.example.org>"])

    def test_header_block_through_bdat(self):
        """BDAT pieces split header lines anywhere: Date is seen in the
        second chunk, Message-ID (only in the body) is added."""
        body = (b"From: alice@example.org\r\nDa",
                b"te: Mon, 2 Nov 2026 10:00:00 +0100\r",
                b"\n\r\nMessage-ID: <body@x>\r\n")
        c = self.submissions()
        c.login("alice", PASSWORD)
        self.assertEqual(c.mail("alice@example.org")[0], 250)
        self.assertEqual(c.rcpt("bob@example.org")[0], 250)
        for i, piece in enumerate(body):
            last = " LAST" if i == len(body) - 1 else ""
            c.send(b"BDAT %d%s\r\n" % (len(piece), last.encode()) + piece)
            self.assertEqual(c.getreply()[0], 250)
        c.quit()
        msg = self.stored("bob")[0]
        self.assertTrue(msg.endswith(b"".join(body)))
        self.assertEqual(len(self.fields(msg, "Date")), 1)
        self.assertRegex(self.fields(msg, "Message-ID")[0],
                         rb"^<[0-9a-f]{32}@mx\.example\.org>$")

    def test_from_of_other_account_refused(self):
        refused = (550, b"5.7.1 From address not allowed for this account")
        for from_ in (b"bob@example.org",
                      b"\"Alice\" <alice@example.org>, bob@example.org",
                      b"Alice <alice@example.org>\r\n\t, "
                      b"Bob <bob@example.org>",
                      b"alice@example.org\r\nFrom: bob@example.org",
                      b"nobody@remote.test", b"Alice", b"undisclosed:;"):
            body = b"From: " + from_ + b"\r\nSubject: x\r\n\r\nhi\r\n"
            self.assertEqual(self.submit(body), refused, from_)
        self.assertEqual(self.stored("bob"), [])
        # Her own addresses in the usual shapes are fine.
        for from_ in (b"alice@example.org",
                      b"\"Smith, Alice\" (home) <alice@EXAMPLE.org>",
                      b"Alice\r\n <alice@example.org>"):
            body = b"From: " + from_ + b"\r\nSubject: x\r\n\r\nhi\r\n"
            self.assertEqual(self.submit(body)[0], 250, from_)
        self.assertEqual(len(self.stored("bob")), 3)

    def test_missing_from_refused(self):
        body = (b"To: bob@example.org\r\nSubject: x\r\n\r\n"
                b"From: alice@example.org\r\n")
        self.assertEqual(self.submit(body),
                         (550, b"5.6.0 message has no From header"))
        self.assertEqual(self.stored("bob"), [])
        # Inbound mail on port 25 is not submission: nothing is checked.
        c = smtplib.SMTP("127.0.0.1", self.mx, timeout=20)
        self.addCleanup(c.close)
        self.assertEqual(c.sendmail("s@remote.test", ["bob@example.org"],
                                    body), {})
        c.quit()
        msgs = self.stored("bob")
        self.assertEqual(len(msgs), 1)
        self.assertEqual(self.fields(msgs[0], "Date"), [])
        self.assertEqual(self.fields(msgs[0], "Message-ID"), [])

    def scram(self, mech, password):
        """A SCRAM client (RFC 5802) over AUTH; returns the final reply."""
        hname = {"SCRAM-SHA-256": "sha256", "SCRAM-SHA-1": "sha1"}[mech]
        c = self.submissions()
        nonce = base64.b64encode(os.urandom(18)).decode()
        bare = f"n=alice,r={nonce}"
        code, chal = c.docmd("AUTH", mech + " " + base64.b64encode(
            ("n,," + bare).encode()).decode())
        self.assertEqual(code, 334)
        first = base64.b64decode(chal).decode()
        attrs = dict(kv.split("=", 1) for kv in first.split(","))
        self.assertTrue(attrs["r"].startswith(nonce))
        salt = base64.b64decode(attrs["s"])
        iters = int(attrs["i"])
        final_bare = f"c=biws,r={attrs['r']}"
        auth_msg = f"{bare},{first},{final_bare}".encode()
        salted = hashlib.pbkdf2_hmac(hname, password.encode(), salt, iters)
        ckey = hmac.new(salted, b"Client Key", hname).digest()
        skey = hashlib.new(hname, ckey).digest()
        sig = hmac.new(skey, auth_msg, hname).digest()
        proof = bytes(a ^ b for a, b in zip(ckey, sig))
        final = final_bare + ",p=" + base64.b64encode(proof).decode()
        code, chal = c.docmd(base64.b64encode(final.encode()).decode())
        if code != 334:
            return code, chal
        server_key = hmac.new(salted, b"Server Key", hname).digest()
        expect = hmac.new(server_key, auth_msg, hname).digest()
        self.assertEqual(base64.b64decode(chal).decode(),
                         "v=" + base64.b64encode(expect).decode())
        return c.docmd("")

    def test_scram(self):
        for mech in ("SCRAM-SHA-256", "SCRAM-SHA-1"):
            self.assertEqual(self.scram(mech, PASSWORD),
                             (235, b"2.7.0 authentication successful"),
                             mech)
            self.assertEqual(self.scram(mech, "wrong"),
                             (535, b"5.7.8 authentication credentials "
                                   b"invalid"), mech)


class SmtpAuthHook(SmtpTls):
    """The auth hook sees every attempt and can refuse a good one."""
    EXTRA = ("\n[module hooktest]\nenabled = yes\n\n"
             "[hooktest a]\npoint = auth\naction = reject\n"
             "text = not from here\n")

    def test_auth_hook_refuses(self):
        c = self.submissions()
        c.user, c.password = "alice", "wrong"
        with self.assertRaises(smtplib.SMTPAuthenticationError) as e:
            c.auth("PLAIN", c.auth_plain)
        self.assertEqual(e.exception.smtp_code, 535)
        c.user, c.password = "alice", PASSWORD
        with self.assertRaises(smtplib.SMTPAuthenticationError) as e:
            c.auth("PLAIN", c.auth_plain)
        self.assertEqual((e.exception.smtp_code, e.exception.smtp_error),
                         (550, b"5.7.1 not from here"))
        self.assertEqual(c.mail("alice@example.org"),
                         (530, b"5.7.0 authentication required"))
        self.srv.wait_log(r"hooktest hook=a point=auth", count=2)

    # The inherited tests need no second run with the hook.
    test_plain_login_cram = test_scram = None
    test_sender_and_remote_recipients = test_starttls_inbound = None
    test_submission_refuses_auth_before_tls = None
    test_date_and_message_id_added = test_date_and_message_id_kept = None
    test_header_block_through_bdat = test_from_of_other_account_refused = None
    test_missing_from_refused = None


class SmtpSubmitHookReject(SmtpTls):
    """A submit_message hook refuses a submitted message."""
    EXTRA = ("\n[module hooktest]\nenabled = yes\n\n"
             "[hooktest s]\npoint = submit_message\naction = reject\n"
             "text = not signed\n")

    def test_submit_hook_rejects(self):
        self.assertEqual(self.submit(BODY), (550, b"5.7.1 not signed"))
        self.assertEqual(self.stored("bob"), [])
        self.srv.wait_log(r"hooktest hook=s point=submit_message")
        # Only submission runs the hook: inbound mail still arrives.
        c = smtplib.SMTP("127.0.0.1", self.mx, timeout=20)
        self.addCleanup(c.close)
        self.assertEqual(c.sendmail("s@remote.test", ["bob@example.org"],
                                    BODY), {})
        c.quit()
        self.assertEqual(len(self.stored("bob")), 1)

    test_plain_login_cram = test_scram = None
    test_sender_and_remote_recipients = test_starttls_inbound = None
    test_submission_refuses_auth_before_tls = None
    test_date_and_message_id_added = test_date_and_message_id_kept = None
    test_header_block_through_bdat = test_from_of_other_account_refused = None
    test_missing_from_refused = None


class SmtpSubmitHookHeader(SmtpSubmitHookReject):
    """A submit_message hook adds a header; a refused From never reaches
    it."""
    EXTRA = ("\n[module hooktest]\nenabled = yes\n\n"
             "[hooktest s]\npoint = submit_message\naction = continue\n"
             "header = X-Signed: yes\n")

    test_submit_hook_rejects = None

    def test_submit_hook_adds_header(self):
        self.assertEqual(self.submit(b"From: bob@example.org\r\n\r\nx\r\n"),
                         (550, b"5.7.1 From address not allowed for this "
                               b"account"))
        self.assertEqual(self.submit(BODY)[0], 250)
        log = self.srv.wait_log(r"hooktest hook=s point=submit_message")
        self.assertEqual(
            len(re.findall(r"hooktest hook=s point=submit_message", log)), 1)
        msgs = self.stored("bob")
        self.assertEqual(len(msgs), 1)
        self.assertEqual(self.fields(msgs[0], "X-Signed"), [b"yes"])
        self.assertEqual(len(self.fields(msgs[0], "Date")), 1)
        self.assertTrue(msgs[0].endswith(BODY))


if __name__ == "__main__":
    h.main()
