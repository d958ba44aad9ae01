"""serve: SIGHUP reload (a broken config is refused, the old one kept),
SIGTERM graceful stop, the control socket, and privilege drop."""
import os
import pwd
import signal
import socket
import time
import unittest

import tsharness as h

HELLO_DIR = os.path.join(h.BUILDDIR, "examples", "hello", ".libs")


class ServeLifecycle(h.TempDirTest):
    def hello_config(self, greeting="first greeting", core=None):
        cfg = self.config(module_dirs=[h.TEST_MODULES, HELLO_DIR],
                          core=core)
        self.port = h.free_port()
        cfg.write("conf.d/20-hello.ini",
                  f"[module hello]\nenabled = yes\ngreeting = {greeting}\n\n"
                  f"[listener hello]\nport = {self.port}\nprotocol = hello\n")
        return cfg

    def greeting(self, srv):
        c = srv.connect(self.port)
        line = c.readline()
        c.send("QUIT")
        c.readline()
        c.close()
        return line

    def test_sighup_broken_config_keeps_running_config(self):
        cfg = self.hello_config()
        with h.Server(cfg) as srv:
            self.assertEqual(self.greeting(srv), "220 first greeting")
            bad = cfg.write("local.d/20-hello.ini",
                            "[module hello]\ngreeting = second\ncolour = x\n")
            srv.signal(signal.SIGHUP)
            log = srv.wait_log("reload refused, keeping")
            self.assertIn(f"{bad}:3: unknown key 'colour'", log)
            self.assertEqual(self.greeting(srv), "220 first greeting")

            cfg.write("local.d/20-hello.ini",
                      "[module hello]\ngreeting = second greeting\n")
            srv.signal(signal.SIGHUP)
            srv.wait_log("configuration reloaded")
            self.assertEqual(self.greeting(srv), "220 second greeting")
        self.assertEqual(srv.returncode, 0)

    def test_sighup_module_change_needs_restart(self):
        cfg = self.hello_config()
        with h.Server(cfg) as srv:
            cfg.write("conf.d/30-hooktest.ini",
                      "[module hooktest]\nenabled = yes\n")
            srv.signal(signal.SIGHUP)
            log = srv.wait_log("reload refused, keeping")
            self.assertIn("changing which modules are loaded needs a "
                          "restart", log)
            self.assertEqual(self.greeting(srv), "220 first greeting")

    def test_sigterm_closes_each_session(self):
        cfg = self.hello_config(core={"shutdown_grace": "10s"})
        with h.Server(cfg) as srv:
            clients = [srv.connect(self.port) for _ in range(3)]
            for c in clients:
                self.assertTrue(c.readline().startswith("220"))
            start = time.monotonic()
            srv.signal(signal.SIGTERM)
            for c in clients:
                self.assertEqual(c.readline(), "421 shutting down")
                self.assertTrue(c.closed())
            rc = srv.wait_exit()
            elapsed = time.monotonic() - start
        self.assertEqual(rc, 0)
        self.assertLess(elapsed, 10)
        log = srv.log()
        self.assertEqual(log.count('session closed listener=hello '
                                   'reason="shutdown"'), 3, log)
        self.assertIn("tessera stopped", log)

    def test_sigterm_grace_closes_lingering_sessions(self):
        cfg = self.config(core={"shutdown_grace": "1s"})
        port = h.free_port()
        cfg.write("conf.d/10-hooktest.ini",
                  "[module hooktest]\nenabled = yes\nlinger = yes\n\n"
                  f"[listener probe]\nport = {port}\nprotocol = hookprobe\n")
        with h.Server(cfg) as srv:
            clients = [srv.connect(port) for _ in range(2)]
            for c in clients:
                self.assertEqual(c.readline(), "200 hookprobe ready")
            start = time.monotonic()
            srv.signal(signal.SIGTERM)
            for c in clients:
                self.assertEqual(c.readline(), "421 shutting down")
            srv.wait_log("shutdown grace expired, closing sessions count=2")
            for c in clients:
                self.assertTrue(c.closed())
            self.assertEqual(srv.wait_exit(), 0)
            elapsed = time.monotonic() - start
        self.assertGreaterEqual(elapsed, 0.9)
        self.assertLess(elapsed, 5)
        self.assertEqual(srv.log().count(
            'reason="shutdown grace expired"'), 2, srv.log())

    def test_control_socket(self):
        cfg = self.hello_config()
        with h.Server(cfg) as srv:
            r = h.run_cli(["status"], config=cfg)
            self.assertEqual(r.returncode, 0, r.stderr)
            self.assertRegex(r.stdout, r"^ok running pid=%d sessions=0 "
                             r"listeners=1 modules=hello" % srv.proc.pid)
            r = h.run_cli(["reload"], config=cfg)
            self.assertEqual(r.returncode, 0, r.stderr)
            self.assertIn("ok reloaded", r.stdout)
            bad = cfg.write("local.d/1.ini", "[core]\nlog_level = loud\n")
            r = h.run_cli(["reload"], config=cfg)
            self.assertEqual(r.returncode, 1)
            self.assertIn("error reload refused", r.stdout)
            self.assertIn(f"{bad}:2: key 'log_level'", r.stdout)
            os.unlink(bad)
            r = h.run_cli(["stop"], config=cfg)
            self.assertEqual(r.returncode, 0, r.stderr)
            self.assertEqual(srv.wait_exit(), 0)
        r = h.run_cli(["status"], config=cfg)
        self.assertEqual(r.returncode, 1)
        self.assertIn("is tessera serve running?", r.stderr)

    def test_bad_line_on_control_socket(self):
        cfg = self.hello_config()
        with h.Server(cfg):
            s = socket.socket(socket.AF_UNIX)
            s.connect(os.path.join(cfg.data_dir, "control"))
            s.sendall(b"launch missiles\n")
            self.assertIn(b"error unknown command", s.recv(1000))
            s.close()

    @unittest.skipUnless(os.geteuid() == 0, "needs root")
    def test_refuses_root_without_user(self):
        cfg = self.hello_config(core={"allow_root": "no"})
        srv = h.Server(cfg, expect_start=False)
        with srv:
            self.assertEqual(srv.wait_exit(), 1)
        self.assertIn("refusing to run as root", srv.log())
        # --allow-root on the command line overrides.
        with h.Server(cfg, args=["--allow-root"]) as srv:
            self.assertIn("running as root because allow_root",
                          srv.log())

    @unittest.skipUnless(os.geteuid() == 0, "needs root")
    def test_drops_privileges_after_binding(self):
        nobody = pwd.getpwnam("nobody")
        cfg = self.hello_config(core={"allow_root": "no", "user": "nobody"})
        # A privileged port proves the bind happened before the drop.
        low = None
        for port in range(900, 1000):
            with socket.socket() as s:
                try:
                    s.bind(("127.0.0.1", port))
                    low = port
                    break
                except OSError:
                    continue
        cfg.write("conf.d/21-low.ini",
                  f"[listener low]\nport = {low}\nprotocol = hello\n")
        with h.Server(cfg) as srv:
            with open(f"/proc/{srv.proc.pid}/status") as f:
                status = f.read()
            uids = [l for l in status.splitlines() if l.startswith("Uid:")]
            self.assertEqual(uids[0].split()[1:],
                             [str(nobody.pw_uid)] * 4, status)
            self.assertEqual(os.stat(cfg.data_dir).st_uid, nobody.pw_uid)
            self.assertIn("dropped privileges user=nobody", srv.log())
            c = srv.connect(low)
            self.assertTrue(c.readline().startswith("220"))
            c.close()

    def test_unknown_user_is_an_error(self):
        if os.geteuid() != 0:
            self.skipTest("needs root")
        cfg = self.hello_config(core={"user": "no-such-user-here"})
        srv = h.Server(cfg, expect_start=False)
        with srv:
            self.assertEqual(srv.wait_exit(), 1)
        self.assertIn("no such user 'no-such-user-here'", srv.log())


if __name__ == "__main__":
    h.main()
