"""The imap module: several sessions on one mailbox, CONDSTORE and
QRESYNC (issue 7; RFC 3501 7.4.1, RFC 7162).

Changes by one session (flags, new messages, expunges) reach another as
untagged FETCH, EXISTS and EXPUNGE at the moments allowed: an EXPUNGE
never follows FETCH, STORE or SEARCH, it waits for NOOP.  CONDSTORE:
HIGHESTMODSEQ on SELECT, MODSEQ in FETCH, FETCH CHANGEDSINCE, STORE
UNCHANGEDSINCE refusing a message changed meanwhile ([MODIFIED]).
QRESYNC: ENABLE, SELECT with QRESYNC parameters after another session's
changes gives VANISHED (EARLIER) and the changed flags, UID FETCH
CHANGEDSINCE VANISHED, and VANISHED instead of EXPUNGE.
"""
import re

import imapfixture as f
import tsharness as h


class Concurrency(f.ImapTest):
    def setUp(self):
        super().setUp()
        c = self.client()
        for i in range(3):
            self.append(c, msg=f.message(f"m{i}"))
        self.claim_recent()
        self.a = self.raw_login()
        self.a.send("a1 SELECT INBOX")
        self.a.expect_tagged(b"a1")
        self.b = self.client("alice")
        self.b.select("INBOX")

    def test_flags_exists_expunge_reach_other_session(self):
        self.b.store("2", "+FLAGS", "(\\Flagged seen-elsewhere)")
        self.append(self.b, msg=f.message("new"))
        self.a.send("a2 NOOP")
        lines, _ = self.a.expect_tagged(b"a2")
        self.assertIn(b"* 4 EXISTS", lines)
        self.assertIn(b"* 2 FETCH (UID 2 FLAGS (\\Flagged seen-elsewhere))",
                      lines)
        # the new keyword is announced too
        self.assertTrue(any(l.startswith(b"* FLAGS (") and
                            b"seen-elsewhere" in l for l in lines), lines)
        self.b.store("1", "+FLAGS", "\\Deleted")
        self.b.expunge()
        # no EXPUNGE during FETCH, STORE or SEARCH
        for i, cmd in enumerate(("FETCH 1:* UID", "STORE 3 +FLAGS (x)",
                                 "SEARCH ALL", "UID FETCH 1:* UID")):
            tag = f"f{i}".encode()
            self.a.send(tag + b" " + cmd.encode())
            lines, _ = self.a.expect_tagged(tag)
            self.assertFalse([l for l in lines if b"EXPUNGE" in l], lines)
        self.a.send("a3 NOOP")
        lines, _ = self.a.expect_tagged(b"a3")
        self.assertIn(b"* 1 EXPUNGE", lines)
        self.a.send("a4 FETCH 1:* UID")
        lines, _ = self.a.expect_tagged(b"a4")
        self.assertEqual(lines, [b"* 1 FETCH (UID 2)", b"* 2 FETCH (UID 3)",
                                 b"* 3 FETCH (UID 4)"])


class DeletedUnderUs(f.ImapTest):
    def test_selected_mailbox_deleted_by_another_session(self):
        c = self.client()
        c.create("Gone")
        self.append(c, "Gone")
        self.append(c, "Gone")
        a = self.raw_login()
        a.send("d1 SELECT Gone")
        a.expect_tagged(b"d1")
        c.delete("Gone")
        a.send("d2 NOOP")
        lines, _ = a.expect_tagged(b"d2")
        self.assertEqual(lines, [b"* 2 EXPUNGE", b"* 1 EXPUNGE"])


class CondStore(f.ImapTest):
    def setUp(self):
        super().setUp()
        self.c = self.client()
        for i in range(3):
            self.append(self.c, msg=f.message(f"m{i}"))
        self.claim_recent()

    def modseqs(self, rc, tag):
        rc.send(tag + " FETCH 1:* (MODSEQ)")
        lines, _ = rc.expect_tagged(tag.encode())
        return [int(re.search(rb"MODSEQ \((\d+)\)", l).group(1))
                for l in lines]

    def test_condstore(self):
        a = self.raw_login()
        a.send("a1 SELECT INBOX (CONDSTORE)")
        lines, _ = a.expect_tagged(b"a1")
        hms = [l for l in lines if b"HIGHESTMODSEQ" in l]
        self.assertTrue(hms, lines)
        highest = int(re.search(rb"HIGHESTMODSEQ (\d+)", hms[0]).group(1))
        mods = self.modseqs(a, "a2")
        self.assertEqual(max(mods), highest)
        # another session changes message 2
        self.c.select("INBOX")
        self.c.store("2", "+FLAGS", "\\Answered")
        a.send("a3 NOOP")
        lines, _ = a.expect_tagged(b"a3")
        self.assertTrue([l for l in lines if l.startswith(b"* 2 FETCH") and
                         b"MODSEQ" in l], lines)
        # a STORE conditional on the old modseq fails for message 2 only
        a.send(f"a4 STORE 1:3 (UNCHANGEDSINCE {highest}) +FLAGS (\\Seen)")
        lines, tagged = a.expect_tagged(b"a4")
        self.assertIn(b"[MODIFIED 2]", tagged)
        a.send("a5 FETCH 1:3 FLAGS")
        lines, _ = a.expect_tagged(b"a5")
        self.assertIn(b"* 1 FETCH (FLAGS (\\Seen))", lines)
        self.assertIn(b"* 2 FETCH (FLAGS (\\Answered))", lines)
        # .SILENT still reports the new MODSEQ to a CONDSTORE client
        a.send("a4a STORE 1 +FLAGS.SILENT (\\Draft)")
        lines, _ = a.expect_tagged(b"a4a")
        self.assertEqual(len(lines), 1, lines)
        self.assertRegex(lines[0], rb"^\* 1 FETCH \(UID 1 MODSEQ \(\d+\)\)$")
        # UNCHANGEDSINCE 0 always fails (every modseq is above 0)
        a.send("a4b STORE 1:3 (UNCHANGEDSINCE 0) +FLAGS (zero)")
        lines, tagged = a.expect_tagged(b"a4b")
        self.assertIn(b"[MODIFIED 1:3]", tagged)
        # CHANGEDSINCE: only what changed after the old highest modseq
        a.send(f"a6 FETCH 1:* (FLAGS) (CHANGEDSINCE {highest})")
        lines, _ = a.expect_tagged(b"a6")
        self.assertEqual(len(lines), 3, lines)
        after = max(self.modseqs(a, "a7"))
        a.send(f"a8 UID FETCH 1:* (FLAGS) (CHANGEDSINCE {after})")
        lines, _ = a.expect_tagged(b"a8")
        self.assertEqual(lines, [])
        # STATUS HIGHESTMODSEQ agrees
        a.send("a9 STATUS INBOX (HIGHESTMODSEQ)")
        lines, _ = a.expect_tagged(b"a9")
        self.assertIn(f"HIGHESTMODSEQ {after}".encode(), lines[0])
        # MODSEQ search
        a.send(f"b1 SEARCH MODSEQ {highest + 1}")
        lines, _ = a.expect_tagged(b"b1")
        self.assertTrue(lines[0].startswith(b"* SEARCH 1 2 3 (MODSEQ "),
                        lines)

    def test_qresync(self):
        a = self.raw_login()
        a.send("q1 ENABLE QRESYNC")
        lines, _ = a.expect_tagged(b"q1")
        self.assertIn(b"* ENABLED QRESYNC", lines)
        a.send("q2 SELECT INBOX")
        lines, _ = a.expect_tagged(b"q2")
        uidvalidity = int(re.search(rb"UIDVALIDITY (\d+)",
                                    b" ".join(lines)).group(1))
        highest = int(re.search(rb"HIGHESTMODSEQ (\d+)",
                                b" ".join(lines)).group(1))
        a.send("q3 UNSELECT")
        a.expect_tagged(b"q3")
        # meanwhile: message 1 expunged, message 3 flagged, one new
        self.c.select("INBOX")
        self.c.store("1", "+FLAGS", "\\Deleted")
        self.c.expunge()
        self.c.store("2", "+FLAGS", "\\Flagged")
        self.append(self.c, msg=f.message("late"))
        a.send(f"q4 SELECT INBOX (QRESYNC ({uidvalidity} {highest}))")
        lines, _ = a.expect_tagged(b"q4")
        self.assertIn(b"* VANISHED (EARLIER) 1", lines)
        fetches = [l for l in lines if b" FETCH " in l]
        self.assertEqual(len(fetches), 2, lines)
        self.assertTrue(any(b"UID 3 FLAGS (\\Flagged)" in l
                            for l in fetches), fetches)
        self.assertTrue(any(b"UID 4 " in l for l in fetches), fetches)
        self.assertIn(b"* 3 EXISTS", lines)
        # UID FETCH CHANGEDSINCE VANISHED gives the same
        a.send(f"q5 UID FETCH 1:* (FLAGS) (CHANGEDSINCE {highest} "
               f"VANISHED)")
        lines, _ = a.expect_tagged(b"q5")
        self.assertEqual(lines[0], b"* VANISHED (EARLIER) 1")
        self.assertEqual(len(lines), 3, lines)
        # expunges by another session now come as VANISHED
        self.c.store("1", "+FLAGS", "\\Deleted")
        self.c.expunge()
        a.send("q6 NOOP")
        lines, _ = a.expect_tagged(b"q6")
        self.assertIn(b"* VANISHED 2", lines)
        self.assertFalse([l for l in lines if b"EXPUNGE" in l])
        # a wrong UIDVALIDITY just selects
        a.send("q7 SELECT INBOX (QRESYNC (1 1))")
        lines, _ = a.expect_tagged(b"q7")
        self.assertIn(b"* OK [CLOSED] previous mailbox closed", lines)
        self.assertFalse([l for l in lines if b"VANISHED" in l])

    def test_qresync_needs_enable(self):
        a = self.raw_login()
        a.send("q1 SELECT INBOX (QRESYNC (1 1))")
        a.expect_tagged(b"q1", b"BAD QRESYNC is not enabled")


if __name__ == "__main__":
    h.main()
