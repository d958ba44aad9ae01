"""The imap module: malformed and abusive input (issue 7).

A first line that is not IMAP (an HTTP request, a TLS handshake) closes
the connection; bad commands get BAD with the reason and too many of them
BYE; a synchronising literal continues only after "+"; literals larger
than the caps are refused (NO [TOOBIG], or BYE for a non-synchronising
one already on its way, BAD for LITERAL- over 4096); NUL bytes and
over-long lines get BAD; a client leaving mid-literal or mid-FETCH does
no harm; and the server keeps serving other clients throughout.
"""
import socket

import imapfixture as f
import tsharness as h


class Malformed(f.ImapTest):
    IMAP_EXTRA = ("append_limit = 10k\nmax_command_size = 8k\n"
                  "max_errors = 8\n")

    def assert_still_serving(self):
        c = self.client()
        self.assertEqual(c.select("INBOX")[0], "OK")

    def test_http_request_closes(self):
        rc = self.raw()
        rc.send("GET / HTTP/1.1")
        rc.send("Host: example.org")
        self.assertTrue(rc.closed())
        self.srv.wait_log("first command is not imap")
        self.assert_still_serving()

    def test_tls_on_plain_port_closes(self):
        rc = self.raw()
        rc.send_raw(b"\x16\x03\x01\x02\x00\x01\x00\x01\xfc\x03\x03\r\n")
        self.assertTrue(rc.closed())

    def test_bad_commands(self):
        rc = self.raw()
        cases = [
            ("b1 FROB", b"b1 BAD unknown command"),
            ("b2 LOGIN", b"b2 BAD expected a user name"),
            ("b3 NOOP x", b"b3 BAD unexpected characters at end of command"),
            ("b4 SELECT \"unterminated", b"b4 BAD unterminated quoted "
                                         b"string"),
            ("+bad NOOP", b"* BAD missing or bad tag"),
            ("b4 SELECT", b"b4 BAD expected a space"),
        ]
        for line, want in cases:
            rc.send(line)
            self.assertEqual(rc.readline(), want)
        rc.send_raw(b"b5 NO\x00OP\r\n")
        self.assertEqual(rc.readline(), b"b5 BAD NUL byte in command")
        # the eighth error ends the session
        rc.send("b6 ALSO BAD")
        self.assertEqual(rc.readline(), b"b6 BAD unknown command")
        self.assertEqual(rc.readline(), b"* BYE too many bad commands")
        self.assertTrue(rc.closed())
        self.assert_still_serving()

    def test_sync_literal_waits_for_continuation(self):
        rc = self.raw(tls=True)
        rc.send("l1 LOGIN {5}")
        self.assertEqual(rc.readline(), b"+ OK")
        rc.send_raw(b"alice")
        rc.send(b' "' + f.PASSWORD.encode() + b'"')
        rc.expect_tagged(b"l1", b"OK")
        # LITERAL+: no continuation
        rc.send(b"l2 SELECT {5+}\r\nINBOX")
        lines, _ = rc.expect_tagged(b"l2", b"OK")
        self.assertFalse([l for l in lines if l.startswith(b"+")])
        rc.send(b"l3 STATUS {5-}\r\nINBOX (MESSAGES)")
        rc.expect_tagged(b"l3", b"OK")

    def test_literal_caps(self):
        rc = self.raw_login()
        # synchronising and too large: refused before any byte is sent
        rc.send("c1 LOGIN {100000}")
        self.assertEqual(rc.readline(), b"c1 NO [TOOBIG] literal too large")
        rc.send("c2 APPEND INBOX {20000}")
        self.assertEqual(rc.readline(), b"c2 NO [TOOBIG] literal too large")
        rc.send("c3 SELECT {99999999999999999999}")
        self.assertEqual(rc.readline(), b"c3 BAD literal too large")
        rc.send("c4 SELECT {5000-}")
        self.assertEqual(rc.readline(),
                         b"c4 BAD non-synchronizing literal too large "
                         b"(LITERAL-)")
        # an APPEND within its own limit but above max_command_size works
        msg = f.message("big", "z" * 9000)
        rc.send(f"c5 APPEND INBOX {{{len(msg)}}}")
        self.assertEqual(rc.readline(), b"+ OK")
        rc.send_raw(msg + b"\r\n")
        rc.expect_tagged(b"c5", b"OK [APPENDUID")
        # a non-synchronising literal that is too large: BYE, closed
        rc.send("c6 SELECT {200000+}")
        self.assertEqual(rc.readline(), b"* BYE literal too large")
        self.assertTrue(rc.closed())
        self.assert_still_serving()

    def test_long_line(self):
        rc = self.raw()
        rc.send("x0 NOOP")
        self.assertEqual(rc.readline(), b"x0 OK NOOP completed")
        rc.send("x1 NOOP " + "a" * 70000)
        self.assertEqual(rc.readline(), b"* BAD line too long")
        rc.send("x2 NOOP")
        self.assertEqual(rc.readline(), b"x2 OK NOOP completed")

    def test_client_leaves_mid_literal_and_mid_fetch(self):
        rc = self.raw_login()
        rc.send("m1 APPEND INBOX {5000}")
        self.assertEqual(rc.readline(), b"+ OK")
        rc.send_raw(b"x" * 100)
        rc.close()
        c = self.client()
        self.append(c, msg=f.message("huge", "y" * 9000))
        rc = self.raw_login()
        rc.send("m2 SELECT INBOX")
        rc.expect_tagged(b"m2")
        # ask for the body many times over, read nothing, leave
        rc.send("m3 FETCH 1:* (BODY.PEEK[] BODY.PEEK[] BODY.PEEK[])")
        rc.close()
        self.assert_still_serving()


if __name__ == "__main__":
    h.main()
