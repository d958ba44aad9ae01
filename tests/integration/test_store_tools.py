"""The store's CLI tools: tessera mailbox, import, export, verifydata.

Acceptance 4 of issue 4: an mbox and a maildir made here (LF line ends,
"From " lines inside bodies, 8-bit bytes, flags and keywords) are imported,
exported again in both formats, and come back byte for byte with the same
flags and keywords; verifydata is clean.  Also: an import that fails or is
killed half-way leaves nothing behind; mailbox create/rename/delete/list
and name validation; verifydata finds corruption and names the message.

Canonical mbox form (what export writes, see kernel/store/import.c):
"From MAILER-DAEMON <asctime, UTC>", mboxrd quoting, Status/X-Status/
X-Keywords as the last header fields, one empty line after each message.
"""
import os
import pty
import re
import select
import signal
import sqlite3
import subprocess
import time

import tsharness as h

SEEN, ANSWERED, FLAGGED, DELETED, DRAFT, JUNK = 1, 2, 4, 8, 16, 32


def account_config(test):
    """A config with one domain and the account alice."""
    cfg = test.config()
    cfg.write("domains.d/example.ini",
              "[domain example.org]\n\n"
              "[account alice]\naddresses = alice@example.org\n")
    return cfg


def cli(cfg, *args, timeout=120):
    return h.run_cli(list(args), config=cfg, timeout=timeout)


def db_path(cfg):
    return os.path.join(cfg.data_dir, "accounts", "alice", "index.db")


def query(cfg, sql, args=()):
    con = sqlite3.connect(db_path(cfg))
    try:
        return con.execute(sql, args).fetchall()
    finally:
        con.close()


def message_files(cfg):
    """Every file under the account's msg/ directory."""
    root = os.path.join(cfg.data_dir, "accounts", "alice", "msg")
    out = []
    for dirpath, _, files in os.walk(root):
        out += [os.path.join(dirpath, f) for f in files]
    return sorted(out)


def mailbox_rows(cfg):
    """`tessera mailbox list alice` as {name: (special, total, unseen,
    size)}."""
    r = cli(cfg, "mailbox", "list", "alice")
    assert r.returncode == 0, r.stderr
    lines = r.stdout.splitlines()
    assert lines[0].split() == ["NAME", "SPECIAL-USE", "TOTAL", "UNSEEN",
                                "SIZE"], lines[0]
    rows = {}
    for line in lines[1:]:
        name, special, total, unseen, size = line.rsplit(None, 4)
        rows[name.strip()] = (special, int(total), int(unseen), int(size))
    return rows


def mbox_message(date, headers, body, status="O", xstatus=None,
                 keywords=None):
    """One message in canonical mbox form (body already mboxrd-quoted)."""
    out = b"From MAILER-DAEMON " + date + b"\n" + headers
    out += b"Status: " + status.encode() + b"\n"
    if xstatus:
        out += b"X-Status: " + xstatus.encode() + b"\n"
    if keywords:
        out += b"X-Keywords: " + keywords.encode() + b"\n"
    return out + b"\n" + body + b"\n"


# Five messages: flags, keywords, quoted From lines (also after an empty
# line), 8-bit bytes, a folded header, a body ending in an empty line.
MBOX_MESSAGES = [
    (mbox_message(b"Mon Jan  6 10:00:00 2025",
                  b"From: Ann <ann@example.net>\nTo: alice@example.org\n"
                  b"Subject: first\nMessage-ID: <m1@example.net>\n",
                  b"Hello,\n>From the start of a line.\n"
                  b">>From quoted already.\n\n>From after an empty line\n"
                  b"caf\xc3\xa9 \xff\xfe bytes\n",
                  status="RO", xstatus="AF", keywords="work $Forwarded"),
     SEEN | ANSWERED | FLAGGED, ["work", "$Forwarded"],
     1736157600),
    (mbox_message(b"Tue Jan  7 11:30:05 2025",
                  b"From: Bob <bob@example.net>\nSubject: plain\n"
                  b"Message-ID: <m2@example.net>\n",
                  b"Nothing special.\n"),
     0, [], 1736249405),
    (mbox_message(b"Wed Jan 15 23:59:59 2025",
                  b"From: Cy <cy@example.net>\nSubject: a long\n"
                  b" folded subject\nMessage-ID: <m3@example.net>\n",
                  b"Draft text\n\n\n", xstatus="TD",
                  keywords="$Junk project-x"),
     DRAFT | DELETED | JUNK, ["project-x"], 1736985599),
    (mbox_message(b"Sat Feb  1 00:00:00 2025",
                  b"From: Dee <dee@example.net>\nSubject: Re: first\n"
                  b"In-Reply-To: <m1@example.net>\n"
                  b"Message-ID: <m4@example.net>\n",
                  b">From here\n>>>From three\nFrom-not-a-separator\n",
                  status="RO"),
     SEEN, [], 1738368000),
    (mbox_message(b"Sun Feb  2 08:08:08 2025",
                  b"From: Eve <eve@example.net>\nSubject: 8bit \xe2\x82\xac\n"
                  b"Message-ID: <m5@example.net>\n",
                  b"\xe2\x82\xac\xc3\xbc\n", xstatus="F",
                  keywords="work"),
     FLAGGED, ["work"], 1738483688),
]


def make_mbox(path):
    data = b"".join(m[0] for m in MBOX_MESSAGES)
    with open(path, "wb") as f:
        f.write(data)
    return data


# (directory, file name, content, flags, keywords, mtime)
MAILDIR_KEYWORDS = "0 work\n1 $Forwarded\n2 project-x\n"
MAILDIR_MESSAGES = [
    ("cur", "1700000001.M1P1.host:2,FRSab",
     b"From: a@example.net\nSubject: one\nMessage-ID: <d1@x>\n\n"
     b"From the body, unquoted in maildir\n\xc3\xa9\xff\n",
     SEEN | ANSWERED | FLAGGED, ["work", "$Forwarded"], 1700000001),
    ("cur", "1700000002.M2P2.host:2,",
     b"From: b@example.net\nSubject: two\n\nplain\n", 0, [], 1700000002),
    ("new", "1700000003.M3P3.host",
     b"From: c@example.net\nSubject: three\n\nnew one\n\n", 0, [],
     1700000003),
    ("cur", "1700000004.M4P4.host:2,DTc",
     b"From: d@example.net\nSubject: four\n\ndraft\n", DRAFT | DELETED,
     ["project-x"], 1700000004),
]


def make_maildir(path):
    for sub in ("cur", "new", "tmp"):
        os.makedirs(os.path.join(path, sub), exist_ok=True)
    with open(os.path.join(path, "dovecot-keywords"), "w") as f:
        f.write(MAILDIR_KEYWORDS)
    for sub, name, content, _, _, mtime in MAILDIR_MESSAGES:
        p = os.path.join(path, sub, name)
        with open(p, "wb") as f:
            f.write(content)
        os.utime(p, (mtime, mtime))


def stored(cfg, mailbox):
    """(flags, keywords, received, size) of a mailbox's messages by UID."""
    return query(cfg,
                 "SELECT m.flags, m.keywords, m.received, m.size"
                 " FROM messages m JOIN mailboxes b ON b.id = m.mailbox_id"
                 " WHERE b.name = ? ORDER BY m.uid", (mailbox,))


def read_maildir(path):
    """Messages of an exported maildir in UID order:
    (content, info flags, keyword names, mtime)."""
    names = {}
    kwfile = os.path.join(path, "dovecot-keywords")
    if os.path.exists(kwfile):
        for line in open(kwfile):
            n, word = line.rstrip("\n").split(" ", 1)
            names[chr(ord("a") + int(n))] = word
    out = []
    files = os.listdir(os.path.join(path, "cur"))
    # <received>.<id>.tessera:2,<flags>: UID order is id order here.
    files.sort(key=lambda f: int(f.split(".")[1]))
    for f in files:
        m = re.fullmatch(r"(\d+)\.(\d+)\.tessera:2,([A-Za-z]*)", f)
        assert m, f
        p = os.path.join(path, "cur", f)
        with open(p, "rb") as fh:
            content = fh.read()
        info = m.group(3)
        out.append((content, "".join(c for c in info if c.isupper()),
                    sorted(names[c] for c in info if c.islower()),
                    int(os.stat(p).st_mtime), int(m.group(1))))
    return out


class StoreTools(h.TempDirTest):
    def test_mbox_and_maildir_round_trip(self):
        cfg = account_config(self)
        mbox = os.path.join(self.tmp, "in.mbox")
        mbox_data = make_mbox(mbox)
        maildir = os.path.join(self.tmp, "in-maildir")
        make_maildir(maildir)

        r = cli(cfg, "import", "mbox", "alice", "Imported/mbox", mbox)
        self.assertEqual(r.returncode, 0, r.stderr)
        self.assertIn("imported 5 messages", r.stdout)
        self.assertEqual(r.stderr, "")  # no progress off a terminal
        r = cli(cfg, "import", "maildir", "alice", "Imported/maildir",
                maildir)
        self.assertEqual(r.returncode, 0, r.stderr)
        self.assertIn("imported 4 messages", r.stdout)

        # Flags, keywords and received times as stored.
        rows = stored(cfg, "Imported/mbox")
        self.assertEqual([(f, k.split(), t) for f, k, t, _ in rows],
                         [(m[1], m[2], m[3]) for m in MBOX_MESSAGES])
        rows = stored(cfg, "Imported/maildir")
        self.assertEqual([(f, k.split(), t) for f, k, t, _ in rows],
                         [(m[3], m[4], m[5]) for m in MAILDIR_MESSAGES])
        # Stored with CRLF line ends; size counts them.
        self.assertEqual(rows[1][3], len(MAILDIR_MESSAGES[1][2]) +
                         MAILDIR_MESSAGES[1][2].count(b"\n"))
        boxes = mailbox_rows(cfg)
        self.assertEqual(boxes["Imported/mbox"][1:3], (5, 3))
        self.assertEqual(boxes["Imported/maildir"][1:3], (4, 3))
        self.assertIn("Imported", boxes)  # parent created

        # Export in both formats.
        out_mbox = os.path.join(self.tmp, "out-mbox")
        r = cli(cfg, "export", "mbox", "alice", out_mbox)
        self.assertEqual(r.returncode, 0, r.stderr)
        self.assertIn("exported 9 messages", r.stdout)
        with open(os.path.join(out_mbox, "Imported", "mbox.mbox"),
                  "rb") as f:
            self.assertEqual(f.read(), mbox_data)
        with open(os.path.join(out_mbox, "Inbox.mbox"), "rb") as f:
            self.assertEqual(f.read(), b"")

        out_maildir = os.path.join(self.tmp, "out-maildir")
        r = cli(cfg, "export", "maildir", "alice", out_maildir)
        self.assertEqual(r.returncode, 0, r.stderr)
        got = read_maildir(os.path.join(out_maildir, "Imported", "maildir"))
        letters = {SEEN: "S", ANSWERED: "R", FLAGGED: "F", DELETED: "T",
                   DRAFT: "D"}
        want = []
        for _, _, content, flags, kws, mtime in MAILDIR_MESSAGES:
            info = "".join(sorted(v for k, v in letters.items()
                                  if flags & k))
            want.append((content, info, sorted(kws), mtime, mtime))
        self.assertEqual(got, want)
        for sub in ("cur", "new", "tmp"):
            self.assertTrue(os.path.isdir(os.path.join(
                out_maildir, "Imported", "maildir", sub)))

        # A maildir export of the mbox import keeps flags and keywords
        # ($Junk becomes a keyword there) and the unquoted bodies.
        got = read_maildir(os.path.join(out_maildir, "Imported", "mbox"))
        self.assertEqual([g[1] for g in got], ["FRS", "", "DT", "S", "F"])
        self.assertEqual([g[2] for g in got],
                         [["$Forwarded", "work"], [],
                          ["$Junk", "project-x"], [], ["work"]])
        self.assertIn(b"\nFrom the start of a line.\n>From quoted already.",
                      got[0][0])
        self.assertNotIn(b"Status:", got[0][0])

        # Round trip through our own export: import the exported maildir
        # and mbox again, export again, same bytes.
        r = cli(cfg, "import", "maildir", "alice", "Again/maildir",
                os.path.join(out_maildir, "Imported", "maildir"))
        self.assertEqual(r.returncode, 0, r.stderr)
        r = cli(cfg, "import", "mbox", "alice", "Again/mbox",
                os.path.join(out_mbox, "Imported", "mbox.mbox"))
        self.assertEqual(r.returncode, 0, r.stderr)
        out2 = os.path.join(self.tmp, "out2")
        r = cli(cfg, "export", "mbox", "alice", out2)
        self.assertEqual(r.returncode, 0, r.stderr)
        with open(os.path.join(out2, "Again", "mbox.mbox"), "rb") as f:
            self.assertEqual(f.read(), mbox_data)

        r = cli(cfg, "verifydata")
        self.assertEqual(r.returncode, 0, r.stdout + r.stderr)
        self.assertIn("verifydata: 1 account, 18 messages, no problems",
                      r.stdout)

    def test_export_refuses_to_overwrite(self):
        cfg = account_config(self)
        out = os.path.join(self.tmp, "out")
        r = cli(cfg, "export", "mbox", "alice", out)
        self.assertEqual(r.returncode, 0, r.stderr)
        r = cli(cfg, "export", "mbox", "alice", out)
        self.assertEqual(r.returncode, 1)
        self.assertIn("Inbox.mbox: File exists", r.stderr)

    def test_export_keeps_inside_its_directory(self):
        cfg = account_config(self)
        r = cli(cfg, "mailbox", "create", "alice", "Box/cur")
        self.assertEqual(r.returncode, 0, r.stderr)
        # A name the store would never accept, planted behind its back.
        con = sqlite3.connect(db_path(cfg))
        con.execute("INSERT INTO mailboxes (name, uidvalidity)"
                    " VALUES ('../escape', 1)")
        con.commit()
        con.close()
        out = os.path.join(self.tmp, "out", "x")
        os.makedirs(os.path.dirname(out))
        r = cli(cfg, "export", "maildir", "alice", out)
        self.assertEqual(r.returncode, 1)
        self.assertIn("mailbox ../escape not exported: bad name", r.stderr)
        self.assertIn("mailbox Box/cur not exported: cur, new and tmp "
                      "cannot be maildir folder names", r.stderr)
        self.assertIn("export incomplete", r.stderr)
        self.assertEqual(sorted(os.listdir(os.path.join(self.tmp, "out"))),
                         ["x"])
        self.assertTrue(os.path.isdir(os.path.join(out, "Inbox", "cur")))
        self.assertFalse(os.path.exists(os.path.join(out, "Box", "cur",
                                                     "cur")))
        r = cli(cfg, "export", "mbox", "alice", out + "-mbox")
        self.assertEqual(r.returncode, 1)
        self.assertTrue(os.path.isfile(os.path.join(out + "-mbox", "Box",
                                                    "cur.mbox")))
        self.assertFalse(os.path.exists(os.path.join(self.tmp, "out",
                                                     "escape.mbox")))
        r = cli(cfg, "verifydata")
        self.assertEqual(r.returncode, 1)
        self.assertIn("account alice: mailbox ../escape: bad name", r.stdout)

    def test_oversized_message_leaves_nothing(self):
        cfg = account_config(self)
        path = os.path.join(self.tmp, "big.mbox")
        line = b"x" * 1023 + b"\n"
        with open(path, "wb") as f:
            f.write(MBOX_MESSAGES[0][0])
            f.write(b"From MAILER-DAEMON Mon Jan  6 10:00:00 2025\n"
                    b"Subject: huge\n\n")
            for _ in range(101 * 1024):
                f.write(line)
            f.write(b"\n")
            f.write(MBOX_MESSAGES[1][0])
        r = cli(cfg, "import", "mbox", "alice", "Big", path)
        os.unlink(path)
        self.assertEqual(r.returncode, 1, r.stdout)
        line = MBOX_MESSAGES[0][0].count(b"\n") + 1
        self.assertRegex(r.stderr, rf"message 2 \(line {line}\) is \d+ "
                         r"bytes, larger than the limit of 100 MiB; nothing "
                         r"was imported")
        self.assertNotIn("Big", mailbox_rows(cfg))
        self.assertEqual(message_files(cfg), [])
        r = cli(cfg, "verifydata")
        self.assertEqual(r.returncode, 0, r.stdout + r.stderr)
        self.assertIn("0 messages, no problems", r.stdout)

    def test_broken_inputs_are_refused(self):
        cfg = account_config(self)
        path = os.path.join(self.tmp, "not.mbox")
        with open(path, "wb") as f:
            f.write(b"Subject: no From line\n\nbody\n")
        r = cli(cfg, "import", "mbox", "alice", "X", path)
        self.assertEqual(r.returncode, 1)
        self.assertIn("does not start with a \"From \" line", r.stderr)
        r = cli(cfg, "import", "maildir", "alice", "X", self.tmp)
        self.assertEqual(r.returncode, 1)
        self.assertIn("not a maildir", r.stderr)
        r = cli(cfg, "import", "mbox", "alice", "a//b", path)
        self.assertEqual(r.returncode, 1)
        self.assertIn("bad mailbox name 'a//b'", r.stderr)
        r = cli(cfg, "import", "tar", "alice", "X", path)
        self.assertEqual(r.returncode, 2)
        self.assertIn("unknown format 'tar'", r.stderr)
        r = cli(cfg, "import", "mbox", "nobody", "X", path)
        self.assertEqual(r.returncode, 1)
        self.assertIn("no account 'nobody'", r.stderr)
        # An oversized maildir file (sparse) after one good message, and
        # things that are not files (skipped): nothing imported.
        maildir = os.path.join(self.tmp, "md")
        make_maildir(maildir)
        os.symlink("/nonexistent/file",
                   os.path.join(maildir, "cur", "1700000003.zz:2,S"))
        os.mkfifo(os.path.join(maildir, "cur", "1700000002.5.fifo"))
        bad = os.path.join(maildir, "cur", "1700000002.9.host:2,S")
        with open(bad, "wb") as f:
            f.truncate(101 * 1024 * 1024)
        r = cli(cfg, "import", "maildir", "alice", "M", maildir)
        self.assertEqual(r.returncode, 1)
        self.assertIn("cur/1700000002.9.host:2,S is 105906176 bytes, "
                      "larger than the limit of 100 MiB; nothing was "
                      "imported", r.stderr)
        self.assertNotIn("M", mailbox_rows(cfg))
        self.assertEqual(message_files(cfg), [])
        os.unlink(bad)
        r = cli(cfg, "import", "maildir", "alice", "M", maildir)
        self.assertEqual(r.returncode, 0, r.stderr)
        self.assertIn("imported 4 messages", r.stdout)

    def test_killed_import_leaves_nothing(self):
        cfg = account_config(self)
        path = os.path.join(self.tmp, "many.mbox")
        count = 3000
        with open(path, "wb") as f:
            for i in range(count):
                f.write(mbox_message(
                    b"Mon Jan  6 10:00:00 2025",
                    b"Subject: message %d\nMessage-ID: <k%d@x>\n" % (i, i),
                    b"line of text\n" * 100))
        # Progress goes to a terminal: a pty shows how far it got.
        master, slave = pty.openpty()
        p = subprocess.Popen([h.TESSERA, "import", "mbox", "alice",
                              "Killed", path, "-c", cfg.path],
                             stdin=subprocess.DEVNULL,
                             stdout=subprocess.PIPE, stderr=slave)
        os.close(slave)
        seen = b""
        deadline = time.monotonic() + 60
        while b"imported " not in seen and time.monotonic() < deadline:
            ready, _, _ = select.select([master], [], [], 1)
            if ready:
                try:
                    seen += os.read(master, 4096)
                except OSError:
                    break
        p.send_signal(signal.SIGKILL)
        out, _ = p.communicate()
        os.close(master)
        self.assertRegex(seen.decode(), r"imported \d+/3000 messages\r")
        self.assertEqual(p.returncode, -signal.SIGKILL)
        self.assertEqual(out, b"")  # it never got to the summary

        # Nothing committed; the files written so far are uncommitted.
        self.assertEqual(query(cfg, "SELECT count(*) FROM messages"),
                         [(0,)])
        self.assertNotEqual(message_files(cfg), [])
        r = cli(cfg, "verifydata")
        self.assertEqual(r.returncode, 0, r.stdout + r.stderr)
        self.assertIn("0 messages, no problems", r.stdout)
        self.assertRegex(r.stdout, r"note: \d+ message files? of a write "
                         r"that has not committed")
        # The next open sweeps them away.
        self.assertNotIn("Killed", mailbox_rows(cfg))
        self.assertEqual(message_files(cfg), [])
        r = cli(cfg, "verifydata")
        self.assertEqual(r.returncode, 0, r.stdout + r.stderr)
        self.assertNotIn("note:", r.stdout)

        # Run to the end, all of them arrive.
        r = cli(cfg, "import", "mbox", "alice", "Killed", path)
        self.assertEqual(r.returncode, 0, r.stderr)
        self.assertEqual(mailbox_rows(cfg)["Killed"][1:3], (count, count))
        r = cli(cfg, "verifydata")
        self.assertEqual(r.returncode, 0, r.stdout + r.stderr)
        self.assertIn(f"{count} messages, no problems", r.stdout)

    def test_mailbox_commands(self):
        cfg = account_config(self)
        rows = mailbox_rows(cfg)
        self.assertEqual(list(rows)[0], "Inbox")
        self.assertEqual(rows["Sent"][0], "\\Sent")
        self.assertEqual(rows["Rejects"][0], "-")

        r = cli(cfg, "mailbox", "create", "alice", "Lists/tessera dev")
        self.assertEqual(r.returncode, 0, r.stderr)
        self.assertIn("created mailbox Lists/tessera dev", r.stdout)
        r = cli(cfg, "mailbox", "create", "alice", "Later",
                "--special-use", "\\flagged")
        self.assertEqual(r.returncode, 0, r.stderr)
        rows = mailbox_rows(cfg)
        self.assertIn("Lists", rows)
        self.assertEqual(rows["Lists/tessera dev"], ("-", 0, 0, 0))
        self.assertEqual(rows["Later"][0], "\\Flagged")

        r = cli(cfg, "mailbox", "create", "alice", "Later")
        self.assertEqual(r.returncode, 1)
        self.assertIn("cannot create mailbox 'Later': mailbox exists",
                      r.stderr)
        r = cli(cfg, "mailbox", "create", "alice", "X",
                "--special-use", "\\Bogus")
        self.assertEqual(r.returncode, 1)
        self.assertIn("unknown special use '\\Bogus'", r.stderr)
        for bad, why in (("a/../b", "'.' or '..' segment"),
                         ("../etc", "'.' or '..' segment"),
                         ("/abs", ""), ("a//b", ""), ("tab\there", ""),
                         ("x" * 300, "")):
            r = cli(cfg, "mailbox", "create", "alice", bad)
            self.assertEqual(r.returncode, 1, bad)
            self.assertIn(f"bad mailbox name '{bad}': {why}", r.stderr)
        r = cli(cfg, "mailbox", "rename", "alice", "Later", "a/./b")
        self.assertEqual(r.returncode, 1)
        self.assertIn("bad mailbox name 'a/./b'", r.stderr)

        # Rename moves children; messages come along.
        mbox = os.path.join(self.tmp, "in.mbox")
        make_mbox(mbox)
        r = cli(cfg, "import", "mbox", "alice", "Lists/tessera dev", mbox)
        self.assertEqual(r.returncode, 0, r.stderr)
        r = cli(cfg, "mailbox", "rename", "alice", "Lists", "Old/Lists")
        self.assertEqual(r.returncode, 0, r.stderr)
        rows = mailbox_rows(cfg)
        self.assertNotIn("Lists", rows)
        self.assertEqual(rows["Old/Lists/tessera dev"][1:3], (5, 3))
        r = cli(cfg, "mailbox", "rename", "alice", "Later", "Sent")
        self.assertEqual(r.returncode, 1)
        self.assertIn("mailbox exists", r.stderr)
        r = cli(cfg, "mailbox", "rename", "alice", "Nope", "Other")
        self.assertEqual(r.returncode, 1)
        self.assertIn("no such mailbox", r.stderr)

        # Delete: refused for Inbox and a parent; files go with it.
        r = cli(cfg, "mailbox", "delete", "alice", "inbox")
        self.assertEqual(r.returncode, 1)
        self.assertIn("cannot delete mailbox 'inbox'", r.stderr)
        r = cli(cfg, "mailbox", "delete", "alice", "Old/Lists")
        self.assertEqual(r.returncode, 1)
        self.assertIn("has children", r.stderr)
        self.assertEqual(len(message_files(cfg)), 5)
        r = cli(cfg, "mailbox", "delete", "alice", "Old/Lists/tessera dev")
        self.assertEqual(r.returncode, 0, r.stderr)
        self.assertIn("deleted mailbox Old/Lists/tessera dev and 5 messages",
                      r.stdout)
        self.assertNotIn("Old/Lists/tessera dev", mailbox_rows(cfg))
        self.assertEqual(message_files(cfg), [])
        r = cli(cfg, "verifydata")
        self.assertEqual(r.returncode, 0, r.stdout + r.stderr)

        # Usage errors exit 2.
        for args in (["mailbox"], ["mailbox", "frob", "alice"],
                     ["mailbox", "create", "alice"],
                     ["mailbox", "list", "alice", "--special-use", "x"]):
            r = cli(cfg, *args)
            self.assertEqual(r.returncode, 2, args)
            self.assertIn("usage: tessera mailbox", r.stderr)

    def test_verifydata_finds_corruption(self):
        cfg = account_config(self)
        mbox = os.path.join(self.tmp, "in.mbox")
        make_mbox(mbox)
        r = cli(cfg, "import", "mbox", "alice", "Work", mbox)
        self.assertEqual(r.returncode, 0, r.stderr)
        r = cli(cfg, "verifydata")
        self.assertEqual(r.returncode, 0, r.stdout + r.stderr)
        ids = [i for (i,) in query(
            cfg, "SELECT m.id FROM messages m JOIN mailboxes b"
            " ON b.id = m.mailbox_id WHERE b.name = 'Work' ORDER BY uid")]
        self.assertEqual(len(ids), 5)

        # A missing file.
        path = os.path.join(cfg.data_dir, "accounts", "alice", "msg",
                            "%x" % (ids[1] // 4096), str(ids[1]))
        os.unlink(path)
        r = cli(cfg, "verifydata")
        self.assertEqual(r.returncode, 1, r.stdout)
        self.assertIn(f"account alice: message {ids[1]} (mailbox Work, "
                      f"uid 2): file {path} is missing", r.stdout)
        self.assertIn("verifydata: 1 account, 5 messages, 1 problem",
                      r.stdout)

        # A wrong size and a wrong count, changed behind the store's back.
        con = sqlite3.connect(db_path(cfg))
        con.execute("UPDATE messages SET size = size + 7 WHERE id = ?",
                    (ids[3],))
        con.execute("UPDATE mailboxes SET unseen = unseen + 1"
                    " WHERE name = 'Work'")
        con.commit()
        con.close()
        r = cli(cfg, "verifydata")
        self.assertEqual(r.returncode, 1, r.stdout)
        self.assertRegex(r.stdout, rf"account alice: message {ids[3]} "
                         rf"\(mailbox Work, uid 4\): size \d+, but prefix 0 "
                         rf"\+ file \d+ bytes")
        self.assertIn("account alice: mailbox Work: unseen 4, counted 3",
                      r.stdout)
        # Size also disagrees with the mailbox's sum now.
        self.assertRegex(r.stdout, r"mailbox Work: size \d+, counted \d+")
        self.assertIn("verifydata: 1 account, 5 messages, 4 problems",
                      r.stdout)

        # An orphan file (a row deleted behind the store's back) and a
        # broken thread reference.
        con = sqlite3.connect(db_path(cfg))
        con.execute("DELETE FROM messages WHERE id = ?", (ids[4],))
        con.execute("UPDATE messages SET thread_id = ? WHERE id = ?",
                    (ids[2], ids[0]))
        con.commit()
        con.close()
        r = cli(cfg, "verifydata")
        self.assertEqual(r.returncode, 1, r.stdout)
        self.assertIn(f"account alice: message {ids[4]}: orphan file",
                      r.stdout)
        self.assertIn(f"account alice: message {ids[0]} (mailbox Work, "
                      f"uid 1): thread id {ids[2]}, but no parents",
                      r.stdout)

        # A tombstone for a uid that still exists, one above uidnext.
        con = sqlite3.connect(db_path(cfg))
        box = con.execute("SELECT id FROM mailboxes WHERE name = 'Work'"
                          ).fetchone()[0]
        con.execute("INSERT INTO expunged (mailbox_id, uid, modseq)"
                    " VALUES (?, 3, 1), (?, 99, 1)", (box, box))
        con.commit()
        con.close()
        r = cli(cfg, "verifydata")
        self.assertEqual(r.returncode, 1, r.stdout)
        self.assertIn("account alice: tombstone (mailbox Work, uid 3): the "
                      "message with that uid exists", r.stdout)
        self.assertIn("account alice: tombstone (mailbox Work, uid 99): uid "
                      "not below uidnext 6", r.stdout)


if __name__ == "__main__":
    h.main()
