"""imapfixture — a tessera with the imap (and smtp) module for the IMAP
integration tests: a test CA, an `imap` listener (STARTTLS) and an
`imaps` listener (implicit TLS), accounts alice and bob with passwords,
helpers for imaplib clients and for raw line-level sessions."""
import imaplib
import os
import socket
import ssl
import subprocess

import tlsfixture
import tsharness as h

IMAP_DIR = os.path.join(h.BUILDDIR, "modules", "imap", ".libs")
SMTP_DIR = os.path.join(h.BUILDDIR, "modules", "smtp", ".libs")

DOMAINS = """\
[domain example.org]

[account alice]
addresses = alice@example.org

[account bob]
addresses = bob@example.org
"""

PASSWORD = "correct horse"

# Every socket operation of a test has a deadline: tests fail, never hang.
TIMEOUT = 20


def message(subject="hello", body="hello there", sender="bob@example.org",
            extra=""):
    """A small RFC 5322 message as bytes (CRLF line ends)."""
    text = (f"From: {sender}\r\nTo: alice@example.org\r\n"
            f"Subject: {subject}\r\nDate: Tue, 1 Jul 2003 10:52:37 +0200\r\n"
            f"Message-ID: <{subject.replace(' ', '.')}@example.org>\r\n"
            f"{extra}\r\n{body}\r\n")
    return text.encode()


class ImapTest(h.TempDirTest):
    """Starts one server per test with the imap module loaded."""

    IMAP_EXTRA = ""  # more keys for [module imap]
    EXTRA_FILES = {}  # more files for the config dir: name -> text

    def setUp(self):
        super().setUp()
        self.ca = tlsfixture.TestCA(os.path.join(self.tmp, "ca"))
        self.cert, self.key = self.ca.issue("mail.example.org")
        # free_port() races with parallel tests: on "address already in
        # use" try again with fresh ports.
        for attempt in range(3):
            self.start_server()
            try:
                self.srv.start()
                break
            except AssertionError:
                if attempt == 2 or "already in use" not in self.srv.log():
                    raise
                self.srv.stop()
        self.addCleanup(self.srv.stop)  # also fails on sanitizer reports

    def start_server(self):
        """Write the configuration with fresh ports; make self.srv."""
        cert, key = self.cert, self.key
        cfg = h.Config(self.tmp,
                       module_dirs=[h.TEST_MODULES, SMTP_DIR, IMAP_DIR],
                       core={"hostname": "mail.example.org"})
        cfg.write("domains.d/10-example.ini", DOMAINS)
        self.port, self.tls_port, self.smtp_port = (
            h.free_port(), h.free_port(), h.free_port())
        tls = f"tls_cert = {cert}\ntls_key = {key}\n"
        cfg.write("conf.d/20-smtp.ini",
                  "[module smtp]\nenabled = yes\n\n"
                  f"[listener mx]\nport = {self.smtp_port}\n"
                  "protocol = smtp\n")
        cfg.write("conf.d/20-imap.ini",
                  "[module imap]\nenabled = yes\n" + self.IMAP_EXTRA +
                  f"\n[listener imap]\nport = {self.port}\nprotocol = imap\n"
                  f"tls = starttls\nmax_line = 64k\n{tls}\n"
                  f"[listener imaps]\nport = {self.tls_port}\n"
                  f"protocol = imaps\ntls = implicit\nmax_line = 64k\n{tls}")
        for name, text in self.EXTRA_FILES.items():
            cfg.write(name, text)
        self.cfg = cfg
        for account in ("alice", "bob"):
            r = subprocess.run([h.TESSERA, "account", "passwd", account,
                                "-c", cfg.path], input=PASSWORD + "\n",
                               capture_output=True, text=True, timeout=60)
            h.check_sanitizers(r.stderr)
            self.assertEqual(r.returncode, 0, r.stderr)
        self.srv = h.Server(cfg)

    def ssl_ctx(self):
        ctx = ssl.create_default_context(cafile=self.ca.cert)
        ctx.check_hostname = False
        return ctx

    def client(self, user="alice", login=True):
        """An imaplib client on the STARTTLS listener, logged in."""
        c = imaplib.IMAP4("127.0.0.1", self.port, timeout=TIMEOUT)
        self.addCleanup(self._shutdown, c)
        c.starttls(ssl_context=self.ssl_ctx())
        if login:
            c.login(user, PASSWORD)
        return c

    def tls_client(self, user="alice"):
        c = imaplib.IMAP4_SSL("127.0.0.1", self.tls_port,
                              ssl_context=self.ssl_ctx(), timeout=TIMEOUT)
        self.addCleanup(self._shutdown, c)
        c.login(user, PASSWORD)
        return c

    @staticmethod
    def _shutdown(c):
        try:
            c.shutdown()
        except Exception:
            pass

    def append(self, c, mailbox="INBOX", msg=None, flags=None):
        """APPEND and return the new UID (from APPENDUID)."""
        typ, data = c.append(mailbox, flags, None, msg or message())
        self.assertEqual(typ, "OK", data)
        text = data[0].decode()
        self.assertIn("APPENDUID", text)
        return int(text.split("APPENDUID ")[1].split()[1].rstrip("]"))

    def claim_recent(self, mailbox="INBOX"):
        """SELECT once in a throwaway session, so that the messages there
        are no longer \\Recent (RFC 3501 2.3.2) for the session under
        test: tests of other features compare FLAGS exactly."""
        c = self.client()
        c.select(mailbox)
        c.close()

    def raw(self, tls=False):
        """A raw line client (plain on the imap port, or implicit TLS);
        reads the greeting."""
        sock = socket.create_connection(("127.0.0.1",
                                         self.tls_port if tls else self.port),
                                        timeout=TIMEOUT)
        if tls:
            sock = self.ssl_ctx().wrap_socket(sock)
        rc = RawClient(sock)
        self.addCleanup(rc.close)
        greeting = rc.readline()
        self.assertTrue(greeting.startswith(b"* OK"), greeting)
        return rc

    def raw_login(self, user="alice"):
        """A raw client on implicit TLS, logged in."""
        rc = self.raw(tls=True)
        rc.send(f'L1 LOGIN {user} "{PASSWORD}"')
        rc.expect_tagged(b"L1", b"OK")
        return rc


class RawClient:
    """Line-level IMAP for malformed input, literals and IDLE."""

    def __init__(self, sock):
        self.sock = sock
        self.buf = b""

    def send(self, line):
        if isinstance(line, str):
            line = line.encode()
        self.sock.sendall(line + b"\r\n")

    def send_raw(self, data):
        self.sock.sendall(data)

    def readline(self):
        while b"\r\n" not in self.buf:
            data = self.sock.recv(65536)
            if not data:
                raise ConnectionError("closed; partial: %r" % self.buf)
            self.buf += data
        line, self.buf = self.buf.split(b"\r\n", 1)
        return line

    def read_bytes(self, n):
        while len(self.buf) < n:
            data = self.sock.recv(65536)
            if not data:
                raise ConnectionError("closed")
            self.buf += data
        out, self.buf = self.buf[:n], self.buf[n:]
        return out

    def expect_tagged(self, tag, status=b"OK"):
        """Read up to the tagged reply; return (untagged lines, tagged)."""
        lines = []
        while True:
            line = self.readline()
            if line.startswith(tag + b" "):
                if not line.startswith(tag + b" " + status):
                    raise AssertionError(f"{line!r} after {lines!r}")
                return lines, line
            lines.append(line)

    def closed(self, timeout=5):
        """Whether the server closed the connection (EOF) in time."""
        self.sock.settimeout(timeout)
        try:
            while True:
                data = self.sock.recv(65536)
                if not data:
                    return True
        except (ConnectionResetError, BrokenPipeError):
            return True
        except socket.timeout:
            return False
        except ssl.SSLError:
            return True

    def close(self):
        try:
            self.sock.close()
        except OSError:
            pass
