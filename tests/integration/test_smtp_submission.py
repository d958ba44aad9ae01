"""The smtp module under TLS and with AUTH (issue 5, first slice).

STARTTLS on the inbound listener and implicit TLS on submissions (the
Received header says ESMTPS/ESMTPSA with the TLS version and cipher);
AUTH refused before TLS on submission; PLAIN, LOGIN and CRAM-MD5 through
smtplib, SCRAM-SHA-256 and SCRAM-SHA-1 through a client written here with
hashlib/hmac, each with the right and a wrong password; an authenticated
account may send only from its own addresses, and remote recipients get
451 4.3.0 until the outbound queue exists.
"""
import base64
import hashlib
import hmac
import os
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
        self.assertEqual(c.rcpt("someone@remote.test"),
                         (451, b"4.3.0 outbound queue not available yet: "
                               b"remote recipients cannot be accepted"))
        self.assertEqual(c.rcpt("bob@example.org")[0], 250)
        code, _ = c.data(BODY)
        self.assertEqual(code, 250)
        c.quit()
        self.assertEqual(len(self.stored("bob")), 1)

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


if __name__ == "__main__":
    h.main()
