"""A third-party module builds out of tree with pkg-config alone, against
headers installed by `make install DESTDIR=…`, and loads."""
import glob
import os
import shutil
import subprocess

import tsharness as h


class ExampleModule(h.TempDirTest):
    def setUp(self):
        super().setUp()
        self.root = os.path.join(self.tmp, "root")
        r = subprocess.run(["make", "-s", "-C", h.BUILDDIR, "install",
                            f"DESTDIR={self.root}"],
                           capture_output=True, text=True, timeout=300)
        self.assertEqual(r.returncode, 0, r.stdout + r.stderr)
        pcs = glob.glob(os.path.join(self.root, "**", "tessera-plugin.pc"),
                        recursive=True)
        self.assertEqual(len(pcs), 1, pcs)
        self.env = dict(os.environ,
                        PKG_CONFIG_PATH=os.path.dirname(pcs[0]),
                        PKG_CONFIG_SYSROOT_DIR=self.root)
        bins = glob.glob(os.path.join(self.root, "**", "bin", "tessera"),
                         recursive=True)
        self.assertEqual(len(bins), 1, bins)
        self.tessera = bins[0]

    def build_module(self):
        src = os.path.join(self.tmp, "src")
        os.makedirs(src)
        shutil.copy(os.path.join(h.SRCDIR, "examples", "hello", "hello.c"),
                    src)
        flags = subprocess.run(
            ["pkg-config", "--cflags", "--libs", "tessera-plugin"],
            env=self.env, capture_output=True, text=True, check=True
        ).stdout.split()
        self.assertIn(f"-I{self.root}", " ".join(flags))
        mods = os.path.join(self.tmp, "mods")
        os.makedirs(mods)
        r = subprocess.run(["cc", "-Wall", "-Wextra", "-Werror",
                            "hello.c", "-o", os.path.join(mods, "hello.so")]
                           + flags, cwd=src, capture_output=True, text=True)
        self.assertEqual(r.returncode, 0, r.stderr)
        return mods

    def test_install_layout(self):
        for pattern in ("**/include/tessera/tessera.h",
                        "**/include/tessera/hook.h",
                        "**/etc/tessera/tessera.ini",
                        "**/man8/tessera.8", "**/man5/tessera.ini.5",
                        "**/lib/tessera/modules/", "**/etc/tessera/conf.d/"):
            self.assertTrue(glob.glob(os.path.join(self.root, pattern),
                                      recursive=True), pattern)

    def test_out_of_tree_module_loads_and_runs(self):
        mods = self.build_module()
        cfg = self.config(module_dirs=[mods])
        port = h.free_port()
        cfg.write("conf.d/50-hello.ini",
                  "[module hello]\nenabled = yes\ngreeting = howdy\n"
                  "deny = 127.0.0.1\n\n"
                  f"[listener hello]\nport = {port}\nprotocol = hello\n")
        r = subprocess.run([self.tessera, "module", "list", "-c", cfg.path],
                           capture_output=True, text=True)
        self.assertEqual(r.returncode, 0, r.stderr)
        self.assertIn(f"hello 1.0 enabled=yes file={mods}/hello.so",
                      r.stdout)
        r = subprocess.run([self.tessera, "hello", "Ada", "-c", cfg.path],
                           capture_output=True, text=True)
        self.assertEqual(r.returncode, 0, r.stderr)
        self.assertEqual(r.stdout, "howdy, Ada!\n")

        h.TESSERA, saved = self.tessera, h.TESSERA
        try:
            with h.Server(cfg) as srv:
                c = srv.connect(port)
                line = c.readline()
                self.assertTrue(line.startswith("554 "), line)
                self.assertIn("hello does not talk to 127.0.0.1", line)
                self.assertTrue(c.closed())
                srv.wait_log("hello saw a connection remote=127.0.0.1")
        finally:
            h.TESSERA = saved


if __name__ == "__main__":
    h.main()
