"""The imap module with a real client: curl lists mailboxes, searches
and fetches messages over STARTTLS (imap:// with --ssl-reqd) and over
implicit TLS (imaps://), verifying the server against the test CA
(issue 7)."""
import subprocess

import imapfixture as f
import tsharness as h


class Curl(f.ImapTest):
    def setUp(self):
        super().setUp()
        c = self.client()
        self.msg = f.message("for curl", "fetched by curl")
        self.append(c, msg=self.msg)
        c.create("Projects")

    def curl(self, url, *args):
        r = subprocess.run(
            ["curl", "--silent", "--show-error", "--max-time", "20",
             "--cacert", self.ca.cert, "--user", f"alice:{f.PASSWORD}",
             url] + list(args),
            capture_output=True, timeout=60, stdin=subprocess.DEVNULL)
        self.assertEqual(r.returncode, 0, r.stderr)
        return r.stdout

    def check(self, base, *args):
        listing = self.curl(base + "/", *args)
        self.assertIn(b'"INBOX"', listing)
        self.assertIn(b'"Projects"', listing)
        found = self.curl(base + "/INBOX", *args, "-X", "SEARCH UNSEEN")
        self.assertIn(b"* SEARCH 1", found)
        body = self.curl(base + "/INBOX/;UID=1", *args)
        self.assertEqual(body, self.msg)
        part = self.curl(base + "/INBOX/;UID=1/;SECTION=HEADER.FIELDS%20"
                         "(SUBJECT)", *args)
        self.assertEqual(part, b"Subject: for curl\r\n\r\n")

    def test_starttls(self):
        # the certificate names mail.example.org; resolve it to us
        self.check(f"imap://mail.example.org:{self.port}", "--ssl-reqd",
                   "--resolve", f"mail.example.org:{self.port}:127.0.0.1")

    def test_implicit_tls(self):
        self.check(f"imaps://mail.example.org:{self.tls_port}",
                   "--resolve", f"mail.example.org:{self.tls_port}:127.0.0.1")


if __name__ == "__main__":
    h.main()
