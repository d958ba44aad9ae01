"""The tessera command line: help, version, usage errors exit 2."""
import tsharness as h


class CliUsage(h.TempDirTest):
    def test_version_names_abi(self):
        r = h.run_cli(["version"])
        self.assertEqual(r.returncode, 0, r.stderr)
        self.assertRegex(r.stdout, r"^tessera \d+\.\d+\.\d+ \(plugin ABI "
                         r"%d\.%d\b" % h.abi_version())

    def test_help_lists_builtin_commands(self):
        r = h.run_cli(["help"])
        self.assertEqual(r.returncode, 0)
        for cmd in ("serve", "config check", "module list", "version"):
            self.assertIn(cmd, r.stdout)

    def test_per_command_help(self):
        for args in (["serve", "--help"], ["config", "check", "-h"],
                     ["module", "list", "--help"], ["help", "module"]):
            r = h.run_cli(args)
            self.assertEqual(r.returncode, 0, args)
            self.assertIn("usage: tessera", r.stdout)

    def test_no_command_is_usage_error(self):
        r = h.run_cli([])
        self.assertEqual(r.returncode, 2)
        self.assertIn("usage: tessera COMMAND", r.stderr)

    def test_unknown_command_exits_2(self):
        cfg = self.config()
        r = h.run_cli(["frobnicate"], config=cfg)
        self.assertEqual(r.returncode, 2)
        self.assertIn("unknown command 'frobnicate'", r.stderr)
        self.assertIn("usage:", r.stderr)

    def test_unknown_command_without_config_exits_2(self):
        r = h.run_cli(["frobnicate", "-c", self.tmp + "/missing.ini"])
        self.assertEqual(r.returncode, 2)
        self.assertIn("unknown command 'frobnicate'", r.stderr)

    def test_unknown_option_exits_2(self):
        for args in (["config", "check", "--frob"],
                     ["module", "list", "-x"], ["serve", "--hooks"],
                     ["version", "--verbose"]):
            r = h.run_cli(args)
            self.assertEqual(r.returncode, 2, args)
            self.assertIn("usage: tessera", r.stderr)

    def test_missing_subcommand_exits_2(self):
        r = h.run_cli(["config"])
        self.assertEqual(r.returncode, 2)
        r = h.run_cli(["module", "show"])
        self.assertEqual(r.returncode, 2)

    def test_option_without_value(self):
        r = h.run_cli(["config", "check", "-c"])
        self.assertEqual(r.returncode, 2)
        self.assertIn("needs a file", r.stderr)


if __name__ == "__main__":
    h.main()
