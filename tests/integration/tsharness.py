"""tsharness — start a real tessera in a temp dir and talk to it.

Every integration test builds a config with `Config`, starts a `Server`
(which always stops, even when the test fails), and talks to it on
127.0.0.1 with real clients.  `main()` runs the test module's unittest
cases and reports them as TAP, one line per test, for automake's driver.

Environment (set by `make check`): TESSERA_BIN, TS_BUILDDIR, TS_SRCDIR.
"""
import os
import re
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import time
import traceback
import unittest

TESSERA = os.environ.get("TESSERA_BIN", "tessera")
BUILDDIR = os.environ.get("TS_BUILDDIR", ".")
SRCDIR = os.environ.get("TS_SRCDIR", ".")
TEST_MODULES = os.path.join(BUILDDIR, "tests", "modules", ".libs")

# Sanitizer reports that must fail a test even if the server "worked".
SANITIZER_RE = re.compile(r"ERROR: (AddressSanitizer|LeakSanitizer)|"
                          r"runtime error:")


def free_port():
    """A TCP port on 127.0.0.1 that was free a moment ago."""
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


class Config:
    """An ini tree in a temp dir: main file plus conf.d/ and local.d/."""

    def __init__(self, tmpdir, core=None, module_dirs=None):
        self.dir = tmpdir
        self.data_dir = os.path.join(tmpdir, "var", "data")
        self.path = os.path.join(tmpdir, "tessera.ini")
        os.makedirs(os.path.join(tmpdir, "conf.d"), exist_ok=True)
        dirs = module_dirs if module_dirs is not None else [TEST_MODULES]
        lines = ["[core]",
                 f"data_dir = {self.data_dir}",
                 f"module_dir = {' '.join(dirs)}",
                 "allow_root = yes",
                 "log_level = debug",
                 "shutdown_grace = 3s"]
        for k, v in (core or {}).items():
            lines = [l for l in lines if not l.startswith(k + " =")]
            lines.append(f"{k} = {v}")
        self.write("tessera.ini", "\n".join(lines) + "\n")

    def write(self, name, text):
        """Write a file relative to the config dir (e.g. conf.d/10-x.ini)."""
        path = os.path.join(self.dir, name)
        os.makedirs(os.path.dirname(path), exist_ok=True)
        with open(path, "w") as f:
            f.write(text)
        return path


def abi_version():
    """(major, minor) of the plugin ABI, as plugin-api/tessera/module.h
    defines them."""
    path = os.path.join(SRCDIR, "plugin-api", "tessera", "module.h")
    with open(path) as f:
        text = f.read()
    return tuple(int(re.search(r"#define TS_ABI_%s (\d+)" % n, text)
                     .group(1)) for n in ("MAJOR", "MINOR"))


def run_cli(args, config=None, timeout=60, env=None):
    """Run `tessera ARGS` and return the CompletedProcess (text mode)."""
    cmd = [TESSERA] + list(args)
    if config is not None:
        cmd += ["-c", config.path]
    r = subprocess.run(cmd, capture_output=True, text=True,
                       timeout=timeout, stdin=subprocess.DEVNULL, env=env)
    check_sanitizers(r.stderr)
    return r


class Server:
    """A `tessera serve` process; a context manager that always stops it."""

    def __init__(self, config, args=(), expect_start=True):
        self.config = config
        self.log_path = os.path.join(config.dir, "server.log")
        self.args = list(args)
        self.expect_start = expect_start
        self.proc = None
        self.returncode = None

    def __enter__(self):
        self.start()
        return self

    def __exit__(self, *exc):
        self.stop()
        return False

    def start(self, timeout=20):
        self.logf = open(self.log_path, "w")
        self.proc = subprocess.Popen(
            [TESSERA, "serve", "-c", self.config.path] + self.args,
            stdout=self.logf, stderr=subprocess.STDOUT,
            stdin=subprocess.DEVNULL)
        if self.expect_start:
            self.wait_log("tessera started", timeout)

    def log(self):
        with open(self.log_path, errors="replace") as f:
            return f.read()

    def wait_log(self, pattern, timeout=10, count=1):
        """Wait until the log has `count` lines matching regex `pattern`."""
        deadline = time.monotonic() + timeout
        rx = re.compile(pattern)
        while True:
            text = self.log()
            if len(rx.findall(text)) >= count:
                return text
            if self.proc.poll() is not None and \
                    len(rx.findall(self.log())) < count:
                raise AssertionError(
                    f"tessera exited ({self.proc.returncode}) before "
                    f"logging {pattern!r}:\n{text}")
            if time.monotonic() > deadline:
                raise AssertionError(
                    f"timed out waiting for {pattern!r} in log:\n{text}")
            time.sleep(0.02)

    def wait_exit(self, timeout=20):
        try:
            self.returncode = self.proc.wait(timeout=timeout)
        except subprocess.TimeoutExpired:
            self.proc.kill()
            self.returncode = self.proc.wait()
            raise AssertionError("tessera did not exit in time:\n" +
                                 self.log())
        return self.returncode

    def signal(self, sig):
        self.proc.send_signal(sig)

    def stop(self):
        """SIGTERM by PID, wait, and fail on sanitizer reports."""
        if self.proc is None:
            return
        if self.proc.poll() is None:
            self.proc.send_signal(signal.SIGTERM)
            try:
                self.proc.wait(timeout=20)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait()
        self.returncode = self.proc.returncode
        self.logf.close()
        check_sanitizers(self.log())

    def connect(self, port, timeout=10):
        s = socket.create_connection(("127.0.0.1", port), timeout=timeout)
        return LineClient(s)


def check_sanitizers(text):
    m = SANITIZER_RE.search(text)
    if m:
        raise AssertionError("sanitizer report:\n" + text[m.start() - 200:])


class LineClient:
    """A tiny CRLF line client over a socket."""

    def __init__(self, sock):
        self.sock = sock
        self.buf = b""

    def send(self, line):
        self.sock.sendall(line.encode() + b"\r\n")

    def readline(self):
        while b"\n" not in self.buf:
            data = self.sock.recv(4096)
            if not data:
                raise EOFError("connection closed; buffered: %r" % self.buf)
            self.buf += data
        line, _, self.buf = self.buf.partition(b"\n")
        return line.rstrip(b"\r").decode()

    def closed(self, timeout=5):
        """True once the server has closed (EOF), reading past any data."""
        self.sock.settimeout(timeout)
        try:
            while True:
                data = self.sock.recv(4096)
                if not data:
                    return True
        except (ConnectionResetError, BrokenPipeError):
            return True
        except socket.timeout:
            return False

    def close(self):
        self.sock.close()


class TempDirTest(unittest.TestCase):
    """A test case with a fresh temp dir, removed after every cleanup
    (so servers registered with addCleanup stop before it goes)."""

    def setUp(self):
        self.tmp = tempfile.mkdtemp(prefix="tessera-test-")
        os.chmod(self.tmp, 0o755)
        self.addCleanup(shutil.rmtree, self.tmp, ignore_errors=True)

    def config(self, **kw):
        return Config(self.tmp, **kw)


class _TapResult(unittest.TestResult):
    """One TAP line per test, whatever number of errors it collected."""

    def __init__(self):
        super().__init__()
        self.n = 0

    def startTest(self, test):
        super().startTest(test)
        self._ok = True
        self._skip = None

    def stopTest(self, test):
        super().stopTest(test)
        self.n += 1
        name = test.id().split(".", 1)[-1]
        note = f" # SKIP {self._skip}" if self._skip else ""
        print(f"{'ok' if self._ok else 'not ok'} {self.n} - {name}{note}",
              flush=True)

    def _diag(self, err):
        self._ok = False
        for line in "".join(traceback.format_exception(*err)).splitlines():
            print("# " + line, flush=True)

    def addFailure(self, test, err):
        super().addFailure(test, err)
        self._diag(err)

    def addError(self, test, err):
        super().addError(test, err)
        self._diag(err)

    def addSkip(self, test, reason):
        super().addSkip(test, reason)
        self._skip = reason


def main():
    """Run the calling module's tests and print TAP."""
    suite = unittest.defaultTestLoader.loadTestsFromModule(
        sys.modules["__main__"])
    print(f"1..{suite.countTestCases()}", flush=True)
    result = _TapResult()
    suite.run(result)
    sys.exit(0 if result.wasSuccessful() else 1)
