"""The imap module: FETCH of ENVELOPE, BODYSTRUCTURE, BODY, MIME part
sections and BINARY, and SEARCH through MIME encodings (issue 7).

The corpus of tricky messages (nested multiparts, rfc822 attachments,
RFC 2231 parameters, encoded words, missing headers, bad MIME) and their
hand-checked ENVELOPE / BODYSTRUCTURE / BODY strings live in one place,
modules/imap/tests/test-imap-structure.c; this test asks that binary for
them ("--json"), APPENDs every message to a running server and compares
the FETCH responses byte for byte.

Then one multipart message with a quoted-printable part, a base64
binary part, a message/rfc822 part holding a multipart/alternative
(base64 Latin-1 HTML inside) and an x-uuencode part: every section form
(1, 1.MIME, 3.HEADER, 3.TEXT, 3.HEADER.FIELDS, 3.2.MIME, partials,
missing parts), BINARY / BINARY.PEEK / BINARY.SIZE with literal8 and
partials, NO [UNKNOWN-CTE], \\Seen set by BINARY but not BINARY.PEEK, a
multi-megabyte base64 attachment decoded in streamed chunks; and SEARCH
finding words present only encoded (QP soft line breaks, base64 in a
Latin-1 part, an RFC 2047 subject), case-insensitively, non-ASCII
included, and not finding what only the raw encoding contains.
"""
import base64
import json
import os
import subprocess

import imapfixture as f
import tsharness as h

STRUCTURE_TEST = os.path.join(h.BUILDDIR, "modules", "imap", "tests",
                              "test-imap-structure")


def corpus():
    """The corpus cases of test-imap-structure.c (default limits)."""
    r = subprocess.run([STRUCTURE_TEST, "--json"], capture_output=True,
                       timeout=60)
    if r.returncode != 0:
        raise AssertionError(r.stderr)
    cases = json.loads(r.stdout)
    for c in cases:
        for k in ("message", "envelope", "bodystructure", "body"):
            if c[k] is not None:
                c[k] = c[k].encode("latin-1")
    return cases


def responses(rc, tag):
    """Read to the tagged reply of tag: (untagged responses with their
    literals inlined, the tagged line)."""
    out, cur = [], b""
    while True:
        line = rc.readline()
        cur += line
        if line.endswith(b"}") and b"{" in line:
            n = int(line[line.rindex(b"{") + 1:-1])
            cur += b"\r\n" + rc.read_bytes(n)
            continue
        if cur.startswith(tag + b" "):
            return out, cur
        out.append(cur)
        cur = b""


def command(rc, tag, text, status=b"OK"):
    rc.send(tag + " " + text)
    out, tagged = responses(rc, tag.encode())
    if not tagged.startswith(tag.encode() + b" " + status):
        raise AssertionError(f"{text}: {tagged!r} after {out!r}")
    return out, tagged


def append(rc, tag, msg):
    """APPEND msg as it is (imaplib would turn bare LFs into CRLF);
    return the new UID."""
    rc.send_raw(b"%s APPEND INBOX {%d+}\r\n" % (tag.encode(), len(msg)) +
                msg + b"\r\n")
    _, tagged = responses(rc, tag.encode())
    if b"OK [APPENDUID " not in tagged:
        raise AssertionError(tagged)
    return int(tagged.split(b"APPENDUID ")[1].split()[1].rstrip(b"]"))


class Corpus(f.ImapTest):
    def test_corpus(self):
        cases = corpus()
        self.assertGreaterEqual(len(cases), 30)
        rc = self.raw_login()
        uids = [append(rc, "a%d" % i, case["message"])
                for i, case in enumerate(cases)]
        command(rc, "s", "SELECT INBOX")
        for i, (case, uid) in enumerate(zip(cases, uids)):
            names = [("ENVELOPE", "envelope"),
                     ("BODYSTRUCTURE", "bodystructure"), ("BODY", "body")]
            names = [(item, key) for item, key in names
                     if case[key] is not None]
            items = " ".join(item for item, _ in names)
            out, _ = command(rc, "f%d" % i, f"UID FETCH {uid} ({items})")
            want = b"* %d FETCH (UID %d" % (i + 1, uid)
            for item, key in names:
                want += b" " + item.encode() + b" " + case[key]
            want += b")"
            self.assertEqual(out, [want], case["name"])
            # RFC822.SIZE and BODY[] are the message as appended
            out, _ = command(rc, "g%d" % i,
                             f"UID FETCH {uid} (RFC822.SIZE BODY.PEEK[])")
            self.assertEqual(out, [b"* %d FETCH (UID %d RFC822.SIZE %d "
                                   b"BODY[] {%d}\r\n%s)" % (
                                       i + 1, uid, len(case["message"]),
                                       len(case["message"]),
                                       case["message"])], case["name"])


def crlf(text):
    return text.replace(b"\n", b"\r\n")


BINARY_BYTES = bytes(range(256)) * 2
HTML = "<p>Straße HIDDENWORD</p>\n".encode("latin-1")
QP_BODY = crlf(b"Caf=C3=A9 au lait, soft=\nbreak: zebra=\ncrossing\n"
               b"=3D literal equals")
INNER = crlf(b"From: Inner <inner@example.net>\n"
             b"Subject: inner subject\n"
             b"X-Other: yes\n"
             b"Content-Type: multipart/alternative; boundary=\"in\"\n"
             b"\n"
             b"--in\n"
             b"Content-Type: text/plain\n"
             b"\n"
             b"inner plain\n"
             b"--in\n"
             b"Content-Type: text/html; charset=iso-8859-1\n"
             b"Content-Transfer-Encoding: base64\n"
             b"\n") + base64.encodebytes(HTML).replace(b"\n", b"\r\n") + \
    b"--in--\r\n"
# The part's body: its last line end belongs to the next boundary.
INNER_PART = INNER[:-2]
MIME1 = crlf(b"Content-Type: text/plain; charset=utf-8\n"
             b"Content-Transfer-Encoding: quoted-printable\n\n")
MIXED = crlf(b"From: Sender <sender@example.org>\n"
             b"To: alice@example.org\n"
             b"Subject: =?utf-8?q?Gr=C3=BC=C3=9Fe_aus_K=C3=B6ln?=\n"
             b"MIME-Version: 1.0\n"
             b"Content-Type: multipart/mixed; boundary=\"out\"\n"
             b"\n"
             b"preamble\n"
             b"--out\n") + MIME1 + QP_BODY + crlf(
    b"\n--out\n"
    b"Content-Type: application/octet-stream; name=\"data.bin\"\n"
    b"Content-Transfer-Encoding: base64\n"
    b"\n") + base64.encodebytes(BINARY_BYTES).replace(b"\n", b"\r\n") + \
    crlf(b"--out\nContent-Type: message/rfc822\n\n") + INNER + crlf(
    b"--out\n"
    b"Content-Type: text/plain\n"
    b"Content-Transfer-Encoding: x-uuencode\n"
    b"\n"
    b"begin 644 foo\n"
    b"--out--\n")
PLAIN = f.message("plain one", "nothing encoded here: zebra crossing")


class Parts(f.ImapTest):
    def setUp(self):
        super().setUp()
        c = self.client()
        self.uid = self.append(c, msg=MIXED)
        self.plain_uid = self.append(c, msg=PLAIN)
        self.claim_recent()
        self.rc = self.raw_login()
        command(self.rc, "s", "SELECT INBOX")
        self.n = 0

    def fetch(self, items, status=b"OK"):
        """FETCH message 1; the response with its literals inlined."""
        self.n += 1
        out, tagged = command(self.rc, "t%d" % self.n,
                              f"FETCH 1 ({items})", status)
        return out, tagged

    def item(self, name):
        """Fetch one item; return its value: the literal's bytes, or the
        text after the item's name."""
        out, _ = self.fetch(name)
        self.assertEqual(len(out), 1, out)
        resp = out[0]
        label = name.replace(".PEEK", "").encode()
        start = resp.index(b"(" + label) + len(label) + 2
        rest = resp[start:]
        if rest.startswith(b"{") or rest.startswith(b"~{"):
            lit = rest[rest.index(b"{"):]
            n = int(lit[1:lit.index(b"}")])
            data = lit[lit.index(b"}") + 3:]
            self.assertEqual(len(data), n + 1)  # and the ")"
            return data[:n]
        return rest[:-1]

    def test_body_sections(self):
        self.assertEqual(self.item("BODY.PEEK[1]"), QP_BODY)
        self.assertEqual(self.item("BODY.PEEK[1.MIME]"), MIME1)
        self.assertEqual(self.item("BODY.PEEK[3]"), INNER_PART)
        inner_head, inner_text = INNER_PART.split(b"\r\n\r\n", 1)
        self.assertEqual(self.item("BODY.PEEK[3.HEADER]"),
                         inner_head + b"\r\n\r\n")
        self.assertEqual(self.item("BODY.PEEK[3.TEXT]"), inner_text)
        self.assertEqual(
            self.item("BODY.PEEK[3.HEADER.FIELDS (subject FROM)]"),
            b"From: Inner <inner@example.net>\r\n"
            b"Subject: inner subject\r\n\r\n")
        self.assertEqual(
            self.item("BODY.PEEK[3.HEADER.FIELDS.NOT (Subject From "
                      "Content-Type)]"), b"X-Other: yes\r\n\r\n")
        self.assertEqual(self.item("BODY.PEEK[3.1]"), b"inner plain")
        self.assertEqual(self.item("BODY.PEEK[3.1.MIME]"),
                         b"Content-Type: text/plain\r\n\r\n")
        self.assertEqual(self.item("BODY.PEEK[3.2]"),
                         base64.encodebytes(HTML).replace(b"\n", b"\r\n")
                         .rstrip(b"\r\n"))
        out, _ = self.fetch("BODY.PEEK[3.1]<2.5>")
        self.assertEqual(out, [b"* 1 FETCH (BODY[3.1]<2> {5}\r\nner p)"])
        out, _ = self.fetch("BODY.PEEK[1]<1000.5>")
        self.assertEqual(out, [b"* 1 FETCH (BODY[1]<1000> {0}\r\n)"])
        # what does not exist is an empty string
        for sec in ("9", "3.9", "1.HEADER", "1.2", "3.2.1.1"):
            out, _ = self.fetch(f"BODY.PEEK[{sec}]")
            self.assertEqual(out, [b'* 1 FETCH (BODY[%s] "")' %
                                   sec.encode()])
        # top-level sections still the message's own
        head = MIXED.split(b"\r\n\r\n", 1)[0] + b"\r\n\r\n"
        self.assertEqual(self.item("BODY.PEEK[HEADER]"), head)
        self.assertEqual(self.item("BODY.PEEK[]"), MIXED)
        # nothing so far set \Seen
        out, _ = self.fetch("FLAGS")
        self.assertEqual(out, [b"* 1 FETCH (FLAGS ())"])

    def test_bodystructure(self):
        out, _ = self.fetch("BODYSTRUCTURE")
        bs = out[0]
        self.assertTrue(bs.startswith(
            b'* 1 FETCH (BODYSTRUCTURE (("text" "plain" ("charset" "utf-8")'
            b' NIL NIL "quoted-printable" %d 3 NIL NIL NIL NIL)'
            % len(QP_BODY)), bs)
        self.assertIn(b'("message" "rfc822" NIL NIL NIL "7bit" %d (NIL '
                      b'"inner subject" ' % len(INNER_PART), bs)
        self.assertIn(b'"x-uuencode"', bs)
        self.assertTrue(bs.endswith(b' "mixed" ("boundary" "out") NIL NIL '
                                    b'NIL))'), bs)

    def test_binary(self):
        self.assertEqual(self.item("BINARY.PEEK[1]"),
                         "Café au lait, softbreak: zebracrossing\r\n"
                         "= literal equals".encode())
        out, _ = self.fetch("BINARY.PEEK[2]")
        self.assertEqual(out, [b"* 1 FETCH (BINARY[2] ~{512}\r\n" +
                               BINARY_BYTES + b")"])
        out, _ = self.fetch("BINARY.SIZE[2] BINARY.SIZE[1] BINARY.SIZE[9]")
        size1 = len("Café au lait, softbreak: zebracrossing\r\n"
                    "= literal equals".encode())
        self.assertEqual(out, [b"* 1 FETCH (BINARY.SIZE[2] 512 "
                               b"BINARY.SIZE[1] %d BINARY.SIZE[9] 0)"
                               % size1])
        out, _ = self.fetch("BINARY.PEEK[2]<250.10>")
        self.assertEqual(out, [b"* 1 FETCH (BINARY[2]<250> ~{10}\r\n" +
                               BINARY_BYTES[250:260] + b")"])
        out, _ = self.fetch("BINARY.PEEK[2]<600.10>")
        self.assertEqual(out, [b"* 1 FETCH (BINARY[2]<600> ~{0}\r\n)"])
        self.assertEqual(self.item("BINARY.PEEK[3.2]"), HTML)
        self.assertEqual(self.item("BINARY.PEEK[3.1]"), b"inner plain")
        # a message/rfc822 part and the whole message as they are
        self.assertEqual(self.item("BINARY.PEEK[3]"), INNER_PART)
        self.assertEqual(self.item("BINARY.PEEK[]"), MIXED)
        # an encoding we cannot undo fails the command
        out, tagged = self.fetch("BINARY.PEEK[4]", b"NO")
        self.assertIn(b"[UNKNOWN-CTE]", tagged)
        out, tagged = self.fetch("BINARY.SIZE[4]", b"NO")
        self.assertIn(b"[UNKNOWN-CTE]", tagged)
        self.assertEqual(self.item("BODY.PEEK[4]"), b"begin 644 foo")
        # BINARY.PEEK left \Seen alone, BINARY sets it
        out, _ = self.fetch("FLAGS")
        self.assertEqual(out, [b"* 1 FETCH (FLAGS ())"])
        out, _ = self.fetch("BINARY[3.1]")
        self.assertIn(b"\\Seen", out[0])

    def test_binary_capability_and_bad_sections(self):
        self.rc.send("c CAPABILITY")
        out, _ = responses(self.rc, b"c")
        self.assertIn(b" BINARY", out[0])
        for bad in ("BINARY[1.MIME]", "BINARY[HEADER]", "BINARY.SIZE",
                    "BINARY[1]<1>", "BODY[1.2.MIME", "BODY[0]",
                    "BODY[1.]", "BINARY.SIZE[1]<0.1>"):
            self.fetch(bad, b"BAD")

    def test_large_base64_attachment(self):
        blob = os.urandom(3 * 1024 * 1024 + 17)
        msg = crlf(b"From: a@example.org\nSubject: big\n"
                   b"Content-Type: multipart/mixed; boundary=b\n\n--b\n"
                   b"Content-Type: text/plain\n\nsee attached\n--b\n"
                   b"Content-Type: application/octet-stream\n"
                   b"Content-Transfer-Encoding: base64\n\n") + \
            base64.encodebytes(blob).replace(b"\n", b"\r\n") + b"--b--\r\n"
        uid = self.append(self.client(), msg=msg)
        self.n += 1
        tag = "big%d" % self.n
        command(self.rc, tag + "n", "NOOP")
        out, _ = command(self.rc, tag,
                         f"UID FETCH {uid} (BINARY.SIZE[2] BINARY.PEEK[2])")
        want = b"* 3 FETCH (UID %d BINARY.SIZE[2] %d BINARY[2] ~{%d}\r\n" % (
            uid, len(blob), len(blob))
        self.assertEqual(out[0][:len(want)], want)
        self.assertTrue(out[0][len(want):] == blob + b")")
        out, _ = command(self.rc, tag + "p",
                         f"UID FETCH {uid} (BINARY.PEEK[2]<2000000.70000>)")
        self.assertTrue(out[0].endswith(blob[2000000:2070000] + b")"))

    def search(self, criteria, charset=True):
        """UID SEARCH with the criteria as one literal (UTF-8)."""
        self.n += 1
        tag = "q%d" % self.n
        data = criteria[1].encode()
        self.rc.send_raw(("%s UID SEARCH %s%s {%d+}\r\n" % (
            tag, "CHARSET UTF-8 " if charset else "", criteria[0],
            len(data))).encode() + data + b"\r\n")
        out, tagged = responses(self.rc, tag.encode())
        self.assertTrue(tagged.startswith(tag.encode() + b" OK"), tagged)
        found = [x for x in out if x.startswith(b"* SEARCH")]
        self.assertEqual(len(found), 1, out)
        return [int(x) for x in found[0].split()[2:]]

    def test_search_decoded(self):
        u, p = self.uid, self.plain_uid
        cases = [
            # QP soft line breaks joined
            (("BODY", "zebracrossing"), [u]),
            (("BODY", "softbreak"), [u]),
            (("BODY", "zebra="), []),
            (("BODY", "zebra"), [u, p]),
            # QP-encoded non-ASCII, case-insensitive
            (("BODY", "CAFÉ AU"), [u]),
            # base64 Latin-1 HTML inside the rfc822 part
            (("BODY", "hiddenword"), [u]),
            (("BODY", "STRASSE"), []),
            (("TEXT", "straße hidden"), [u]),
            # the base64 text itself is not searched
            (("BODY", base64.b64encode(HTML)[:12].decode()), []),
            # RFC 2047 subject, decoded, case-insensitive non-ASCII
            (("SUBJECT", "köln"), [u]),
            (("SUBJECT", "GRÜSSE"), []),
            (("SUBJECT", "GRÜßE AUS"), [u]),
            (("HEADER Subject", "KÖLN"), [u]),
            (("TEXT", "köln"), [u]),
            (("SUBJECT", "=?utf-8?q?"), []),
            # inner headers are body, not the message's header
            (("FROM", "inner@example.net"), []),
            (("BODY", "inner subject"), [u]),
            (("TEXT", "sender@example.org"), [u]),
            (("FROM", "SENDER"), [u]),
            (("BODY", "Sender@example.org"), []),
            (("BODY", "plain one"), []),
            (("SUBJECT", "plain one"), [p]),
        ]
        for crit, want in cases:
            self.assertEqual(self.search(crit), want, crit)
        # US-ASCII charset and no charset behave alike for ASCII
        self.assertEqual(self.search(("BODY", "zebracrossing"), False), [u])


if __name__ == "__main__":
    h.main()
