"""The dkim module against dkimpy (Debian python3-dkim), end to end.

Messages signed by dkimpy (rsa-sha256 and ed25519-sha256, simple and
relaxed) are sent over SMTP to a tessera whose [dns] forwards to the DNS
fixture, where the public keys are TXT records under the signed zone
example.; each arrives with Authentication-Results dkim=pass (header.d,
header.s, header.b, "dnssec secure"); a tampered body, a revoked key, a
missing key and an unsigned message get fail / fail / permerror / none.
The other way round, mail submitted by a local user is signed by tessera
with keys made by `tessera dkim genkey` (Ed25519 and RSA), and dkimpy
verifies both signatures on the stored copy (its DNS lookups answered
from the TXT records genkey printed; nothing reaches real DNS).
"""
import os
import re
import shutil
import smtplib
import sqlite3
import subprocess
import tempfile
import time
import unittest

import dnsfixture
import tsharness as h

try:
    import dkim
    import nacl  # noqa: F401  (dkimpy's Ed25519 needs it)
except ImportError:  # pragma: no cover
    dkim = None

SMTP_DIR = os.path.join(h.BUILDDIR, "modules", "smtp", ".libs")
DKIM_DIR = os.path.join(h.BUILDDIR, "modules", "dkim", ".libs")
VECTORS = os.path.join(h.SRCDIR, "..", "shared", "testdata", "dkim",
                       "dkimpy")

DOMAINS = """\
[domain example.org]

[account alice]
addresses = alice@example.org

[account bob]
addresses = bob@example.org
"""

PASSWORD = "dkim test password"


def read(name):
    with open(os.path.join(VECTORS, name), "rb") as f:
        return f.read()


def txt_record(owner, text):
    """A zone-file TXT line, the text split into 255-byte strings."""
    parts = [text[i:i + 200] for i in range(0, len(text), 200)]
    return owner + " TXT " + " ".join('"%s"' % p for p in parts)


def message(subject, body=b"Hello,\r\n\r\nthis is a test.  \r\n\r\n\r\n"):
    return (b"From: Sender <sender@sender.example>\r\n"
            b"To: alice@example.org\r\n"
            b"Subject: " + subject.encode() + b"\r\n"
            b"Date: Sun, 22 Nov 2026 05:00:00 +0000\r\n"
            b"Message-ID: <" + subject.replace(" ", ".").encode() +
            b"@sender.example>\r\n"
            b"\r\n" + body)


@unittest.skipIf(dkim is None, "python3-dkim (and python3-nacl) missing")
@unittest.skipIf(dnsfixture.tools_missing(), "nsd/ldnsutils not installed")
@unittest.skipUnless(os.path.isdir(VECTORS), "shared DKIM vectors missing")
class Dkim(h.TempDirTest):
    @classmethod
    def setUpClass(cls):
        cls.fxdir = tempfile.mkdtemp(prefix="tessera-dkim-dns-")
        rsa_txt = read("test.txt").decode().strip()
        ed_txt = read("ed25519test.dns").decode().strip()
        fx = dnsfixture.DnsFixture(cls.fxdir)
        fx.zone("example.", "\n".join([
            txt_record("rsa._domainkey.sender", rsa_txt),
            txt_record("ed._domainkey.sender", ed_txt),
            txt_record("gone._domainkey.sender", "v=DKIM1; k=rsa; p="),
            # Another TXT record shares the selector's name.
            txt_record("multi._domainkey.sender", "site-verification=x1"),
            txt_record("multi._domainkey.sender", ed_txt),
        ]), signed=True)
        cls.fx = fx.start()

    @classmethod
    def tearDownClass(cls):
        cls.fx.stop()
        shutil.rmtree(cls.fxdir, ignore_errors=True)

    def start(self, dkim_extra=""):
        cfg = self.config(module_dirs=[h.TEST_MODULES, SMTP_DIR, DKIM_DIR],
                          core={"hostname": "mx.example.org"})
        cfg.write("domains.d/10-example.ini", DOMAINS)
        self.mx, self.sub = h.free_port(), h.free_port()
        cfg.write("conf.d/20-smtp.ini",
                  "[module smtp]\nenabled = yes\n"
                  "allow_plaintext_auth = yes\n\n"
                  f"[listener mx]\nport = {self.mx}\nprotocol = smtp\n\n"
                  f"[listener sub]\nport = {self.sub}\n"
                  "protocol = submission\n\n"
                  "[dns]\nresolver = forward\n"
                  f"forward = 127.0.0.1@{self.fx.port}\n"
                  f"trust_anchor = {self.fx.trust_anchor}\n")
        cfg.write("conf.d/30-dkim.ini",
                  "[module dkim]\nenabled = yes\n" + dkim_extra)
        self.cfg = cfg
        return cfg

    def run_server(self):
        self.srv = h.Server(self.cfg)
        self.srv.start()
        self.addCleanup(self.srv.stop)

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

    @staticmethod
    def auth_results(msg):
        """The Authentication-Results field, unfolded."""
        head = msg.split(b"\r\n\r\n", 1)[0].decode()
        m = re.search(r"(?ms)^Authentication-Results:(.*?)\r\n(?![ \t])",
                      head + "\r\n")
        assert m, head
        return re.sub(r"\r\n[ \t]+", " ", m.group(1)).strip()

    def send(self, msgs):
        c = smtplib.SMTP("127.0.0.1", self.mx, timeout=30)
        self.addCleanup(c.close)
        c.ehlo("client.sender.example")
        for m in msgs:
            self.assertEqual(c.sendmail("sender@sender.example",
                                        ["alice@example.org"], m), {})
        c.quit()

    def test_dkimpy_signed_messages_verify(self):
        self.start()
        self.run_server()
        rsa = read("test.private")
        ed = read("ed25519test.key").strip()
        cases = []
        for alg, sel, key in (("rsa-sha256", "rsa", rsa),
                              ("ed25519-sha256", "ed", ed)):
            for canon in ("simple", "relaxed"):
                m = message(f"{alg} {canon}")
                sig = dkim.sign(m, sel.encode(), b"sender.example", key,
                                canonicalize=(canon.encode(),
                                              canon.encode()),
                                signature_algorithm=alg.encode(),
                                include_headers=[b"from", b"to",
                                                 b"subject", b"date",
                                                 b"message-id"])
                cases.append((alg, canon, sel, sig + m))
        # Tampered body; a revoked key; no key; unsigned.
        m = message("tampered")
        sig = dkim.sign(m, b"rsa", b"sender.example", rsa)
        tampered = sig + m.replace(b"this is a test", b"this is a TEST")
        m = message("revoked")
        revoked = dkim.sign(m, b"gone", b"sender.example", rsa) + m
        m = message("nokey")
        nokey = dkim.sign(m, b"missing", b"sender.example", rsa) + m
        unsigned = message("unsigned")
        self.send([c[3] for c in cases] +
                  [tampered, revoked, nokey, unsigned])
        # Local delivery is done when DATA is answered.
        msgs = self.stored("alice")
        self.assertEqual(len(msgs), len(cases) + 4)
        for (alg, canon, sel, signed), got in zip(cases, msgs):
            ar = self.auth_results(got)
            b = re.search(rb"b=([A-Za-z0-9+/]{8})",
                          signed.split(b"bh=", 1)[1]).group(1).decode()
            self.assertRegex(
                ar, r"^mx\.example\.org; dkim=pass \([^)]*dnssec secure\) "
                    r"header\.d=sender\.example header\.s=" + sel +
                    r' header\.b="?' + re.escape(b) + '"?$',
                f"{alg} {canon}")
        self.assertRegex(self.auth_results(msgs[-4]),
                         r"dkim=fail .*reason=\"body hash did not verify\"")
        self.assertRegex(self.auth_results(msgs[-3]),
                         r"dkim=fail .*reason=\"key revoked\".*header\.s=gone")
        self.assertRegex(self.auth_results(msgs[-2]),
                         r"dkim=permerror .*reason=\"no key record at "
                         r"missing\._domainkey\.sender\.example\"")
        self.assertEqual(self.auth_results(msgs[-1]),
                         "mx.example.org; dkim=none")

    def test_signed_on_submission_verify_with_dkimpy(self):
        cfg = self.start()
        keys = {}
        for alg in ("ed25519", "rsa"):
            path = os.path.join(self.tmp, f"{alg}.pem")
            r = h.run_cli(["dkim", "genkey", alg, path], config=cfg)
            self.assertEqual(r.returncode, 0, r.stderr)
            self.assertRegex(r.stdout, r"^v=DKIM1; k=%s; p=[A-Za-z0-9+/=]+\n$"
                             % alg)
            self.assertEqual(os.stat(path).st_mode & 0o777, 0o600)
            keys[alg] = (path, r.stdout.strip())
        # genkey never overwrites; bad arguments are refused.
        r = h.run_cli(["dkim", "genkey", "rsa", keys["rsa"][0]], config=cfg)
        self.assertNotEqual(r.returncode, 0)
        r = h.run_cli(["dkim", "genkey", "dsa", "x.pem"], config=cfg)
        self.assertEqual(r.returncode, 2)
        cfg.write("conf.d/31-dkim-keys.ini",
                  "[dkim example.org]\n"
                  f"keys = ed:{keys['ed25519'][0]} rsa:{keys['rsa'][0]}\n")
        p = subprocess.run([h.TESSERA, "account", "passwd", "alice", "-c",
                            cfg.path], input=PASSWORD + "\n",
                           capture_output=True, text=True, timeout=60)
        h.check_sanitizers(p.stderr)
        self.assertEqual(p.returncode, 0, p.stderr)
        self.run_server()
        c = smtplib.SMTP("127.0.0.1", self.sub, timeout=30)
        self.addCleanup(c.close)
        c.ehlo("client.example.org")
        c.login("alice", PASSWORD)
        body = (b"From: Alice <alice@example.org>\r\n"
                b"To: bob@example.org\r\n"
                b"Subject: signed   by tessera\r\n"
                b"\r\n"
                b"Hi Bob,\r\n  trailing spaces   \r\n\r\n\r\n")
        self.assertEqual(c.sendmail("alice@example.org", ["bob@example.org"],
                                    body), {})
        c.quit()
        msgs = self.stored("bob")
        self.assertEqual(len(msgs), 1)
        msg = msgs[0]
        head = msg.split(b"\r\n\r\n", 1)[0]
        self.assertEqual(len(re.findall(rb"(?m)^DKIM-Signature:", head)), 2)
        # Date and Message-ID were added before signing and are signed.
        self.assertRegex(head, rb"(?s)DKIM-Signature:.*h=[^;]*Date:[^;]*"
                               rb"Message-ID")
        txt = {b"ed._domainkey.example.org.": keys["ed25519"][1].encode(),
               b"rsa._domainkey.example.org.": keys["rsa"][1].encode()}

        def dnsfunc(name, timeout=5):
            return txt.get(name)

        d = dkim.DKIM(msg)
        self.assertTrue(d.verify(idx=0, dnsfunc=dnsfunc))
        self.assertTrue(d.verify(idx=1, dnsfunc=dnsfunc))
        algs = sorted(re.findall(rb"a=([a-z0-9-]+);", head))
        self.assertEqual(algs, [b"ed25519-sha256", b"rsa-sha256"])
        # A changed body no longer verifies.
        bad = msg.replace(b"Hi Bob", b"Hi Rob")
        for idx in (0, 1):
            try:
                ok = dkim.DKIM(bad).verify(idx=idx, dnsfunc=dnsfunc)
            except dkim.ValidationError:
                ok = False
            self.assertFalse(ok)


    def test_dns_failure_is_temperror(self):
        with dnsfixture.ServfailServer() as sf:
            cfg = self.start()
            text = open(os.path.join(cfg.dir, "conf.d", "20-smtp.ini")).read()
            text = re.sub(r"(?s)\[dns\].*", "[dns]\nresolver = forward\n"
                          f"forward = 127.0.0.1@{sf.port}\n", text)
            cfg.write("conf.d/20-smtp.ini", text)
            self.run_server()
            m = message("servfail")
            self.send([dkim.sign(m, b"rsa", b"sender.example",
                                 read("test.private")) + m])
            msgs = self.stored("alice")
            self.assertEqual(len(msgs), 1)
            self.assertRegex(self.auth_results(msgs[0]),
                             r"dkim=temperror .*reason=\"key lookup "
                             r"failed\" header\.d=sender\.example "
                             r"header\.s=rsa")

    def test_key_among_other_txt_records(self):
        self.start()
        self.run_server()
        m = message("multi")
        sig = dkim.sign(m, b"multi", b"sender.example",
                        read("ed25519test.key").strip(),
                        signature_algorithm=b"ed25519-sha256")
        self.send([sig + m])
        ar = self.auth_results(self.stored("alice")[0])
        self.assertRegex(ar, r"dkim=pass .*header\.s=multi")

    def test_many_signatures_are_bounded(self):
        self.start("max_signatures = 3\n")
        self.run_server()
        m = message("hundred")
        sig = dkim.sign(m, b"ed", b"sender.example",
                        read("ed25519test.key").strip(),
                        signature_algorithm=b"ed25519-sha256")
        # 100 copies of one signature, plus garbage ones.
        bad = b"DKIM-Signature: v=1; a=rsa-sha256; b=;\r\n"
        t0 = time.monotonic()
        self.send([sig * 99 + bad + m])
        self.assertLess(time.monotonic() - t0, 20)
        ar = self.auth_results(self.stored("alice")[0])
        self.assertEqual(ar.count("dkim=pass"), 3, ar)
        self.assertEqual(ar.count("dkim="), 4, ar)
        self.assertIn('dkim=permerror reason="97 more signatures not '
                      'checked (max_signatures)"', ar)
        self.srv.wait_log(r"dkim: 97 signatures past max_signatures "
                          r"ignored")

    def test_key_config_errors(self):
        cfg = self.start()
        cfg.write("conf.d/31-dkim-keys.ini",
                  "[dkim example.org]\n"
                  f"keys = sel:{self.tmp}/missing.pem nocolon\n\n"
                  "[dkim example.net]\n")
        junk = os.path.join(self.tmp, "junk.pem")
        with open(junk, "w") as f:
            f.write("not a key\n")
        r = h.run_cli(["config", "check"], config=cfg)
        self.assertNotEqual(r.returncode, 0)
        out = r.stdout + r.stderr
        self.assertIn(f"{self.tmp}/missing.pem: No such file or directory",
                      out)
        self.assertIn("'nocolon' is not SELECTOR:FILE", out)
        self.assertIn("[dkim example.net] has no keys", out)
        cfg.write("conf.d/31-dkim-keys.ini",
                  f"[dkim example.org]\nkeys = sel:{junk}\n")
        r = h.run_cli(["config", "check"], config=cfg)
        self.assertNotEqual(r.returncode, 0)
        self.assertIn("not a PEM private key", r.stdout + r.stderr)


if __name__ == "__main__":
    h.main()
