"""`tessera config check`: file:line for every kind of mistake, exit 1."""
import os

import tsharness as h


class ConfigCheck(h.TempDirTest):
    def check(self, cfg):
        return h.run_cli(["config", "check"], config=cfg)

    def test_good_config_exits_0(self):
        cfg = self.config()
        cfg.write("conf.d/10-hooktest.ini",
                  "[module hooktest]\nenabled = yes\n")
        r = self.check(cfg)
        self.assertEqual(r.returncode, 0, r.stderr)
        self.assertIn("configuration ok, 1 module enabled", r.stdout)
        self.assertEqual(r.stderr, "")

    def test_syntax_error(self):
        cfg = self.config()
        path = cfg.write("conf.d/20-bad.ini",
                         "[module hooktest]\nenabled = yes\nthis is not ini\n")
        r = self.check(cfg)
        self.assertEqual(r.returncode, 1)
        self.assertIn(f"{path}:3: syntax error", r.stderr)

    def test_bad_section_header(self):
        cfg = self.config()
        path = cfg.write("conf.d/20-bad.ini", "[module hooktest\n")
        r = self.check(cfg)
        self.assertEqual(r.returncode, 1)
        self.assertIn(f"{path}:1:", r.stderr)

    def test_unknown_key(self):
        cfg = self.config()
        path = cfg.write("conf.d/10-hooktest.ini",
                         "[module hooktest]\nenabled = yes\ncolour = red\n")
        r = self.check(cfg)
        self.assertEqual(r.returncode, 1)
        self.assertIn(f"{path}:3: unknown key 'colour' in [module hooktest]",
                      r.stderr)

    def test_unknown_core_key(self):
        cfg = self.config(core={"colour": "red"})
        r = self.check(cfg)
        self.assertEqual(r.returncode, 1)
        self.assertRegex(r.stderr,
                         r"tessera\.ini:\d+: unknown key 'colour' in \[core\]")

    def test_bad_value_type(self):
        cfg = self.config(core={"hook_timeout": "soon"})
        r = self.check(cfg)
        self.assertEqual(r.returncode, 1)
        self.assertRegex(r.stderr, r"tessera\.ini:\d+: key 'hook_timeout': "
                                   r"'soon' is not a duration")

    def test_bad_bool_and_enum(self):
        cfg = self.config(core={"log_level": "loud"})
        path = cfg.write("conf.d/10-x.ini",
                         "[module hooktest]\nenabled = maybe\n")
        r = self.check(cfg)
        self.assertEqual(r.returncode, 1)
        self.assertIn("'loud' is not one of error|warn|info", r.stderr)
        self.assertIn(f"{path}:2: key 'enabled': 'maybe'", r.stderr)

    def test_unknown_module(self):
        cfg = self.config()
        path = cfg.write("conf.d/30-nosuch.ini",
                         "[module nosuch]\nenabled = yes\n")
        r = self.check(cfg)
        self.assertEqual(r.returncode, 1)
        self.assertIn(f"{path}:1: unknown module 'nosuch'", r.stderr)
        self.assertIn("no nosuch.so in", r.stderr)

    def test_disabled_unknown_module_is_fine(self):
        cfg = self.config()
        cfg.write("conf.d/30-nosuch.ini",
                  "[module nosuch]\nenabled = no\nwhatever = 1\n")
        r = self.check(cfg)
        self.assertEqual(r.returncode, 0, r.stderr)

    def test_unknown_section(self):
        cfg = self.config()
        path = cfg.write("conf.d/40-x.ini", "\n[frobber one]\nx = 1\n")
        r = self.check(cfg)
        self.assertEqual(r.returncode, 1)
        self.assertIn(f"{path}:2: unknown section [frobber]", r.stderr)

    def test_listener_needs_known_protocol(self):
        cfg = self.config()
        path = cfg.write("conf.d/50-l.ini",
                         "[listener x]\nport = 2500\nprotocol = nosuch\n")
        r = self.check(cfg)
        self.assertEqual(r.returncode, 1)
        self.assertIn(f"{path}:3: listener x: no enabled module serves "
                      f"protocol 'nosuch'", r.stderr)

    def test_listener_port_range(self):
        cfg = self.config()
        path = cfg.write("conf.d/50-l.ini",
                         "[listener x]\nport = 70000\nprotocol = p\n")
        r = self.check(cfg)
        self.assertEqual(r.returncode, 1)
        self.assertIn(f"{path}:2: key 'port': 70000 is out of range "
                      f"1..65535", r.stderr)

    def test_all_errors_reported_together(self):
        cfg = self.config(core={"colour": "red", "shutdown_grace": "x"})
        r = self.check(cfg)
        self.assertEqual(r.returncode, 1)
        self.assertEqual(len(r.stderr.strip().splitlines()), 2, r.stderr)

    def test_local_d_overrides_conf_d_key_by_key(self):
        cfg = self.config()
        cfg.write("conf.d/10-hooktest.ini",
                  "[module hooktest]\nenabled = no\n")
        cfg.write("local.d/10-hooktest.ini",
                  "[module hooktest]\nenabled = yes\n")
        r = h.run_cli(["module", "list"], config=cfg)
        self.assertEqual(r.returncode, 0, r.stderr)
        self.assertIn("hooktest", r.stdout)
        self.assertIn("enabled=yes", r.stdout)

    def test_error_in_local_d_names_local_file(self):
        cfg = self.config()
        cfg.write("conf.d/10-hooktest.ini",
                  "[module hooktest]\nenabled = yes\n")
        path = cfg.write("local.d/10-hooktest.ini",
                         "[module hooktest]\nenabled = perhaps\n")
        r = self.check(cfg)
        self.assertEqual(r.returncode, 1)
        self.assertIn(f"{path}:2:", r.stderr)

    def test_missing_main_file(self):
        missing = os.path.join(self.tmp, "nope.ini")
        r = h.run_cli(["config", "check", "-c", missing])
        self.assertEqual(r.returncode, 1)
        self.assertIn(f"{missing}: cannot read", r.stderr)


if __name__ == "__main__":
    h.main()
