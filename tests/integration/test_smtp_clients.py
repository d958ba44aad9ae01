"""Real SMTP clients — swaks and curl — deliver to a local account over
plain SMTP, STARTTLS and implicit TLS; the stored message is byte-exact
after the header lines tessera adds (issue 5, acceptance 1)."""
import os
import subprocess

import tsharness as h
from test_smtp_inbound import BODY, SmtpBase


class SmtpClients(SmtpBase):
    def setUp(self):
        super().setUp()
        self.tls_port = h.free_port()
        self.start(extra="tls = starttls\n\n"
                         f"[listener mxs]\nport = {self.tls_port}\n"
                         "protocol = smtp\ntls = implicit\n")
        self.msgfile = os.path.join(self.tmp, "message.eml")
        with open(self.msgfile, "wb") as f:
            f.write(BODY)
        # swaks always sends CRLF.CRLF after the data, so its copy of the
        # message must not end with a line break of its own.
        self.swaksfile = os.path.join(self.tmp, "swaks.eml")
        with open(self.swaksfile, "wb") as f:
            f.write(BODY[:-2])
        self.expected = 0

    def check_delivered(self, r):
        self.assertEqual(r.returncode, 0, r.stdout + r.stderr)
        self.expected += 1
        msgs = self.stored("alice")
        self.assertEqual(len(msgs), self.expected)
        prefix, body = self.split_prefix(msgs[-1])
        self.assertEqual(body, BODY)
        self.assertIn("Return-Path: <s@remote.test>", prefix)
        return prefix

    def swaks(self, *args):
        return subprocess.run(
            ["swaks", "--server", "127.0.0.1", "--helo", "client.test",
             "--from", "s@remote.test", "--to", "alice@example.org",
             "--data", self.swaksfile, "--timeout", "20"] + list(args),
            capture_output=True, text=True, timeout=60,
            stdin=subprocess.DEVNULL)

    def curl(self, url, *args):
        return subprocess.run(
            ["curl", "--silent", "--show-error", "--max-time", "20",
             url, "--mail-from", "s@remote.test",
             "--mail-rcpt", "alice@example.org",
             "--upload-file", self.msgfile] + list(args),
            capture_output=True, text=True, timeout=60,
            stdin=subprocess.DEVNULL)

    def test_swaks_plain_starttls_implicit(self):
        prefix = self.check_delivered(self.swaks("--port", str(self.port)))
        self.assertIn("with ESMTP ", prefix)
        prefix = self.check_delivered(
            self.swaks("--port", str(self.port), "--tls"))
        self.assertIn("with ESMTPS", prefix)
        self.assertIn("TLS1.3", prefix)
        prefix = self.check_delivered(
            self.swaks("--port", str(self.tls_port), "--tlsc"))
        self.assertIn("with ESMTPS", prefix)

    def test_curl_plain_starttls_implicit(self):
        prefix = self.check_delivered(
            self.curl(f"smtp://127.0.0.1:{self.port}/client.test"))
        self.assertIn("with ESMTP ", prefix)
        prefix = self.check_delivered(
            self.curl(f"smtp://127.0.0.1:{self.port}/client.test",
                      "--ssl-reqd", "--insecure"))
        self.assertIn("with ESMTPS", prefix)
        prefix = self.check_delivered(
            self.curl(f"smtps://127.0.0.1:{self.tls_port}/client.test",
                      "--insecure"))
        self.assertIn("with ESMTPS", prefix)

    def test_swaks_unknown_recipient_refused(self):
        r = subprocess.run(
            ["swaks", "--server", "127.0.0.1", "--port", str(self.port),
             "--from", "s@remote.test", "--to", "nobody@example.org",
             "--data", self.msgfile, "--timeout", "20"],
            capture_output=True, text=True, timeout=60,
            stdin=subprocess.DEVNULL)
        self.assertNotEqual(r.returncode, 0)
        self.assertIn("550 5.1.1", r.stdout)
        self.assertEqual(self.stored("alice"), [])


if __name__ == "__main__":
    h.main()
