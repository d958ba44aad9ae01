"""The build itself: configure names the Debian package it misses."""
import os
import subprocess

import tsharness as h


class Build(h.TempDirTest):
    def test_configure_names_missing_debian_package(self):
        empty = os.path.join(self.tmp, "no-pc-files")
        os.makedirs(empty)
        env = dict(os.environ, PKG_CONFIG_LIBDIR=empty, PKG_CONFIG_PATH="")
        r = subprocess.run([os.path.join(h.SRCDIR, "configure"), "-q"],
                           cwd=self.tmp, env=env, capture_output=True,
                           text=True, timeout=300,
                           stdin=subprocess.DEVNULL)
        self.assertNotEqual(r.returncode, 0)
        last = r.stderr.strip().splitlines()[-1]
        self.assertRegex(last, r"configure: error: libuv >= [\d.]+ not found: "
                               r"install the Debian package libuv1-dev")


if __name__ == "__main__":
    h.main()
