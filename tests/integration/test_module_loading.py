"""Modules on and off in conf.d; refused modules stop tessera before it
listens."""
import os
import socket

import tsharness as h

HELLO_DIR = os.path.join(h.BUILDDIR, "examples", "hello", ".libs")
ABI_MAJOR, ABI_MINOR = h.abi_version()


class ModuleLoading(h.TempDirTest):
    def cfg_with_listener(self, extra=""):
        cfg = self.config(module_dirs=[h.TEST_MODULES, HELLO_DIR])
        self.port = h.free_port()
        cfg.write("conf.d/20-hello.ini",
                  "[module hello]\nenabled = yes\n\n"
                  f"[listener hello]\nport = {self.port}\nprotocol = hello\n")
        if extra:
            cfg.write("conf.d/30-extra.ini", extra)
        return cfg

    def assert_refused(self, extra, *needles):
        cfg = self.cfg_with_listener(extra)
        srv = h.Server(cfg, expect_start=False)
        with srv:
            rc = srv.wait_exit()
        self.assertNotEqual(rc, 0)
        log = srv.log()
        for needle in needles:
            self.assertIn(needle, log)
        self.assertNotIn("listening", log)
        with self.assertRaises(ConnectionRefusedError):
            socket.create_connection(("127.0.0.1", self.port), timeout=2)
        # config check tells the same story, with exit 1.
        r = h.run_cli(["config", "check"], config=cfg)
        self.assertEqual(r.returncode, 1)
        for needle in needles:
            self.assertIn(needle, r.stderr)

    def test_enable_disable_changes_list_and_hooks(self):
        hooks = ("[hooktest gate]\npoint = conn_open\naction = reject\n"
                 "text = gate closed\n")
        for enabled in ("yes", "no"):
            cfg = self.cfg_with_listener(
                f"[module hooktest]\nenabled = {enabled}\n\n" + hooks)
            r = h.run_cli(["module", "list", "--hooks"], config=cfg)
            self.assertEqual(r.returncode, 0, r.stderr)
            self.assertIn(f"hooktest 1.0 enabled={enabled}", r.stdout)
            conn_open = [l for l in r.stdout.splitlines()
                         if l.strip().startswith("conn_open:")][0]
            self.assertIn("hello(0)", conn_open)
            self.assertEqual("hooktest(" in conn_open, enabled == "yes")
            with h.Server(cfg) as srv:
                c = srv.connect(self.port)
                greeting = c.readline()
                if enabled == "yes":
                    self.assertTrue(greeting.startswith("550 "), greeting)
                    self.assertIn("gate closed", greeting)
                else:
                    self.assertTrue(greeting.startswith("220"), greeting)
                c.close()

    def test_module_list_shows_registrations(self):
        cfg = self.cfg_with_listener()
        r = h.run_cli(["module", "list"], config=cfg)
        self.assertEqual(r.returncode, 0, r.stderr)
        self.assertIn("hello 1.0 enabled=yes file=" + HELLO_DIR, r.stdout)
        self.assertIn("hooks: conn_open", r.stdout)
        self.assertIn("services: protocol/hello", r.stdout)
        self.assertIn("commands: hello", r.stdout)

    def test_requirement_order(self):
        cfg = self.cfg_with_listener(
            "[module good_b]\nenabled = yes\n[module good_a]\nenabled = yes\n")
        r = h.run_cli(["module", "list"], config=cfg)
        self.assertEqual(r.returncode, 0, r.stderr)
        names = [l.split()[0] for l in r.stdout.splitlines()
                 if not l.startswith(" ")]
        self.assertLess(names.index("good_a"), names.index("good_b"))
        self.assertIn("requires: good_a", r.stdout)

    def test_refuses_other_abi_major(self):
        self.assert_refused("[module abi_major]\nenabled = yes\n",
                            "module abi_major (",
                            "built for ABI %d.%d, kernel provides %d.%d"
                            % (ABI_MAJOR + 1, ABI_MINOR, ABI_MAJOR,
                               ABI_MINOR))

    def test_refuses_newer_abi_minor(self):
        self.assert_refused("[module abi_minor]\nenabled = yes\n",
                            "module abi_minor (",
                            "built for ABI %d.%d, kernel provides %d.%d"
                            % (ABI_MAJOR, ABI_MINOR + 1, ABI_MAJOR,
                               ABI_MINOR))

    def test_refuses_other_build_signature(self):
        self.assert_refused("[module bad_sig]\nenabled = yes\n",
                            "module bad_sig (", "build signature")

    def test_refuses_unresolved_symbol(self):
        self.assert_refused("[module undef_sym]\nenabled = yes\n",
                            "module undef_sym (", "cannot load",
                            "ts_does_not_exist")

    def test_refuses_missing_descriptor(self):
        self.assert_refused("[module no_desc]\nenabled = yes\n",
                            "no tessera_module descriptor")

    def test_refuses_missing_requirement(self):
        self.assert_refused("[module needs_missing]\nenabled = yes\n",
                            "module needs_missing: requires 'nosuchmod', "
                            "which is not configured")

    def test_refuses_disabled_requirement(self):
        self.assert_refused("[module good_b]\nenabled = yes\n"
                            "[module good_a]\nenabled = no\n",
                            "module good_b: requires 'good_a', which is "
                            "disabled")

    def test_refuses_requirement_cycle(self):
        self.assert_refused("[module cyc_a]\nenabled = yes\n"
                            "[module cyc_b]\nenabled = yes\n",
                            "requirement cycle cyc_a -> cyc_b -> cyc_a")


if __name__ == "__main__":
    h.main()
