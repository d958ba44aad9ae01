"""The imap module with a real synchronising client: Debian's isync
(mbsync) between two tessera servers (issue 7).

A second tessera (its own data dir and ports: the "far" side) holds a
mailbox tree: INBOX, nested folders, messages with \\Seen, \\Flagged,
\\Answered, \\Draft, $Forwarded and keywords ($Junk, custom ones).
mbsync, over implicit TLS with the test certificate, copies it into
the first tessera (the "near" side): every folder and message arrives
byte for byte (but for the X-TUID field mbsync adds to its copies) with
its flags.  Changes made on the near side (flags set and cleared, new
messages, a new nested folder) go back to the far side, and keywords
mbsync does not carry stay where they were set.  A further run
transfers nothing: mbsync's IMAP traffic (-Dn) holds no APPEND, STORE,
CREATE, EXPUNGE, COPY or body fetch, and both trees stay exactly as
they were.

mbsync 1.4 (Debian 12) synchronises the flags \\Seen, \\Flagged,
\\Answered, \\Draft, \\Deleted and $Forwarded; other keywords are not
propagated by it (not a server matter), so for those the test checks
that the sync leaves them intact on both sides.
"""
import os
import re
import shutil
import subprocess

import imapfixture as f
import tsharness as h

MBSYNC = shutil.which("mbsync")

# folder -> [(subject, flags to APPEND with)]
TREE = {
    "INBOX": [("inbox seen", r"(\Seen)"),
              ("inbox flagged", r"(\Flagged $Junk)"),
              ("inbox forwarded", r"(\Seen $Forwarded Project-X)")],
    "Work": [("work plain", None)],
    "Work/Projects": [("project answered", r"(\Answered \Seen)"),
                      ("project draft", r"(\Draft $NotJunk)")],
    "Archive/2020/Q1": [("old one", r"(\Seen)")],
}

# The flags mbsync 1.4 synchronises.
SYNCED = {"\\Seen", "\\Flagged", "\\Answered", "\\Draft", "\\Deleted",
          "$Forwarded"}


def untuid(msg):
    """The message without the X-TUID header field mbsync adds to every
    copy it makes (its way to find the copy again)."""
    return re.sub(rb"(?m)^X-TUID: [^\r\n]*\r\n", b"", msg, count=1)


def transfers(out, command):
    """The commands containing `command` mbsync sent (its -Dn lines look
    like ">>> 12 UID STORE …" or "far>>> …", versions differ)."""
    return [line for line in out.splitlines()
            if re.search(r">>> \d+ ", line) and
            re.search(r"(?<![\w.])" + re.escape(command) + r"(?![\w.])",
                      line.split(">>>", 1)[1])]


def body_of(subject):
    return f.message(subject, f"body of {subject}\r\nsecond line")


class Mbsync(f.ImapTest):
    def setUp(self):
        if MBSYNC is None:
            self.fail("mbsync is not installed (Debian package isync, "
                      "in tools/dev's DEPS)")
        super().setUp()
        # The first server (self.srv) is the near side; start the far one
        # with the same certificate in its own directory.
        near = (self.tmp, self.srv, self.port, self.tls_port,
                self.smtp_port, self.cfg)
        self.tmp = os.path.join(near[0], "far")
        os.makedirs(self.tmp)
        for attempt in range(3):
            self.start_server()
            try:
                self.srv.start()
                break
            except AssertionError:
                if attempt == 2 or "already in use" not in self.srv.log():
                    raise
                self.srv.stop()
        self.addCleanup(self.srv.stop)
        self.far_srv, self.far_port = self.srv, self.tls_port
        (self.tmp, self.srv, self.port, self.tls_port, self.smtp_port,
         self.cfg) = near
        self.near_port = self.tls_port
        self.rc_path = os.path.join(self.tmp, "mbsyncrc")
        state = os.path.join(self.tmp, "mbsync-state") + "/"
        os.makedirs(state)
        stores = ""
        for side, port in (("far", self.far_port), ("near", self.near_port)):
            stores += (f"IMAPAccount {side}-acct\n"
                       "Host 127.0.0.1\n"
                       f"Port {port}\n"
                       "User alice\n"
                       f'Pass "{f.PASSWORD}"\n'
                       "SSLType IMAPS\n"
                       f"CertificateFile {self.cert}\n"
                       "Timeout 30\n\n"
                       f"IMAPStore {side}\n"
                       f"Account {side}-acct\n\n")
        with open(self.rc_path, "w") as rc:
            rc.write(stores +
                     "Channel tree\n"
                     "Far :far:\n"
                     "Near :near:\n"
                     "Patterns *\n"
                     "Create Both\n"
                     "Remove None\n"
                     "Expunge None\n"
                     "Sync All\n"
                     "CopyArrivalDate yes\n"
                     f"SyncState {state}\n")

    def side(self, port):
        c = f.imaplib.IMAP4_SSL("127.0.0.1", port,
                                ssl_context=self.ssl_ctx(),
                                timeout=f.TIMEOUT)
        self.addCleanup(self._shutdown, c)
        c.login("alice", f.PASSWORD)
        return c

    def mbsync(self):
        """Run mbsync over the channel; return its output with the IMAP
        traffic (-Dn: every command it sends to either side)."""
        r = subprocess.run([MBSYNC, "-V", "-Dn", "-c", self.rc_path, "tree"],
                           capture_output=True, text=True, timeout=120,
                           stdin=subprocess.DEVNULL)
        out = r.stdout + r.stderr
        self.assertEqual(r.returncode, 0, out)
        return out

    @staticmethod
    def folders(c):
        typ, data = c.list('""', "*")
        assert typ == "OK", data
        names = set()
        for line in data:
            m = re.match(rb'\(([^)]*)\) (NIL|"[^"]*") (.*)$', line)
            name = m.group(3).decode()
            if name.startswith('"'):
                name = name[1:-1]
            if "\\Noselect" not in m.group(1).decode():
                names.add(name)
        return names

    @staticmethod
    def contents(c, folder):
        """{message bytes: set of flags} of a folder."""
        typ, data = c.select(f'"{folder}"', readonly=True)
        assert typ == "OK", data
        if data[0] == b"0":
            return {}
        typ, data = c.fetch("1:*", "(FLAGS BODY.PEEK[])")
        assert typ == "OK", data
        out = {}
        for item in data:
            if not isinstance(item, tuple):
                continue
            flags = re.search(rb"FLAGS \(([^)]*)\)", item[0])
            out[untuid(item[1])] = set(flags.group(1).decode().split())
        return out

    def tree(self, c):
        return {name: self.contents(c, name) for name in self.folders(c)}

    @staticmethod
    def synced(tree):
        """The tree with only the flags mbsync carries."""
        return {name: {msg: flags & SYNCED for msg, flags in box.items()}
                for name, box in tree.items()}

    def test_sync_both_ways(self):
        far = self.side(self.far_port)
        for folder, msgs in TREE.items():
            if folder != "INBOX":
                typ, data = far.create(f'"{folder}"')
                self.assertEqual(typ, "OK", data)
            for subject, flags in msgs:
                self.append(far, f'"{folder}"', body_of(subject), flags)

        # far -> near
        self.mbsync()
        near = self.side(self.near_port)
        far_tree, near_tree = self.tree(far), self.tree(near)
        # the default folders (Sent, Trash …) and the parents created
        # with the nested ones are there too
        folders = set(far_tree)
        self.assertTrue(set(TREE) <= folders, folders)
        self.assertEqual(set(near_tree), folders)
        self.assertEqual(self.synced(near_tree), self.synced(far_tree))
        for folder, msgs in TREE.items():
            self.assertEqual(sorted(near_tree[folder]),
                             sorted(body_of(s) for s, _ in msgs))
        inbox = near_tree["INBOX"]
        self.assertEqual(inbox[body_of("inbox forwarded")],
                         {"\\Seen", "$Forwarded"})
        self.assertEqual(inbox[body_of("inbox flagged")], {"\\Flagged"})

        # changes on the near side, keywords on both sides
        near.select("INBOX")
        self.assertEqual(near.store("1", "-FLAGS", "\\Seen")[0], "OK")
        self.assertEqual(near.store("2", "+FLAGS",
                                    "(\\Seen $Junk Near-Tag)")[0], "OK")
        near.select('"Work/Projects"')
        self.assertEqual(near.store("2", "+FLAGS", "(\\Flagged)")[0], "OK")
        self.assertEqual(near.create('"Work/New Stuff"')[0], "OK")
        self.append(near, '"Work/New Stuff"', body_of("made near"),
                    r"(\Seen $Forwarded)")
        self.append(near, "INBOX", body_of("late arrival"), r"(\Flagged)")

        # near -> far
        out = self.mbsync()
        self.assertEqual(len(transfers(out, "APPEND")), 2, out)
        self.assertEqual(len(transfers(out, "CREATE")), 1, out)
        self.assertTrue(transfers(out, "STORE"), out)
        self.assertTrue(transfers(out, "BODY.PEEK[]"), out)
        far_tree, near_tree = self.tree(far), self.tree(near)
        self.assertEqual(set(far_tree), folders | {"Work/New Stuff"})
        self.assertEqual(set(near_tree), set(far_tree))
        self.assertEqual(self.synced(near_tree), self.synced(far_tree))
        finbox = far_tree["INBOX"]
        self.assertEqual(finbox[body_of("inbox seen")], set())
        self.assertEqual(finbox[body_of("inbox flagged")],
                         {"\\Flagged", "\\Seen", "$Junk"})
        self.assertEqual(finbox[body_of("inbox forwarded")],
                         {"\\Seen", "$Forwarded", "Project-X"})
        self.assertEqual(finbox[body_of("late arrival")], {"\\Flagged"})
        self.assertEqual(
            far_tree["Work/Projects"][body_of("project draft")],
            {"\\Draft", "\\Flagged", "$NotJunk"})
        self.assertEqual(far_tree["Work/New Stuff"],
                         {body_of("made near"): {"\\Seen", "$Forwarded"}})
        # keywords set near stay near
        self.assertEqual(near_tree["INBOX"][body_of("inbox flagged")],
                         {"\\Flagged", "\\Seen", "$Junk", "Near-Tag"})

        # a further run changes nothing anywhere
        before_far, before_near = far_tree, near_tree
        out = self.mbsync()
        for command in ("APPEND", "STORE", "CREATE", "EXPUNGE", "COPY",
                        "BODY.PEEK[]"):
            self.assertEqual(transfers(out, command), [], out)
        self.assertEqual(self.tree(far), before_far)
        self.assertEqual(self.tree(near), before_near)


if __name__ == "__main__":
    h.main()
