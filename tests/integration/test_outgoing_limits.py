"""Outgoing limits per account (issue 6), lowered to 3 messages and 2
first-time recipients per day: the 4th message is refused at MAIL and the
3rd new address at RCPT, with texts naming the [module smtp] keys to
raise; known addresses, local recipients and inbound (unauthenticated)
mail are not limited; the history survives a restart (it is in the
account's store).  Remote mail goes to tests/modules/qtransport."""
import smtplib
import subprocess

import tsharness as h
from test_queue import SMTP_DIR, DOMAINS, body


class OutgoingLimits(h.TempDirTest):
    def setUp(self):
        super().setUp()
        cfg = self.config(module_dirs=[h.TEST_MODULES, SMTP_DIR],
                          core={"hostname": "mx.example.org"})
        cfg.write("domains.d/10-example.ini",
                  DOMAINS + "\n[account bob]\naddresses = bob@example.org\n")
        self.port = h.free_port()
        self.mx_port = h.free_port()
        cfg.write("conf.d/20-smtp.ini",
                  "[module smtp]\nenabled = yes\n"
                  "allow_plaintext_auth = yes\n"
                  "max_messages_per_day = 3\n"
                  "max_new_recipients_per_day = 2\n\n"
                  f"[listener sub]\nport = {self.port}\n"
                  "protocol = submission\n\n"
                  f"[listener mx]\nport = {self.mx_port}\n"
                  "protocol = smtp\n\n"
                  "[module qtransport]\nenabled = yes\n")
        self.cfg = cfg
        r = subprocess.run([h.TESSERA, "account", "passwd", "alice", "-c",
                            cfg.path], input="pw\n", capture_output=True,
                           text=True, timeout=60)
        self.assertEqual(r.returncode, 0, r.stderr)
        self.start()

    def start(self):
        self.srv = h.Server(self.cfg)
        self.srv.start()
        self.addCleanup(self.srv.stop)

    def session(self):
        c = smtplib.SMTP("127.0.0.1", self.port, timeout=20)
        self.addCleanup(c.close)
        c.login("alice", "pw")
        return c

    def send(self, c, rcpts):
        """MAIL, RCPTs, DATA; the replies of MAIL and of each RCPT."""
        code, text = c.mail("alice@example.org")
        if code != 250:
            c.rset()
            return (code, text), []
        got = [c.rcpt(r) for r in rcpts]
        if any(g[0] == 250 for g in got):
            code, _ = c.data(body())
            self.assertEqual(code, 250)
        else:
            c.rset()
        return (250, b""), got

    def test_new_recipients_then_messages(self):
        c = self.session()
        # Two new addresses in one message: both fit.
        mail, got = self.send(c, ["ok1@remote.test", "ok2@remote.test"])
        self.assertEqual([g[0] for g in got], [250, 250])
        # A third new one is refused, naming the key; a known one and a
        # local one still go.
        mail, got = self.send(c, ["ok3@remote.test", "ok1@remote.test",
                                  "bob@example.org"])
        self.assertEqual(got[0][0], 451)
        self.assertIn(b"4.7.1 daily limit of 2 first-time recipients",
                      got[0][1])
        self.assertIn(b"[module smtp] max_new_recipients_per_day",
                      got[0][1])
        self.assertEqual([g[0] for g in got[1:]], [250, 250])
        # Case does not make an address new.
        mail, got = self.send(c, ["OK2@Remote.Test"])
        self.assertEqual(got[0][0], 250)
        # That was the 3rd message with remote recipients: the 4th is
        # refused at MAIL.
        mail, got = self.send(c, ["ok1@remote.test"])
        self.assertEqual(mail[0], 451)
        self.assertIn(b"4.7.1 daily limit of 3 messages", mail[1])
        self.assertIn(b"[module smtp] max_messages_per_day", mail[1])
        c.quit()
        # Kept across a restart.
        self.srv.stop()
        self.start()
        c = self.session()
        code, text = c.mail("alice@example.org")
        self.assertEqual(code, 451, text)
        c.quit()
        # Inbound mail from outside is not limited.
        m = smtplib.SMTP("127.0.0.1", self.mx_port, timeout=20)
        self.addCleanup(m.close)
        self.assertEqual(m.sendmail("x@remote.test", ["bob@example.org"],
                                    body()), {})
        m.quit()

    def test_local_only_not_counted(self):
        c = self.session()
        for _ in range(5):
            mail, got = self.send(c, ["bob@example.org"])
            self.assertEqual(mail[0], 250)
            self.assertEqual(got[0][0], 250)
        c.quit()


if __name__ == "__main__":
    h.main()
