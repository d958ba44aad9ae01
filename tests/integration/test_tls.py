"""TLS on listeners and outbound connections: implicit TLS and STARTTLS
with python's ssl and gnutls-cli, old versions refused, SNI, PKIX
verification of outbound STARTTLS, certificate reload on SIGHUP, many idle
connections."""
import os
import resource
import shutil
import signal
import socket
import ssl
import subprocess
import time

import tlsfixture
import tsharness as h

HELLO_DIR = os.path.join(h.BUILDDIR, "examples", "hello", ".libs")


class Tls(h.TempDirTest):
    def setUp(self):
        super().setUp()
        self.ca = tlsfixture.TestCA(os.path.join(self.tmp, "ca"))
        self.mx = self.ca.issue("mx.example.test")
        self.other = self.ca.issue("other.example.test")

    def start(self, extra="", core=None):
        cfg = self.config(module_dirs=[h.TEST_MODULES, HELLO_DIR],
                          core=core)
        self.plain = h.free_port()
        self.tlsport = h.free_port()
        certs = f"{self.mx[0]} {self.other[0]}"
        keys = f"{self.mx[1]} {self.other[1]}"
        cfg.write("conf.d/20-hello.ini",
                  "[module hello]\nenabled = yes\n\n"
                  f"[listener plain]\naddress = 127.0.0.1 ::1\n"
                  f"port = {self.plain}\nprotocol = hello\n"
                  f"tls = starttls\ntls_cert = {certs}\ntls_key = {keys}\n\n"
                  f"[listener secure]\nport = {self.tlsport}\n"
                  f"protocol = hello\ntls = implicit\n"
                  f"tls_cert = {certs}\ntls_key = {keys}\n" + extra)
        self.cfg = cfg
        self.srv = h.Server(cfg)
        self.srv.start()
        self.addCleanup(self.srv.stop)

    def client_ctx(self, **kw):
        ctx = ssl.create_default_context(cafile=self.ca.cert)
        for k, v in kw.items():
            setattr(ctx, k, v)
        return ctx

    def tls_client(self, port, name="mx.example.test", ctx=None):
        raw = socket.create_connection(("127.0.0.1", port), timeout=10)
        s = (ctx or self.client_ctx()).wrap_socket(raw,
                                                   server_hostname=name)
        return h.LineClient(s), s

    def test_implicit_tls_with_python_ssl(self):
        self.start()
        c, s = self.tls_client(self.tlsport)
        self.assertEqual(c.readline(), "220 hello from tessera")
        c.send("TLSINFO")
        info = c.readline()
        self.assertIn("version=TLS1.3", info)
        self.assertIn("sni=mx.example.test", info)
        c.send("HELLO tls")
        self.assertEqual(c.readline(), "250 hello tls")
        self.assertEqual(s.version(), "TLSv1.3")
        c.close()

    def test_sni_picks_certificate(self):
        self.start()
        for name in ("mx.example.test", "other.example.test"):
            c, s = self.tls_client(self.tlsport, name=name)
            subject = dict(x[0] for x in s.getpeercert()["subject"])
            self.assertEqual(subject["commonName"], name)
            c.close()

    def test_starttls_upgrade(self):
        self.start()
        raw = socket.create_connection(("127.0.0.1", self.plain), timeout=10)
        c = h.LineClient(raw)
        self.assertTrue(c.readline().startswith("220"))
        c.send("TLSINFO")
        self.assertEqual(c.readline(), "250 plaintext")
        c.send("STARTTLS")
        self.assertEqual(c.readline(), "220 ready to start TLS")
        s = self.client_ctx().wrap_socket(raw,
                                          server_hostname="mx.example.test")
        c = h.LineClient(s)
        c.send("TLSINFO")
        self.assertIn("version=TLS1.3", c.readline())
        c.send("STARTTLS")
        self.assertEqual(c.readline(), "454 TLS not available")
        c.close()

    def test_starttls_discards_injected_plaintext(self):
        self.start()
        raw = socket.create_connection(("127.0.0.1", self.plain), timeout=10)
        c = h.LineClient(raw)
        c.readline()
        # The classic injection: a command glued after STARTTLS.
        raw.sendall(b"STARTTLS\r\nHELLO injected\r\n")
        self.assertEqual(c.readline(), "220 ready to start TLS")
        s = self.client_ctx().wrap_socket(raw,
                                          server_hostname="mx.example.test")
        c = h.LineClient(s)
        c.send("HELLO clean")
        self.assertEqual(c.readline(), "250 hello clean")
        self.srv.wait_log("tls discarded plaintext bytes=16")

    def test_starttls_on_ipv6(self):
        self.start()
        raw = socket.create_connection(("::1", self.plain), timeout=10)
        c = h.LineClient(raw)
        c.readline()
        c.send("STARTTLS")
        c.readline()
        s = self.client_ctx().wrap_socket(raw,
                                          server_hostname="mx.example.test")
        c = h.LineClient(s)
        c.send("HELLO six")
        self.assertEqual(c.readline(), "250 hello six")

    def gnutls_cli(self, port, priority=None, starttls=False):
        args = ["gnutls-cli", "--x509cafile", self.ca.cert, "-p",
                str(port), "--sni-hostname", "mx.example.test",
                "--verify-hostname", "mx.example.test"]
        if priority:
            args += ["--priority", priority]
        if starttls:
            args += ["--starttls-proto", "smtp"]
        args.append("127.0.0.1")
        return subprocess.run(args, input="HELLO gnutls\r\n",
                              capture_output=True, text=True, timeout=30)

    def test_gnutls_cli_implicit(self):
        self.start()
        r = self.gnutls_cli(self.tlsport)
        self.assertIn("Handshake was completed", r.stdout + r.stderr)
        self.assertIn("250 hello gnutls", r.stdout)

    def test_tls_1_0_and_1_1_refused(self):
        self.start()
        for version in ("TLS1.0", "TLS1.1"):
            r = self.gnutls_cli(
                self.tlsport, priority=f"NORMAL:-VERS-ALL:+VERS-{version}")
            out = r.stdout + r.stderr
            self.assertNotIn("Handshake was completed", out, version)
            self.assertNotEqual(r.returncode, 0)
        self.srv.wait_log("tls handshake failed", count=2)
        # Python with a TLS 1.1 ceiling fails the same way.
        ctx = self.client_ctx()
        ctx.minimum_version = ssl.TLSVersion.TLSv1
        ctx.maximum_version = ssl.TLSVersion.TLSv1_1
        ctx.set_ciphers("DEFAULT:@SECLEVEL=0")
        with self.assertRaises((ssl.SSLError, ConnectionResetError)):
            self.tls_client(self.tlsport, ctx=ctx)

    def test_tls_1_2_still_works(self):
        self.start()
        ctx = self.client_ctx()
        ctx.maximum_version = ssl.TLSVersion.TLSv1_2
        c, s = self.tls_client(self.tlsport, ctx=ctx)
        self.assertEqual(s.version(), "TLSv1.2")
        c.readline()
        c.send("TLSINFO")
        self.assertIn("version=TLS1.2", c.readline())

    def test_garbage_instead_of_handshake(self):
        self.start()
        c = self.srv.connect(self.tlsport)
        c.sock.sendall(b"EHLO not tls\r\n" * 10)
        self.assertTrue(c.closed())
        self.srv.wait_log("tls handshake failed")

    def test_self_signed_when_no_certificate(self):
        cfg = self.config(module_dirs=[HELLO_DIR],
                          core={"hostname": "self.example.test"})
        port = h.free_port()
        cfg.write("conf.d/20-hello.ini",
                  "[module hello]\nenabled = yes\n"
                  f"[listener s]\nport = {port}\nprotocol = hello\n"
                  "tls = implicit\n")
        with h.Server(cfg):
            ctx = ssl.create_default_context()
            ctx.check_hostname = False
            ctx.verify_mode = ssl.CERT_NONE
            s = ctx.wrap_socket(socket.create_connection(
                ("127.0.0.1", port)), server_hostname="self.example.test")
            der = s.getpeercert(binary_form=True)
            self.assertIn(b"self.example.test", der)
            self.assertTrue(h.LineClient(s).readline().startswith("220"))
            s.close()

    def test_bad_certificate_file_is_config_error(self):
        cfg = self.config(module_dirs=[HELLO_DIR])
        path = cfg.write("conf.d/20-hello.ini",
                         "[module hello]\nenabled = yes\n"
                         "[listener s]\nport = 2999\nprotocol = hello\n"
                         "tls = implicit\n"
                         f"tls_cert = {self.tmp}/missing.pem\n"
                         f"tls_key = {self.tmp}/missing.key\n")
        r = h.run_cli(["config", "check"], config=cfg)
        self.assertEqual(r.returncode, 1)
        self.assertIn(f"{path}:7: listener s: cannot load certificate", r.stderr)
        self.assertIn("missing.pem", r.stderr)

    def test_sighup_renews_certificate_keeps_sessions(self):
        self.start()
        old_c, old_s = self.tls_client(self.tlsport)
        old_c.readline()
        serial_before = old_s.getpeercert()["serialNumber"]
        # Renew mx in place (new key, new serial) and reload.
        fresh = self.ca.issue("mx.example.test", tag="mx-renewed")
        shutil.copy(fresh[0], self.mx[0])
        shutil.copy(fresh[1], self.mx[1])
        self.srv.signal(signal.SIGHUP)
        self.srv.wait_log("tls certificates reloaded listener=secure")
        new_c, new_s = self.tls_client(self.tlsport)
        new_c.readline()
        self.assertNotEqual(new_s.getpeercert()["serialNumber"],
                            serial_before)
        # The session from before the reload is still alive.
        old_c.send("HELLO still")
        self.assertEqual(old_c.readline(), "250 hello still")
        old_c.close()
        new_c.close()

    def test_thousand_idle_connections(self):
        soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
        resource.setrlimit(resource.RLIMIT_NOFILE, (min(hard, 4096), hard))
        self.start()
        clients = []
        try:
            for _ in range(1000):
                clients.append(socket.create_connection(
                    ("127.0.0.1", self.plain), timeout=10))
            for s in clients:
                self.assertTrue(s.recv(100).startswith(b"220"))
            r = h.run_cli(["status"], config=self.cfg)
            self.assertIn("sessions=1000 ", r.stdout)
        finally:
            for s in clients:
                s.close()
        self.srv.wait_log('session closed listener=plain', count=1000,
                          timeout=60)


class Outbound(h.TempDirTest):
    """The dialer test module connects out to a hello listener."""

    def setUp(self):
        super().setUp()
        self.ca = tlsfixture.TestCA(os.path.join(self.tmp, "ca"))
        cert, key = self.ca.issue("mx.example.test")
        cfg = self.config(module_dirs=[h.TEST_MODULES, HELLO_DIR])
        self.target = h.free_port()
        self.dport = h.free_port()
        cfg.write("conf.d/20-x.ini",
                  "[module hello]\nenabled = yes\n"
                  "[module dialer]\nenabled = yes\n\n"
                  f"[listener target]\naddress = 127.0.0.1 ::1\n"
                  f"port = {self.target}\nprotocol = hello\n"
                  f"tls = starttls\ntls_cert = {cert}\ntls_key = {key}\n\n"
                  f"[listener dialer]\nport = {self.dport}\n"
                  "protocol = dialer\n")
        self.srv = h.Server(cfg)
        self.srv.start()
        self.addCleanup(self.srv.stop)
        self.c = self.srv.connect(self.dport)
        self.addCleanup(self.c.close)
        self.assertEqual(self.c.readline(), "200 dialer ready")

    def dial(self, verify, name, ips, ca=None, port=None):
        ca = ca or self.ca.cert
        self.c.send(f"DIAL {verify} {name} {ca} {port or self.target} "
                    f"{','.join(ips)}")
        return self.c.readline()

    def test_pkix_over_ipv4_and_ipv6(self):
        for ip in ("127.0.0.1", "::1"):
            r = self.dial("pkix", "mx.example.test", [ip])
            self.assertTrue(r.startswith(f"OK ip={ip} 250 version=TLS1.3"),
                            r)

    def test_fallback_to_next_address(self):
        dead = h.free_port()
        r = self.dial("pkix", "mx.example.test", ["::1", "127.0.0.1"],
                      port=self.target)
        self.assertTrue(r.startswith("OK ip=::1"), r)
        # First address refuses: the second is used.
        r = self.dial("none", "-", ["127.0.0.1", "127.0.0.1"], port=dead)
        self.assertTrue(r.startswith("FAIL connect: [127.0.0.1]:"), r)
        self.assertIn("connection refused", r)

    def test_hostname_mismatch_is_a_clear_error(self):
        r = self.dial("pkix", "wrong.example.test", ["127.0.0.1"])
        self.assertEqual(r, "FAIL tls: handshake failed: certificate "
                            "hostname mismatch: expected wrong.example.test")

    def test_unknown_ca_fails(self):
        other = tlsfixture.TestCA(os.path.join(self.tmp, "other-ca"))
        r = self.dial("pkix", "mx.example.test", ["127.0.0.1"],
                      ca=other.cert)
        self.assertTrue(r.startswith("FAIL tls: handshake failed: "), r)
        self.assertIn("unknown authority", r)

    def test_opportunistic_accepts_anything(self):
        r = self.dial("none", "wrong.example.test", ["127.0.0.1"])
        self.assertTrue(r.startswith("OK ip=127.0.0.1 250 version="), r)


if __name__ == "__main__":
    h.main()
