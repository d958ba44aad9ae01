"""The imap module: commands on messages of the selected mailbox
(issue 7).

FETCH of FLAGS, INTERNALDATE, RFC822.SIZE, UID, MODSEQ, RFC822,
RFC822.HEADER, RFC822.TEXT, BODY[] / BODY.PEEK[] / BODY[HEADER] /
BODY[TEXT] / BODY[HEADER.FIELDS (..)] / HEADER.FIELDS.NOT and partial
ranges, \\Seen set by non-PEEK sections, a large body streamed whole,
ENVELOPE/BODYSTRUCTURE/BODY/BINARY and the macros on a simple message
(the MIME corpus is test_imap_structure.py);
STORE +FLAGS/-FLAGS/FLAGS/.SILENT with keywords; COPY with COPYUID; MOVE
with COPYUID and EXPUNGE; EXPUNGE and UID EXPUNGE; SEARCH keys (flags,
keywords, sizes, dates, headers, body and text, sequence and UID sets,
OR/NOT), ESEARCH results, SEARCHRES "$", UID variants.
"""
import imaplib
import os
import re
import time

import imapfixture as f
import tsharness as h


class Fetch(f.ImapTest):
    def setUp(self):
        super().setUp()
        self.c = self.client()
        self.msg = f.message("fetch me", "line one\r\nline two",
                             extra="X-Custom: yes\r\n")
        self.append(self.c, msg=self.msg)
        self.claim_recent()
        self.c.select("INBOX")

    def fetch1(self, items):
        typ, data = self.c.fetch("1", items)
        self.assertEqual(typ, "OK", data)
        return data

    def test_simple_items(self):
        data = self.fetch1("(FLAGS INTERNALDATE RFC822.SIZE UID MODSEQ)")
        text = data[0].decode()
        self.assertIn("FLAGS ()", text)
        self.assertIn(f"RFC822.SIZE {len(self.msg)}", text)
        self.assertIn("UID 1", text)
        self.assertRegex(text, r"MODSEQ \(\d+\)")
        self.assertRegex(text, r'INTERNALDATE "\d\d-\w\w\w-\d{4} '
                               r'\d\d:\d\d:\d\d \+0000"')
        typ, data = self.c.uid("FETCH", "1", "(FLAGS)")
        self.assertIn(b"UID 1", data[0])

    def test_sections(self):
        head, body = self.msg.split(b"\r\n\r\n", 1)
        data = self.fetch1("(BODY.PEEK[HEADER])")
        self.assertEqual(data[0][1], head + b"\r\n\r\n")
        data = self.fetch1("(BODY.PEEK[TEXT])")
        self.assertEqual(data[0][1], body)
        data = self.fetch1("(BODY.PEEK[])")
        self.assertEqual(data[0][1], self.msg)
        data = self.fetch1("(BODY.PEEK[]<5.10>)")
        self.assertIn(b"BODY[]<5>", data[0][0])
        self.assertEqual(data[0][1], self.msg[5:15])
        data = self.fetch1("(BODY.PEEK[HEADER.FIELDS (SUBJECT x-custom)])")
        self.assertEqual(data[0][1],
                         b"Subject: fetch me\r\nX-Custom: yes\r\n\r\n")
        data = self.fetch1("(BODY.PEEK[HEADER.FIELDS.NOT (Subject From To "
                           "Date Message-ID)])")
        self.assertEqual(data[0][1], b"X-Custom: yes\r\n\r\n")
        data = self.fetch1("(RFC822.HEADER)")
        self.assertEqual(data[0][1], head + b"\r\n\r\n")
        # nothing so far set \Seen
        self.assertIn(b"FLAGS ()", self.fetch1("FLAGS")[0])

    def test_seen_set_by_body(self):
        data = self.fetch1("(BODY[TEXT])")
        self.assertIn(b"\\Seen", data[0][0] + data[1])
        self.assertIn(b"\\Seen", self.fetch1("FLAGS")[0])
        self.c.store("1", "-FLAGS", "\\Seen")
        data = self.fetch1("(RFC822)")
        self.assertIn(b"\\Seen", data[0][0] + data[1])
        self.assertEqual(data[0][1], self.msg)

    def test_large_body_streamed(self):
        big = f.message("big", "x" * 76 + ("\r\n" + "y" * 76) * 40000)
        uid = self.append(self.c, msg=big)
        typ, data = self.c.uid("FETCH", str(uid), "(BODY.PEEK[])")
        self.assertEqual(typ, "OK")
        self.assertEqual(len(data[0][1]), len(big))
        self.assertEqual(data[0][1], big)

    def test_structure_items(self):
        body = b"line one\r\nline two\r\n"
        data = self.fetch1("(ENVELOPE)")
        self.assertEqual(
            data[0],
            b'1 (ENVELOPE ("Tue, 1 Jul 2003 10:52:37 +0200" "fetch me" '
            b'((NIL NIL "bob" "example.org")) ((NIL NIL "bob" '
            b'"example.org")) ((NIL NIL "bob" "example.org")) ((NIL NIL '
            b'"alice" "example.org")) NIL NIL NIL "<fetch.me@example.org>"))')
        part = (b'"text" "plain" ("charset" "us-ascii") NIL NIL "7bit" %d 2'
                % len(body))
        data = self.fetch1("(BODYSTRUCTURE)")
        self.assertEqual(data[0], b"1 (BODYSTRUCTURE (" + part +
                         b" NIL NIL NIL NIL))")
        data = self.fetch1("(BODY)")
        self.assertEqual(data[0], b"1 (BODY (" + part + b"))")
        data = self.fetch1("(BODY.PEEK[1])")
        self.assertEqual(data[0][1], body)
        data = self.fetch1("(BINARY.PEEK[1] BINARY.SIZE[1])")
        self.assertEqual(data[0][1], body)
        self.assertIn(b"BINARY.SIZE[1] %d" % len(body), data[1])
        for macro, items in (("FAST", ("FLAGS", "RFC822.SIZE")),
                             ("ALL", ("FLAGS", "ENVELOPE")),
                             ("FULL", ("ENVELOPE", "BODY ("))):
            data = self.fetch1(macro)
            for item in items:
                self.assertIn(item.encode(), data[0])
        # nothing so far set \Seen
        self.assertIn(b"FLAGS ()", self.fetch1("FLAGS")[0])

    def test_bad_sequence(self):
        with self.assertRaisesRegex(imaplib.IMAP4.error,
                                    "invalid message sequence number"):
            self.c.fetch("5", "FLAGS")
        typ, data = self.c.uid("FETCH", "5:7", "FLAGS")
        self.assertEqual((typ, data), ("OK", [None]))


class LargeAppend(f.ImapTest):
    """Literals from 64 KiB on are spooled to a file as they arrive."""

    def spool_files(self):
        d = os.path.join(self.cfg.data_dir, "spool", "imap")
        return os.listdir(d) if os.path.isdir(d) else []

    def wait_no_spool_files(self):
        deadline = time.monotonic() + 10
        while self.spool_files():
            self.assertLess(time.monotonic(), deadline, self.spool_files())
            time.sleep(0.05)

    def test_large_append_roundtrip(self):
        c = self.client()
        big = f.message("big", ("0123456789" * 7 + "\r\n") * 50000)
        self.assertGreater(len(big), 3_000_000)
        uid = self.append(c, msg=big)
        c.select("INBOX")
        typ, data = c.uid("FETCH", str(uid), "(RFC822.SIZE BODY.PEEK[])")
        self.assertIn(f"RFC822.SIZE {len(big)}".encode(), data[0][0])
        self.assertEqual(data[0][1], big)
        typ, data = c.append("Nowhere", None, None, big)
        self.assertEqual(typ, "NO")
        self.assertIn(b"TRYCREATE", data[0])
        self.wait_no_spool_files()

    def test_client_leaves_mid_spool(self):
        rc = self.raw_login()
        rc.send("s1 APPEND INBOX {500000}")
        self.assertEqual(rc.readline(), b"+ OK")
        rc.send_raw(b"x" * 300000)
        rc.close()
        c = self.client()
        self.assertEqual(c.select("INBOX"), ("OK", [b"0"]))
        self.wait_no_spool_files()
        # a bad command after a spooled literal drops the file too
        rc = self.raw_login()
        rc.send_raw(b"s2 APPEND INBOX {70000+}\r\n" + b"y" * 70000 +
                    b" trailing\r\n")
        rc.expect_tagged(b"s2", b"BAD")
        self.wait_no_spool_files()


class StoreCopyMove(f.ImapTest):
    def setUp(self):
        super().setUp()
        self.c = self.client()
        for i in range(4):
            self.append(self.c, msg=f.message(f"m{i}"))
        self.claim_recent()
        self.c.select("INBOX")

    def test_store(self):
        typ, data = self.c.store("1:2", "+FLAGS", "(\\Flagged Work)")
        self.assertEqual(typ, "OK")
        self.assertEqual(len(data), 2)
        self.assertIn(b"FLAGS (\\Flagged Work)", data[0])
        typ, data = self.c.store("1", "-FLAGS", "(Work)")
        self.assertIn(b"FLAGS (\\Flagged)", data[0])
        typ, data = self.c.store("2", "FLAGS", "(\\Seen Other)")
        self.assertIn(b"FLAGS (\\Seen Other)", data[0])
        typ, data = self.c.store("3", "+FLAGS.SILENT", "(\\Answered)")
        self.assertEqual(data, [None])
        typ, data = self.c.fetch("1:4", "FLAGS")
        self.assertIn(b"3 (FLAGS (\\Answered))", data)
        # keywords in use show in FLAGS at the next SELECT
        self.c.select("INBOX")
        self.assertIn(b"Other", self.c.untagged_responses["FLAGS"][0])

    def test_copy_copyuid(self):
        typ, data = self.c.copy("2:3", "Archive")
        self.assertEqual(typ, "OK")
        m = re.search(rb"\[COPYUID (\d+) 2:3 1:2\]", data[0])
        self.assertTrue(m, data)
        typ, data = self.c.copy("1", "Nope")
        self.assertEqual(typ, "NO")
        self.assertIn(b"TRYCREATE", data[0])
        typ, data = self.c.status("Archive", "(MESSAGES)")
        self.assertIn(b"MESSAGES 2", data[0])

    def test_move(self):
        typ, data = self.c._simple_command("UID", "MOVE", "2,4", "Trash")
        self.assertEqual(typ, "OK")
        ok = b" ".join(self.c.untagged_responses.pop("OK", []))
        self.assertRegex(ok, rb"\[COPYUID \d+ 2,4 1:2\]")
        self.assertEqual(self.c.untagged_responses.pop("EXPUNGE"),
                         [b"4", b"2"])
        typ, data = self.c.fetch("1:*", "UID")
        self.assertEqual(data, [b"1 (UID 1)", b"2 (UID 3)"])

    def test_expunge(self):
        self.c.store("1,3", "+FLAGS", "\\Deleted")
        typ, data = self.c.expunge()
        self.assertEqual(data, [b"3", b"1"])
        typ, data = self.c.fetch("1:*", "UID")
        self.assertEqual(data, [b"1 (UID 2)", b"2 (UID 4)"])
        self.c.store("1:2", "+FLAGS", "\\Deleted")
        typ, data = self.c.uid("EXPUNGE", "4")
        self.assertEqual(typ, "OK")
        self.assertEqual(self.c.untagged_responses.pop("EXPUNGE"), [b"2"])
        typ, data = self.c.fetch("1:*", "UID")
        self.assertEqual(data, [b"1 (UID 2)"])


class Search(f.ImapTest):
    def setUp(self):
        super().setUp()
        self.c = self.client()
        self.append(self.c, msg=f.message("apples", "red fruit",
                                          sender="carol@example.net"))
        self.append(self.c, msg=f.message("bananas", "yellow fruit"),
                    flags="(\\Seen Work)")
        self.append(self.c, msg=f.message("cherries", "x" * 3000),
                    flags="(\\Flagged)")
        self.c.select("INBOX")

    def search(self, *keys, uid=False):
        if uid:
            typ, data = self.c.uid("SEARCH", *keys)
        else:
            typ, data = self.c.search(None, *keys)
        self.assertEqual(typ, "OK", data)
        return data[0].decode().split()

    def test_keys(self):
        self.assertEqual(self.search("ALL"), ["1", "2", "3"])
        self.assertEqual(self.search("SEEN"), ["2"])
        self.assertEqual(self.search("UNSEEN"), ["1", "3"])
        self.assertEqual(self.search("FLAGGED"), ["3"])
        self.assertEqual(self.search("KEYWORD", "Work"), ["2"])
        self.assertEqual(self.search("UNKEYWORD", "Work"), ["1", "3"])
        self.assertEqual(self.search("LARGER", "1000"), ["3"])
        self.assertEqual(self.search("SMALLER", "1000"), ["1", "2"])
        self.assertEqual(self.search("FROM", "CAROL"), ["1"])
        self.assertEqual(self.search("SUBJECT", "banana"), ["2"])
        self.assertEqual(self.search("HEADER", "Message-ID", "cherries"),
                         ["3"])
        self.assertEqual(self.search("BODY", "FRUIT"), ["1", "2"])
        self.assertEqual(self.search("TEXT", "apples"), ["1"])
        self.assertEqual(self.search("OR", "SEEN", "FLAGGED"), ["2", "3"])
        self.assertEqual(self.search("NOT", "SEEN", "NOT", "FLAGGED"),
                         ["1"])
        self.assertEqual(self.search("2:*"), ["2", "3"])
        self.assertEqual(self.search("UID", "1,3"), ["1", "3"])
        self.assertEqual(self.search("SENTON", "1-Jul-2003"),
                         ["1", "2", "3"])
        self.assertEqual(self.search("SENTBEFORE", "1-Jul-2003"), [])
        self.assertEqual(self.search("SINCE", "1-Jan-2020"),
                         ["1", "2", "3"])
        self.assertEqual(self.search("BEFORE", "1-Jan-2020"), [])
        self.assertEqual(self.search("CHARSET", "UTF-8", "ALL"),
                         ["1", "2", "3"])
        typ, data = self.c.search("KOI8-R", "ALL")
        self.assertEqual(typ, "NO")
        self.assertEqual(self.search("UNSEEN", uid=True), ["1", "3"])

    def test_esearch_and_searchres(self):
        typ, data = self.c.search(None, "RETURN", "(MIN MAX COUNT ALL)",
                                  "UNSEEN")
        self.assertEqual(typ, "OK")
        lines = self.c.untagged_responses.pop("ESEARCH")
        self.assertRegex(lines[0], rb'\(TAG "\w+"\) MIN 1 MAX 3 COUNT 2 '
                                   rb'ALL 1,3')
        typ, data = self.c.uid("SEARCH", "RETURN", "(SAVE)", "FLAGGED")
        self.assertEqual(typ, "OK")
        self.assertNotIn("ESEARCH", self.c.untagged_responses)
        typ, data = self.c.fetch("$", "(UID)")
        self.assertEqual(data, [b"3 (UID 3)"])
        self.assertEqual(self.search("OR", "$", "SEEN"), ["2", "3"])


if __name__ == "__main__":
    h.main()
