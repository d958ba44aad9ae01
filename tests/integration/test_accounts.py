"""`tessera account add|passwd|list|del`, the stored secrets, domains.d.

Acceptance 2 of issue 4: a password set with `tessera account passwd` is
checked by an independent SCRAM-SHA-256 client written here with hashlib
and hmac (RFC 5802 / RFC 7677), reading only what the server stored; a
wrong password fails; no file of the account's database holds the
password.  Also: the account commands' round trip and exit codes, the
terminal path of passwd (no echo, typed twice), and `tessera config
check` reporting domain and account errors with file:line.
"""
import base64
import hashlib
import hmac
import os
import pty
import select
import signal
import sqlite3
import subprocess
import time

import tsharness as h

DOMAINS = """\
[domain example.org]
localpart_separator = +

[account alice]
addresses = alice@example.org @example.org

[account bob]
addresses = bob@example.org
postmaster = yes
"""


def run(args, cfg, stdin_text=None):
    """`tessera ARGS -c CFG`, optionally with text on stdin."""
    r = subprocess.run([h.TESSERA] + args + ["-c", cfg.path],
                       input=stdin_text, capture_output=True, text=True,
                       timeout=60,
                       stdin=None if stdin_text is not None
                       else subprocess.DEVNULL)
    h.check_sanitizers(r.stderr)
    return r


def scram_client_proof(password, salt, iterations, auth_message):
    """What a SCRAM-SHA-256 client sends and expects (RFC 5802 sec. 3)."""
    salted = hashlib.pbkdf2_hmac("sha256", password.encode(), salt,
                                 iterations)
    client_key = hmac.new(salted, b"Client Key", hashlib.sha256).digest()
    stored_key = hashlib.sha256(client_key).digest()
    client_sig = hmac.new(stored_key, auth_message, hashlib.sha256).digest()
    proof = bytes(a ^ b for a, b in zip(client_key, client_sig))
    server_key = hmac.new(salted, b"Server Key", hashlib.sha256).digest()
    server_sig = hmac.new(server_key, auth_message, hashlib.sha256).digest()
    return proof, server_sig


def scram_server_verify(stored_key, server_key, auth_message, proof):
    """The server side, from the stored secret alone: recover ClientKey
    from the proof, hash it, compare with StoredKey; return the
    ServerSignature to send back (or None)."""
    client_sig = hmac.new(stored_key, auth_message, hashlib.sha256).digest()
    client_key = bytes(a ^ b for a, b in zip(proof, client_sig))
    if not hmac.compare_digest(hashlib.sha256(client_key).digest(),
                               stored_key):
        return None
    return hmac.new(server_key, auth_message, hashlib.sha256).digest()


class Accounts(h.TempDirTest):
    def setUp(self):
        super().setUp()
        self.cfg = self.config()
        self.cfg.write("domains.d/10-example.ini", DOMAINS)
        self.acc_dir = os.path.join(self.cfg.data_dir, "accounts")

    def db_rows(self, account):
        path = os.path.join(self.acc_dir, account, "index.db")
        con = sqlite3.connect(f"file:{path}?mode=ro", uri=True)
        try:
            return {row[0]: row[1:] for row in con.execute(
                "SELECT mechanism, salt, iterations, stored_key,"
                " server_key, inner_state, outer_state FROM credentials")}
        finally:
            con.close()

    def test_round_trip(self):
        r = run(["account", "list"], self.cfg)
        self.assertEqual(r.returncode, 0, r.stderr)
        lines = r.stdout.splitlines()
        self.assertEqual(lines[0].split(),
                         ["ACCOUNT", "STORE", "PASSWORD", "ADDRESSES"])
        self.assertEqual(lines[1].split(),
                         ["alice", "no", "no", "alice@example.org",
                          "@example.org"])
        self.assertEqual(lines[2].split(),
                         ["bob", "no", "no", "bob@example.org",
                          "(postmaster)"])

        r = run(["account", "add", "alice"], self.cfg)
        self.assertEqual(r.returncode, 0, r.stderr)
        self.assertIn("account alice: store created", r.stdout)
        self.assertTrue(os.path.isfile(
            os.path.join(self.acc_dir, "alice", "index.db")))
        r = run(["account", "add", "alice"], self.cfg)
        self.assertEqual(r.returncode, 1)
        self.assertIn("account alice already has a store", r.stderr)

        r = run(["account", "passwd", "alice"], self.cfg, "pw one\n")
        self.assertEqual(r.returncode, 0, r.stderr)
        self.assertEqual(r.stdout, "account alice: password set\n")
        # passwd creates bob's store on the way.
        r = run(["account", "passwd", "bob"], self.cfg, "pw two")
        self.assertEqual(r.returncode, 0, r.stderr)
        self.assertIn("(store created)", r.stdout)

        r = run(["account", "list"], self.cfg)
        self.assertEqual(r.returncode, 0, r.stderr)
        self.assertEqual(r.stdout.splitlines()[1].split()[:3],
                         ["alice", "yes", "yes"])
        self.assertEqual(r.stdout.splitlines()[2].split()[:3],
                         ["bob", "yes", "yes"])

        r = run(["account", "del", "alice"], self.cfg)
        self.assertEqual(r.returncode, 2)
        self.assertIn("add --yes to confirm", r.stderr)
        self.assertTrue(os.path.isdir(os.path.join(self.acc_dir, "alice")))
        r = run(["account", "del", "alice", "--yes"], self.cfg)
        self.assertEqual(r.returncode, 0, r.stderr)
        self.assertFalse(os.path.exists(os.path.join(self.acc_dir, "alice")))
        self.assertTrue(os.path.isdir(os.path.join(self.acc_dir, "bob")))
        r = run(["account", "del", "alice", "--yes"], self.cfg)
        self.assertEqual(r.returncode, 1)
        self.assertIn("account alice has no store", r.stderr)

        r = run(["account", "list"], self.cfg)
        self.assertEqual(r.stdout.splitlines()[1].split()[:3],
                         ["alice", "no", "no"])

    def test_refusals_and_usage(self):
        r = run(["account", "add", "carol"], self.cfg)
        self.assertEqual(r.returncode, 1)
        self.assertIn("no account 'carol'", r.stderr)
        self.assertIn("add an [account carol] section", r.stderr)
        r = run(["account", "passwd", "carol"], self.cfg, "x\n")
        self.assertEqual(r.returncode, 1)
        self.assertIn("no account 'carol'", r.stderr)

        r = run(["account", "passwd", "alice"], self.cfg, "\n")
        self.assertEqual(r.returncode, 1)
        self.assertIn("empty password refused", r.stderr)
        r = run(["account", "passwd", "alice"], self.cfg, "")
        self.assertEqual(r.returncode, 1)
        self.assertIn("no password line", r.stderr)
        self.assertFalse(os.path.exists(os.path.join(self.acc_dir, "alice")))

        r = run(["account", "del", "../alice", "--yes"], self.cfg)
        self.assertEqual(r.returncode, 1)
        self.assertIn("not a valid account name", r.stderr)

        for args in (["account"], ["account", "frob"],
                     ["account", "add"], ["account", "add", "a", "b"],
                     ["account", "list", "x"], ["account", "--nope"],
                     ["account", "add", "alice", "--yes"]):
            r = run(args, self.cfg)
            self.assertEqual(r.returncode, 2, args)
            self.assertIn("usage: tessera account", r.stderr, args)
        for args in (["account", "help"], ["account", "--help"]):
            r = run(args, self.cfg)
            self.assertEqual(r.returncode, 0, args)
            self.assertIn("usage: tessera account list", r.stdout)

    def test_scram_sha256_independent_client(self):
        """Acceptance 2."""
        password = "Tr0ub4dor&3 with spaces"
        r = run(["account", "passwd", "alice"], self.cfg, password + "\n")
        self.assertEqual(r.returncode, 0, r.stderr)
        rows = self.db_rows("alice")
        self.assertEqual(sorted(rows),
                         ["CRAM-MD5", "SCRAM-SHA-1", "SCRAM-SHA-256"])

        salt, iterations, stored_key, server_key, inner, outer = \
            rows["SCRAM-SHA-256"]
        self.assertEqual(len(salt), 16)
        self.assertGreaterEqual(iterations, 4096)
        self.assertEqual(len(stored_key), 32)
        self.assertEqual(len(server_key), 32)
        self.assertIsNone(inner)
        self.assertIsNone(outer)

        # The client's derivation gives exactly the stored keys.
        salted = hashlib.pbkdf2_hmac("sha256", password.encode(), salt,
                                     iterations)
        client_key = hmac.new(salted, b"Client Key", hashlib.sha256).digest()
        self.assertEqual(hashlib.sha256(client_key).digest(), stored_key)
        self.assertEqual(
            hmac.new(salted, b"Server Key", hashlib.sha256).digest(),
            server_key)

        # A whole exchange: messages as RFC 5802 builds them.
        cnonce = base64.b64encode(os.urandom(18)).decode()
        snonce = cnonce + base64.b64encode(os.urandom(18)).decode()
        client_first_bare = f"n=alice,r={cnonce}"
        server_first = (f"r={snonce},s={base64.b64encode(salt).decode()},"
                        f"i={iterations}")
        client_final_bare = f"c=biws,r={snonce}"
        auth_message = ",".join([client_first_bare, server_first,
                                 client_final_bare]).encode()
        proof, expected_server_sig = scram_client_proof(
            password, salt, iterations, auth_message)
        server_sig = scram_server_verify(stored_key, server_key,
                                         auth_message, proof)
        self.assertIsNotNone(server_sig)
        self.assertEqual(server_sig, expected_server_sig)

        # A wrong password gives a proof that does not verify.
        for wrong in ("Tr0ub4dor&3 with space", "tr0ub4dor&3 with spaces",
                      ""):
            bad_proof, _ = scram_client_proof(wrong, salt, iterations,
                                              auth_message)
            self.assertIsNone(scram_server_verify(
                stored_key, server_key, auth_message, bad_proof), wrong)

        # SCRAM-SHA-1 too, with its own salt.
        salt1, iter1, stored1, server1, _, _ = rows["SCRAM-SHA-1"]
        salted1 = hashlib.pbkdf2_hmac("sha1", password.encode(), salt1,
                                      iter1)
        ck1 = hmac.new(salted1, b"Client Key", hashlib.sha1).digest()
        self.assertEqual(hashlib.sha1(ck1).digest(), stored1)
        self.assertEqual(hmac.new(salted1, b"Server Key",
                                  hashlib.sha1).digest(), server1)
        self.assertNotEqual(salt1, salt)

        # CRAM-MD5: two 16-byte MD5 states, neither the password.  (That
        # they continue into HMAC-MD5(password, challenge) is checked in
        # tests/unit/test-credentials.c, which has the MD5 continuation.)
        _, _, _, _, inner, outer = rows["CRAM-MD5"]
        self.assertEqual(len(inner), 16)
        self.assertEqual(len(outer), 16)
        self.assertNotEqual(inner, outer)
        for state in (inner, outer):
            self.assertNotIn(state, password.encode().ljust(64, b"\0"))
            self.assertNotIn(password.encode()[:8], state)

        # No copy of the password in the database or its WAL/shm files.
        needles = [password.encode(), password.encode("utf-16-le"),
                   base64.b64encode(password.encode())]
        dbdir = os.path.join(self.acc_dir, "alice")
        seen = 0
        for name in ("index.db", "index.db-wal", "index.db-shm"):
            path = os.path.join(dbdir, name)
            if not os.path.exists(path):
                continue
            seen += 1
            with open(path, "rb") as f:
                data = f.read()
            for needle in needles:
                self.assertNotIn(needle, data, name)
        self.assertGreaterEqual(seen, 1)

        # A new password replaces every secret.
        r = run(["account", "passwd", "alice"], self.cfg, "other\n")
        self.assertEqual(r.returncode, 0, r.stderr)
        again = self.db_rows("alice")
        self.assertNotEqual(again["SCRAM-SHA-256"][0], salt)
        self.assertNotEqual(again["SCRAM-SHA-256"][2], stored_key)

    def test_passwd_from_terminal(self):
        """On a terminal: prompted twice, not echoed, must match."""
        def session(first, second):
            pid, fd = pty.fork()
            if pid == 0:
                os.execv(h.TESSERA, [h.TESSERA, "account", "passwd", "bob",
                                     "-c", self.cfg.path])
            out = b""
            sent = 0
            deadline = time.monotonic() + 30
            while time.monotonic() < deadline:
                ready, _, _ = select.select([fd], [], [], 0.5)
                if not ready:
                    continue
                try:
                    chunk = os.read(fd, 4096)
                except OSError:
                    break
                if not chunk:
                    break
                out += chunk
                if sent == 0 and b"New password for bob: " in out:
                    os.write(fd, first.encode() + b"\n")
                    sent = 1
                elif sent == 1 and b"Retype it: " in out:
                    os.write(fd, second.encode() + b"\n")
                    sent = 2
            # Never hang the suite: a child still waiting is killed.
            for _ in range(50):
                done, status = os.waitpid(pid, os.WNOHANG)
                if done:
                    break
                time.sleep(0.1)
            else:
                os.kill(pid, signal.SIGKILL)
                _, status = os.waitpid(pid, 0)
            os.close(fd)
            text = out.decode(errors="replace")
            h.check_sanitizers(text)
            return os.waitstatus_to_exitcode(status), text

        rc, text = session("secret-typed", "secret-typo")
        self.assertEqual(rc, 1, text)
        self.assertIn("the passwords differ", text)
        self.assertNotIn("secret-typ", text)

        rc, text = session("secret-typed", "secret-typed")
        self.assertEqual(rc, 0, text)
        self.assertIn("account bob: password set", text)
        self.assertNotIn("secret-typed", text)  # never echoed
        salt, iterations, stored_key, _, _, _ = \
            self.db_rows("bob")["SCRAM-SHA-256"]
        salted = hashlib.pbkdf2_hmac("sha256", b"secret-typed", salt,
                                     iterations)
        ck = hmac.new(salted, b"Client Key", hashlib.sha256).digest()
        self.assertEqual(hashlib.sha256(ck).digest(), stored_key)


class DomainConfig(h.TempDirTest):
    def check(self, cfg):
        return h.run_cli(["config", "check"], config=cfg)

    def test_domains_d_is_read_and_checked(self):
        cfg = self.config()
        path = cfg.write("domains.d/20-bad.ini", """\
[domain example.org]
localpart_separator = ++
[account alice]
addresses = alice@example.org alice@nowhere.test
postmaster = yes
[account bob]
addresses = ALICE@Example.org
postmaster = yes
[account Bad]
""")
        r = self.check(cfg)
        self.assertEqual(r.returncode, 1)
        self.assertEqual(r.stderr.splitlines(), [
            f"{path}:2: localpart_separator '++' is longer than one "
            "character",
            f"{path}:4: address alice@nowhere.test: domain nowhere.test "
            "is not configured ([domain nowhere.test])",
            f"{path}:8: [account bob] and [account alice] ({path}:5) both "
            "say postmaster = yes; only one can",
            f"{path}:9: account name 'Bad': use a-z, 0-9, '.', '_' and "
            "'-' (at most 64, not starting with '.')",
            f"{path}:7: address alice@example.org is in [account alice] "
            "and [account bob]",
        ])

        # The account commands refuse a configuration with errors.
        r = run(["account", "list"], cfg)
        self.assertEqual(r.returncode, 1)
        self.assertIn(f"{path}:2:", r.stderr)

    def test_domains_d_order_and_local_d_override(self):
        """domains.d/ comes after conf.d/ and before local.d/."""
        cfg = self.config()
        cfg.write("conf.d/10-x.ini", "[domain example.org]\n"
                                     "localpart_separator = -\n")
        cfg.write("domains.d/20-b.ini", "[account bob]\n"
                                        "addresses = bob@example.org\n")
        cfg.write("domains.d/10-a.ini", "[domain example.org]\n"
                                        "localpart_separator = +\n"
                                        "[account alice]\n"
                                        "addresses = alice@example.org\n")
        local = cfg.write("local.d/90-site.ini",
                          "[account alice]\ndestination = Lists\n"
                          "addresses = alice@nowhere.test\n")
        r = self.check(cfg)
        self.assertEqual(r.returncode, 1)
        self.assertEqual(r.stderr.splitlines(), [
            f"{local}:3: address alice@nowhere.test: domain nowhere.test "
            "is not configured ([domain nowhere.test])"])

        os.unlink(local)
        r = self.check(cfg)
        self.assertEqual(r.returncode, 0, r.stderr)
        # 10-a.ini before 20-b.ini: alice is listed first.
        r = run(["account", "list"], cfg)
        self.assertEqual(r.returncode, 0, r.stderr)
        names = [l.split()[0] for l in r.stdout.splitlines()[1:]]
        self.assertEqual(names, ["alice", "bob"])


if __name__ == "__main__":
    h.main()
