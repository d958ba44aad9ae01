"""The imap module: session states, TLS and authentication, and the
mailbox commands (issue 7).

LOGINDISABLED and refused LOGIN/AUTHENTICATE before STARTTLS, STARTTLS
and implicit TLS, LOGIN and AUTHENTICATE (PLAIN with SASL-IR, LOGIN,
SCRAM-SHA-256 through imaplib's authenticate callback), a wrong password,
the per-user connection limit, commands refused in the wrong state;
CAPABILITY, NOOP, ID, NAMESPACE, ENABLE, CREATE (with USE), DELETE,
RENAME, SUBSCRIBE, UNSUBSCRIBE, LIST (plain, LIST-EXTENDED selection and
return options, SPECIAL-USE, CHILDREN, LIST-STATUS), LSUB, STATUS (SIZE,
HIGHESTMODSEQ, APPENDLIMIT), SELECT and EXAMINE (FLAGS with every
keyword in use, PERMANENTFLAGS with \\*, UIDVALIDITY, UIDNEXT), APPEND
with flags, keywords, date and APPENDUID, CHECK, UNSELECT, CLOSE, LOGOUT.
"""
import base64
import hashlib
import hmac
import imaplib
import os
import re

import imapfixture as f
import tsharness as h


class Auth(f.ImapTest):
    def test_logindisabled_before_tls(self):
        rc = self.raw()
        rc.send("a1 CAPABILITY")
        lines, _ = rc.expect_tagged(b"a1")
        caps = lines[0].decode()
        self.assertIn("STARTTLS", caps)
        self.assertIn("LOGINDISABLED", caps)
        self.assertNotIn("AUTH=", caps)
        rc.send("a2 LOGIN alice x")
        rc.expect_tagged(b"a2", b"NO [PRIVACYREQUIRED]")
        rc.send("a3 AUTHENTICATE PLAIN")
        rc.expect_tagged(b"a3", b"NO [PRIVACYREQUIRED]")
        rc.send("a4 SELECT INBOX")
        rc.expect_tagged(b"a4", b"BAD log in first")

    def test_starttls_then_login(self):
        c = f.imaplib.IMAP4("127.0.0.1", self.port, timeout=f.TIMEOUT)
        self.addCleanup(self._shutdown, c)
        self.assertIn("LOGINDISABLED", c.capabilities)
        c.starttls(ssl_context=self.ssl_ctx())
        typ, data = c.capability()
        caps = data[0].decode()
        self.assertNotIn("LOGINDISABLED", caps)
        self.assertIn("AUTH=PLAIN", caps)
        self.assertIn("AUTH=SCRAM-SHA-256-PLUS", caps)
        self.assertIn("SASL-IR", caps)
        self.assertNotIn("STARTTLS", caps)
        typ, data = c.login("alice", f.PASSWORD)
        self.assertEqual(typ, "OK")
        self.assertIn(b"[CAPABILITY IMAP4rev1", data[0])
        # already authenticated
        with self.assertRaises(imaplib.IMAP4.error):
            c.login("alice", f.PASSWORD)

    def test_wrong_password(self):
        c = self.client(login=False)
        with self.assertRaisesRegex(imaplib.IMAP4.error,
                                    "AUTHENTICATIONFAILED"):
            c.login("alice", "wrong")
        with self.assertRaisesRegex(imaplib.IMAP4.error,
                                    "AUTHENTICATIONFAILED"):
            c.login("nobody", "wrong")
        c.login("alice", f.PASSWORD)
        self.srv.wait_log(r"authentication failed mechanism=PLAIN "
                          r"user=alice")

    def test_implicit_tls(self):
        c = self.tls_client("bob")
        typ, data = c.select("INBOX")
        self.assertEqual(typ, "OK")

    def test_authenticate_plain_sasl_ir(self):
        rc = self.raw(tls=True)
        ir = base64.b64encode(b"\0alice\0" + f.PASSWORD.encode()).decode()
        rc.send(f"a1 AUTHENTICATE PLAIN {ir}")
        rc.expect_tagged(b"a1", b"OK")
        rc.send("a2 NOOP")
        rc.expect_tagged(b"a2", b"OK")

    def test_authenticate_plain_continuation_and_cancel(self):
        rc = self.raw(tls=True)
        rc.send("a1 AUTHENTICATE PLAIN")
        self.assertTrue(rc.readline().startswith(b"+"))
        rc.send("*")
        rc.expect_tagged(b"a1", b"BAD authentication cancelled")
        rc.send("a2 AUTHENTICATE PLAIN")
        self.assertTrue(rc.readline().startswith(b"+"))
        rc.send("!!!notbase64")
        rc.expect_tagged(b"a2", b"BAD")
        rc.send("a3 AUTHENTICATE PLAIN")
        rc.readline()
        rc.send(base64.b64encode(b"\0bob\0" + f.PASSWORD.encode()).decode())
        rc.expect_tagged(b"a3", b"OK")

    def test_authenticate_login(self):
        c = self.client(login=False)
        answers = iter([b"alice", f.PASSWORD.encode()])
        typ, _ = c.authenticate("LOGIN", lambda challenge: next(answers))
        self.assertEqual(typ, "OK")

    def test_authenticate_scram_sha256(self):
        c = self.client(login=False)
        nonce = base64.b64encode(os.urandom(18)).decode()
        state = {}

        def step(challenge):
            if "first" not in state:
                state["first"] = f"n=alice,r={nonce}"
                return ("n,," + state["first"]).encode()
            if "server_first" not in state:
                sf = challenge.decode()
                state["server_first"] = sf
                attrs = dict(a.split("=", 1) for a in sf.split(","))
                salt = base64.b64decode(attrs["s"])
                salted = hashlib.pbkdf2_hmac("sha256", f.PASSWORD.encode(),
                                             salt, int(attrs["i"]))
                ckey = hmac.new(salted, b"Client Key", "sha256").digest()
                skey = hashlib.sha256(ckey).digest()
                final = f"c=biws,r={attrs['r']}"
                auth = f"{state['first']},{sf},{final}".encode()
                sig = hmac.new(skey, auth, "sha256").digest()
                proof = bytes(a ^ b for a, b in zip(ckey, sig))
                return (final + ",p=" +
                        base64.b64encode(proof).decode()).encode()
            self.assertTrue(challenge.startswith(b"v="))
            return b""
        typ, _ = c.authenticate("SCRAM-SHA-256", step)
        self.assertEqual(typ, "OK")

    def test_states(self):
        rc = self.raw_login()
        rc.send("s1 FETCH 1 FLAGS")
        rc.expect_tagged(b"s1", b"BAD no mailbox selected")
        rc.send("s2 LOGIN alice x")
        rc.expect_tagged(b"s2", b"BAD already authenticated")
        rc.send("s3 LOGOUT")
        lines, _ = rc.expect_tagged(b"s3", b"OK")
        self.assertTrue(lines[0].startswith(b"* BYE"))
        self.assertTrue(rc.closed())


class AuthHook(f.ImapTest):
    """The auth hook sees every attempt and can refuse a good one."""
    EXTRA_FILES = {"conf.d/30-hooktest.ini":
                   "[module hooktest]\nenabled = yes\n\n"
                   "[hooktest a]\npoint = auth\naction = reject\n"
                   "text = not from here\n"}

    def test_auth_hook_refuses(self):
        c = self.client(login=False)
        with self.assertRaisesRegex(imaplib.IMAP4.error,
                                    r"\[AUTHENTICATIONFAILED\] "
                                    r"authentication failed"):
            c.login("alice", "wrong")
        with self.assertRaisesRegex(imaplib.IMAP4.error,
                                    r"\[AUTHENTICATIONFAILED\] "
                                    r"not from here"):
            c.login("alice", f.PASSWORD)
        self.assertEqual(c.state, "NONAUTH")
        self.srv.wait_log(r"hooktest hook=a point=auth", count=2)


class ConnectionLimit(f.ImapTest):
    IMAP_EXTRA = "max_connections_per_user = 2\n"

    def test_per_user_limit(self):
        self.client()
        self.client()
        c3 = self.client(login=False)
        with self.assertRaisesRegex(imaplib.IMAP4.error, "LIMIT"):
            c3.login("alice", f.PASSWORD)
        # another account is not affected
        self.client("bob")


class Mailboxes(f.ImapTest):
    def test_simple_commands(self):
        c = self.client()
        self.assertEqual(c.noop()[0], "OK")
        typ, data = c.xatom("ID", '("name" "test")')
        self.assertEqual(typ, "OK")
        self.assertIn(b'"name" "tessera"', c.untagged_responses["ID"][0])
        typ, data = c.namespace()
        self.assertEqual(data[0], b'(("" "/")) NIL NIL')
        typ, data = c.enable("CONDSTORE")
        self.assertEqual(typ, "OK")
        self.assertEqual(c.untagged_responses["ENABLED"], [b"CONDSTORE"])

    def test_create_delete_rename(self):
        c = self.client()
        self.assertEqual(c.create("Projects/tessera")[0], "OK")
        typ, data = c.create("Projects/tessera")
        self.assertEqual(typ, "NO")
        self.assertIn(b"[ALREADYEXISTS]", data[0])
        typ, data = c.list('""', "Projects*")
        self.assertEqual(data, [b'(\\HasChildren) "/" "Projects"',
                                b'(\\HasNoChildren) "/" "Projects/tessera"'])
        typ, data = c.list('""', "%")
        self.assertIn(b'(\\HasChildren) "/" "Projects"', data)
        self.assertNotIn(b'(\\HasNoChildren) "/" "Projects/tessera"', data)
        self.assertEqual(c.rename("Projects", "Work")[0], "OK")
        typ, data = c.list('""', "Work/*")
        self.assertEqual(data, [b'(\\HasNoChildren) "/" "Work/tessera"'])
        self.assertEqual(c.delete("Work/tessera")[0], "OK")
        typ, data = c.delete("Work/tessera")
        self.assertEqual(typ, "NO")
        self.assertIn(b"[NONEXISTENT]", data[0])
        self.assertEqual(c.delete("INBOX")[0], "NO")
        # LIST "" "" gives the delimiter
        typ, data = c.list('""', '""')
        self.assertEqual(data, [b'(\\Noselect) "/" ""'])

    def test_create_special_use(self):
        c = self.client()
        typ, _ = c._simple_command("CREATE", "Stuff", "(USE (\\Important))")
        self.assertEqual(typ, "NO")
        typ, _ = c._simple_command("CREATE", "Old", "(USE (\\Archive))")
        self.assertEqual(typ, "OK", self.srv.log()[-500:])
        typ, data = c._simple_command("LIST", "(SPECIAL-USE)", '""', "*")
        lines = c.untagged_responses.pop("LIST")
        self.assertIn(b'(\\HasNoChildren \\Archive) "/" "Old"', lines)
        self.assertIn(b'(\\HasNoChildren \\Sent) "/" "Sent"', lines)
        self.assertNotIn(b'(\\HasNoChildren) "/" "INBOX"', lines)

    def test_subscriptions_lsub_list_extended(self):
        c = self.client()
        c.create("Lists")
        c.create("Lists/a")
        self.assertEqual(c.unsubscribe("Lists/a")[0], "OK")
        typ, data = c.lsub('""', "Lists*")
        self.assertEqual(data, [b'(\\HasChildren) "/" "Lists"'])
        typ, _ = c._simple_command("LIST", "(SUBSCRIBED)", '""', '"Lists*"')
        lines = c.untagged_responses.pop("LIST")
        self.assertEqual(lines,
                         [b'(\\HasChildren \\Subscribed) "/" "Lists"'])
        self.assertEqual(c.subscribe("Lists/a")[0], "OK")
        typ, _ = c._simple_command("LIST", '""', '"Lists/*"', "RETURN",
                                   "(SUBSCRIBED CHILDREN)")
        lines = c.untagged_responses.pop("LIST")
        self.assertEqual(lines,
                         [b'(\\HasNoChildren \\Subscribed) "/" "Lists/a"'])
        self.assertEqual(c.unsubscribe("Nope")[0], "NO")

    def test_status_and_list_status(self):
        c = self.client()
        self.append(c, "INBOX", f.message("one"))
        self.append(c, "INBOX", f.message("two"), flags="(\\Seen)")
        typ, data = c.status("INBOX", "(MESSAGES UNSEEN UIDNEXT UIDVALIDITY "
                                      "SIZE HIGHESTMODSEQ DELETED "
                                      "APPENDLIMIT RECENT)")
        self.assertEqual(typ, "OK")
        text = data[0].decode()
        self.assertIn("MESSAGES 2", text)
        self.assertIn("UNSEEN 1", text)
        self.assertIn("UIDNEXT 3", text)
        self.assertIn("DELETED 0", text)
        self.assertIn("APPENDLIMIT 52428800", text)
        size = len(f.message("one")) + len(f.message("two"))
        self.assertIn(f"SIZE {size}", text)
        self.assertRegex(text, r"HIGHESTMODSEQ [1-9]")
        typ, data = c.status("Nope", "(MESSAGES)")
        self.assertEqual(typ, "NO")
        typ, _ = c._simple_command("LIST", '""', "INBOX", "RETURN",
                                   "(STATUS (MESSAGES UNSEEN))")
        self.assertEqual(typ, "OK")
        self.assertEqual(c.untagged_responses.pop("STATUS"),
                         [b'"INBOX" (MESSAGES 2 UNSEEN 1)'])

    def test_append_select_examine(self):
        c = self.client()
        uid1 = self.append(c, "INBOX", f.message("a"),
                           flags="(\\Flagged Work $Label1)")
        uid2 = self.append(c, "INBOX", f.message("b"))
        self.assertEqual((uid1, uid2), (1, 2))
        # APPEND with a date
        typ, data = c.append("Drafts", "(\\Draft)",
                             '"05-Mar-2021 10:00:00 +0100"', f.message("d"))
        self.assertEqual(typ, "OK")
        self.assertRegex(data[0], rb"\[APPENDUID \d+ 1\]")
        typ, data = c.append("Nowhere", None, None, f.message("x"))
        self.assertEqual(typ, "NO")
        self.assertIn(b"TRYCREATE", data[0])
        typ, data = c.select("INBOX")
        self.assertEqual(data, [b"2"])
        flags = c.untagged_responses["FLAGS"][0].decode()
        for flag in ("\\Seen", "\\Flagged", "\\Deleted", "Work", "$Label1"):
            self.assertIn(flag, flags)
        ok = b" ".join(c.untagged_responses["OK"])
        self.assertIn(b"\\*)]", ok)
        self.assertRegex(ok, rb"UIDVALIDITY \d+")
        self.assertIn(b"[UIDNEXT 3]", ok)
        self.assertIn(b"[UNSEEN 1]", ok)
        typ, data = c.select("Drafts", readonly=True)
        self.assertEqual(typ, "OK")
        typ, data = c.fetch("1", "(INTERNALDATE FLAGS)")
        self.assertIn(b'INTERNALDATE "05-Mar-2021 09:00:00 +0000"', data[0])
        self.assertIn(b"\\Draft", data[0])
        self.assertEqual(c.check()[0], "OK")
        typ, data = c.store("1", "+FLAGS", "\\Seen")
        self.assertEqual(typ, "NO")
        typ, data = c.select("Nope")
        self.assertEqual(typ, "NO")
        # the failed SELECT left no mailbox selected
        self.assertEqual(c.state, "AUTH")

    def test_modified_utf7_names(self):
        c = self.client()
        self.assertEqual(c.create("Entw&APw-rfe")[0], "OK")
        typ, data = c.list('""', '"Entw*"')
        self.assertEqual(data, [b'(\\HasNoChildren) "/" "Entw&APw-rfe"'])
        self.assertEqual(c.select("Entw&APw-rfe")[0], "OK")
        with self.assertRaisesRegex(imaplib.IMAP4.error,
                                    "invalid modified UTF-7"):
            c.create("Bad&name")
        # an IMAP4rev2 client sees and sends UTF-8
        rc = self.raw_login()
        rc.send("u1 ENABLE IMAP4rev2")
        rc.expect_tagged(b"u1")
        rc.send('u2 LIST "" "Entw*"')
        lines, _ = rc.expect_tagged(b"u2")
        self.assertIn("Entwürfe".encode(), lines)
        rc.send(b'u3 STATUS "Entw\xc3\xbcrfe" (MESSAGES)')
        rc.expect_tagged(b"u3", b"OK")
        # and ESEARCH instead of SEARCH, no RECENT
        self.append(c, "INBOX")
        rc.send("u4 SELECT INBOX")
        lines, _ = rc.expect_tagged(b"u4")
        self.assertFalse([l for l in lines if l.endswith(b"RECENT")])
        rc.send("u5 SEARCH ALL")
        lines, _ = rc.expect_tagged(b"u5")
        self.assertEqual(lines, [b'* ESEARCH (TAG "u5") ALL 1'])

    def test_unselect_close(self):
        c = self.client()
        self.append(c)
        self.append(c, flags="(\\Deleted)")
        c.select("INBOX")
        typ, _ = c.unselect()
        self.assertEqual(typ, "OK")
        with self.assertRaises(imaplib.IMAP4.error):
            c.fetch("1", "FLAGS")
        c.select("INBOX")
        typ, _ = c.close()
        self.assertEqual(typ, "OK")
        self.assertNotIn("EXPUNGE", c.untagged_responses)
        typ, data = c.status("INBOX", "(MESSAGES)")
        self.assertIn(b"MESSAGES 1", data[0])


if __name__ == "__main__":
    h.main()
