"""`tessera sendmail` and the `sendmail` link (issue 6).

A tessera with a submission listener (STARTTLS, test CA certificate for
127.0.0.1) and a [sendmail] section naming it, account alice and her
password file.  Messages piped to `tessera sendmail` arrive in the local
recipients' Inboxes: -t takes To/Cc/Bcc (Bcc removed), -f sets the
envelope sender, -F the From: it adds, -i keeps a lone "." line; the
server's log shows SCRAM (or the configured PLAIN).  Bad input and
refusals give the sysexits codes.
"""
import os
import subprocess

import tlsfixture
import tsharness as h
from test_outbound_direct import read_store, SMTP_DIR

EX_USAGE, EX_DATAERR, EX_NOUSER, EX_TEMPFAIL, EX_NOPERM, EX_CONFIG = \
    64, 65, 67, 75, 77, 78


class Sendmail(h.TempDirTest):
    def setUp(self):
        super().setUp()
        ca = tlsfixture.TestCA(os.path.join(self.tmp, "ca"))
        cert, key = ca.issue("mail.example.org", ips=("127.0.0.1",))
        cfg = self.config(module_dirs=[h.TEST_MODULES, SMTP_DIR],
                          core={"hostname": "mail.example.org"})
        cfg.write("domains.d/10-example.ini",
                  "[domain example.org]\n\n"
                  "[account alice]\naddresses = alice@example.org\n\n"
                  "[account bob]\naddresses = bob@example.org\n\n"
                  "[account carol]\naddresses = carol@example.org\n")
        self.port = h.free_port()
        cfg.write("conf.d/20-smtp.ini",
                  "[module smtp]\nenabled = yes\n\n"
                  f"[listener sub]\nport = {self.port}\n"
                  "protocol = submission\ntls = starttls\n"
                  f"tls_cert = {cert}\ntls_key = {key}\n")
        self.pw = cfg.write("alice.pw", "alice pw\n")
        self.ca = ca
        self.cfg = cfg
        self.write_sendmail()
        r = subprocess.run([h.TESSERA, "account", "passwd", "alice", "-c",
                            cfg.path], input="alice pw\n",
                           capture_output=True, text=True, timeout=60)
        self.assertEqual(r.returncode, 0, r.stderr)
        self.srv = h.Server(cfg)
        self.srv.start()
        self.addCleanup(self.srv.stop)

    def write_sendmail(self, extra="", password_file=None):
        self.cfg.write("conf.d/30-sendmail.ini",
                       "[sendmail]\nhost = 127.0.0.1\n"
                       f"port = {self.port}\ntls = starttls\n"
                       f"tls_ca_file = {self.ca.cert}\naccount = alice\n"
                       f"password_file = {password_file or self.pw}\n"
                       + extra)

    def sendmail(self, args, text, argv0=None):
        cmd = [h.TESSERA, "sendmail", "-C", self.cfg.path] + args
        if argv0 is not None:
            cmd = [argv0, "-C", self.cfg.path] + args
        r = subprocess.run(cmd, input=text.encode(), capture_output=True,
                           timeout=60, stdin=None)
        h.check_sanitizers(r.stderr.decode(errors="replace"))
        return r

    def inbox(self, account):
        return read_store(self.cfg, account)

    def test_t_with_bcc(self):
        r = self.sendmail(["-t"], "From: alice@example.org\n"
                          "To: Bob <bob@example.org>\n"
                          "Bcc: carol@example.org\n"
                          "Subject: cron\n\nnightly report\n")
        self.assertEqual(r.returncode, 0, r.stderr)
        for who in ("bob", "carol"):
            msgs = self.inbox(who)
            self.assertEqual(len(msgs), 1, who)
            self.assertIn(b"Subject: cron\r\n", msgs[0])
            self.assertIn(b"nightly report\r\n", msgs[0])
            self.assertNotIn(b"Bcc:", msgs[0])
            self.assertIn(b"Return-Path: <alice@example.org>", msgs[0])
        self.srv.wait_log(r"authenticated account=alice "
                          r"mechanism=SCRAM-SHA-256-PLUS")

    def test_f_F_and_dot(self):
        # No From: header: -F and -f make one.  Without -i, a lone dot
        # ends the message.
        r = self.sendmail(["-f", "alice@example.org", "-F", "Cron Daemon",
                           "bob@example.org"],
                          "Subject: dots\n\nbefore\n.\nafter\n")
        self.assertEqual(r.returncode, 0, r.stderr)
        m = self.inbox("bob")[0]
        self.assertIn(b"From: \"Cron Daemon\" <alice@example.org>\r\n", m)
        self.assertIn(b"before\r\n", m)
        self.assertNotIn(b"after", m)
        # With -i (and -oi), the dot is content, dot-stuffed on the wire.
        for flag in ("-i", "-oi"):
            r = self.sendmail([flag, "-f", "alice@example.org",
                               "bob@example.org"],
                              f"Subject: {flag}\n\nbefore\n.\n..x\nafter\n")
            self.assertEqual(r.returncode, 0, r.stderr)
        msgs = self.inbox("bob")
        self.assertEqual(len(msgs), 3)
        for m in msgs[1:]:
            self.assertTrue(m.endswith(b"before\r\n.\r\n..x\r\nafter\r\n"),
                            m)
            self.assertIn(b"From: alice@example.org\r\n", m)

    def test_plain_without_scram(self):
        self.write_sendmail("mechanism = PLAIN\n")
        r = self.sendmail(["bob@example.org"],
                          "From: alice@example.org\nSubject: p\n\nhi\n")
        self.assertEqual(r.returncode, 0, r.stderr)
        self.assertEqual(len(self.inbox("bob")), 1)
        self.srv.wait_log(r"authenticated account=alice mechanism=PLAIN\n")

    def test_sendmail_link(self):
        link = os.path.join(self.tmp, "sendmail")
        os.symlink(h.TESSERA, link)
        r = self.sendmail(["-t"], "From: alice@example.org\n"
                          "To: bob@example.org, carol@example.org\n"
                          "Subject: link\n\nvia link\n", argv0=link)
        self.assertEqual(r.returncode, 0, r.stderr)
        self.assertEqual(len(self.inbox("bob")), 1)
        self.assertEqual(len(self.inbox("carol")), 1)

    def test_errors(self):
        # No recipients.
        r = self.sendmail([], "From: alice@example.org\n\nx\n")
        self.assertEqual(r.returncode, EX_USAGE, r.stderr)
        self.assertIn(b"no recipients", r.stderr)
        r = self.sendmail(["-t"], "From: alice@example.org\nSubject: x\n\n")
        self.assertEqual(r.returncode, EX_USAGE, r.stderr)
        # Unknown option, option without value.
        self.assertEqual(self.sendmail(["-q"], "").returncode, EX_USAGE)
        self.assertEqual(self.sendmail(["-f"], "").returncode, EX_USAGE)
        # A malformed recipient.
        r = self.sendmail(["bob example"], "Subject: x\n\nx\n")
        self.assertEqual(r.returncode, EX_DATAERR, r.stderr)
        # A local recipient that does not exist.
        r = self.sendmail(["-f", "alice@example.org", "nobody@example.org"],
                          "Subject: x\n\nx\n")
        self.assertEqual(r.returncode, EX_NOUSER, r.stderr)
        # A sender alice does not own.
        r = self.sendmail(["-f", "bob@example.org", "carol@example.org"],
                          "Subject: x\n\nx\n")
        self.assertEqual(r.returncode, EX_NOPERM, r.stderr)
        # Wrong password.
        bad = self.cfg.write("bad.pw", "wrong\n")
        self.write_sendmail(password_file=bad)
        r = self.sendmail(["bob@example.org"], "Subject: x\n\nx\n")
        self.assertEqual(r.returncode, EX_NOPERM, r.stderr)
        self.assertIn(b"authentication as alice refused", r.stderr)
        self.assertNotIn(b"wrong", r.stderr)
        # Missing password file.
        self.write_sendmail(password_file="/nonexistent/pw")
        r = self.sendmail(["bob@example.org"], "Subject: x\n\nx\n")
        self.assertEqual(r.returncode, EX_CONFIG, r.stderr)
        # Nothing listening.
        self.write_sendmail()
        self.srv.stop()
        r = self.sendmail(["bob@example.org"], "Subject: x\n\nx\n")
        self.assertEqual(r.returncode, EX_TEMPFAIL, r.stderr)
        self.assertEqual(self.inbox("bob"), [])


if __name__ == "__main__":
    h.main()
