"""\\Recent (RFC 3501 2.3.2): a message is recent in one session only.

The first read-write session of a mailbox to learn of a message sees it
as \\Recent — in SELECT's RECENT count, in FETCH FLAGS, in SEARCH
RECENT/NEW/OLD, and with "* n RECENT" after a new EXISTS; a later
session, and any EXAMINE, do not.  IMAP4rev2 drops RECENT.
"""
import imapfixture as f
import tsharness as h


class Recent(f.ImapTest):
    def select_recent(self, c, readonly=False):
        typ, data = c.select("INBOX", readonly=readonly)
        self.assertEqual(typ, "OK", data)
        return int(c.response("RECENT")[1][0])

    def test_one_session_sees_recent(self):
        w = self.client()
        self.append(w, "INBOX", f.message("one"))
        self.append(w, "INBOX", f.message("two"), flags="(\\Seen)")
        # EXAMINE shows them recent without claiming them.
        e = self.client()
        self.assertEqual(self.select_recent(e, readonly=True), 2)
        typ, data = e.fetch("1", "(FLAGS)")
        self.assertIn(b"\\Recent", data[0])
        # The first SELECT claims both; a second one sees none.
        a = self.client()
        self.assertEqual(self.select_recent(a), 2)
        typ, data = a.fetch("1", "(FLAGS)")
        self.assertIn(b"\\Recent", data[0])
        self.assertEqual(a.search(None, "RECENT")[1][0], b"1 2")
        self.assertEqual(a.search(None, "NEW")[1][0], b"1")
        self.assertEqual(a.search(None, "OLD")[1][0], b"")
        b = self.client()
        self.assertEqual(self.select_recent(b), 0)
        self.assertEqual(b.search(None, "OLD")[1][0], b"1 2")
        # STATUS: nothing left unclaimed.
        typ, data = w.status("INBOX", "(RECENT)")
        self.assertIn(b"RECENT 0", data[0])

    def test_new_message_recent_in_first_session_to_see_it(self):
        w = self.client()
        a = self.raw_login()
        a.send("A1 SELECT INBOX")
        lines, _ = a.expect_tagged(b"A1")
        self.assertIn(b"* 0 RECENT", lines)
        self.append(w, "INBOX", f.message("late"))
        a.send("A2 NOOP")
        lines, _ = a.expect_tagged(b"A2")
        self.assertEqual(lines[:2], [b"* 1 EXISTS", b"* 1 RECENT"])
        a.send("A3 FETCH 1 (FLAGS)")
        lines, _ = a.expect_tagged(b"A3")
        self.assertEqual(lines, [b"* 1 FETCH (FLAGS (\\Recent))"])
        # Another session selecting later sees it as not recent.
        b = self.client()
        self.assertEqual(self.select_recent(b), 0)

    def test_rev2_has_no_recent(self):
        w = self.client()
        self.append(w, "INBOX", f.message("x"))
        a = self.raw_login()
        a.send("E1 ENABLE IMAP4rev2")
        a.expect_tagged(b"E1")
        a.send("S1 SELECT INBOX")
        lines, _ = a.expect_tagged(b"S1")
        self.assertFalse([l for l in lines if l.endswith(b"RECENT")])
        # RFC 9051 6.3.2: a LIST response with the name; no UNSEEN code.
        self.assertIn(b'* LIST () "/" "INBOX"', lines)
        self.assertFalse([l for l in lines if b"[UNSEEN" in l])


if __name__ == "__main__":
    h.main()
