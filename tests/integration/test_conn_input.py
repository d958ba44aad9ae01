"""Connection input: overlong lines, bare LF, early talkers, many sessions."""
import os
import socket
import time

import tsharness as h

HELLO_DIR = os.path.join(h.BUILDDIR, "examples", "hello", ".libs")


class ConnInput(h.TempDirTest):
    def start(self, listener_extra=""):
        cfg = self.config(module_dirs=[h.TEST_MODULES, HELLO_DIR])
        self.port = h.free_port()
        self.probe_port = h.free_port()
        cfg.write("conf.d/20-hello.ini",
                  "[module hello]\nenabled = yes\n"
                  "[module hooktest]\nenabled = yes\n\n"
                  f"[listener hello]\nport = {self.port}\nprotocol = hello\n"
                  f"max_line = 64\n{listener_extra}\n"
                  f"[listener probe]\nport = {self.probe_port}\n"
                  "protocol = hookprobe\nmax_line = 64\n")
        self.srv = h.Server(cfg)
        self.srv.start()
        self.addCleanup(self.srv.stop)

    def test_overlong_line_answered_then_closed(self):
        self.start()
        c = self.srv.connect(self.port)
        self.assertTrue(c.readline().startswith("220"))
        c.send("HELLO short")
        self.assertEqual(c.readline(), "250 hello short")
        c.send("HELLO " + "x" * 100)
        self.assertEqual(c.readline(), "500 line too long")
        self.assertTrue(c.closed())
        self.srv.wait_log('listener=hello reason="line too long"')

    def rss_kib(self):
        with open(f"/proc/{self.srv.proc.pid}/status") as f:
            for line in f:
                if line.startswith("VmRSS:"):
                    return int(line.split()[1])
        raise AssertionError("no VmRSS")

    def test_huge_line_without_newline_is_bounded(self):
        self.start()
        before = self.rss_kib()
        c = self.srv.connect(self.port)
        c.readline()
        chunk = b"y" * 65536
        sent = 0
        try:
            for _ in range(128):  # up to 8 MiB without a line end
                c.sock.sendall(chunk)
                sent += len(chunk)
        except (BrokenPipeError, ConnectionResetError):
            pass  # the server hung up on us mid-way: fine
        self.assertGreaterEqual(sent, 1 << 20)
        self.assertEqual(c.readline(), "500 line too long")
        self.assertTrue(c.closed())
        # Had it buffered the line, RSS would have grown by megabytes.
        self.assertLess(self.rss_kib() - before, 4096)
        c.close()

    def test_overlong_line_closes_without_protocol_handler(self):
        self.start()
        c = self.srv.connect(self.probe_port)
        c.readline()
        c.send("z" * 200)
        self.assertTrue(c.closed())
        self.srv.wait_log('listener=probe reason="line too long"')

    def test_bare_lf_ends_a_line(self):
        self.start()
        c = self.srv.connect(self.port)
        c.readline()
        c.sock.sendall(b"HELLO lf\nHELLO crlf\r\n")
        self.assertEqual(c.readline(), "250 hello lf")
        self.assertEqual(c.readline(), "250 hello crlf")
        c.close()

    def test_early_talker_is_answered_in_order(self):
        self.start()
        s = socket.create_connection(("127.0.0.1", self.port))
        s.sendall(b"HELLO early\r\nQUIT\r\n")
        c = h.LineClient(s)
        self.assertTrue(c.readline().startswith("220"))
        self.assertEqual(c.readline(), "250 hello early")
        self.assertEqual(c.readline(), "221 bye")
        c.close()

    def test_idle_timeout_closes(self):
        self.start("idle_timeout = 300ms\n")
        c = self.srv.connect(self.port)
        c.readline()
        t0 = time.monotonic()
        self.assertTrue(c.closed(timeout=5))
        self.assertLess(time.monotonic() - t0, 4)
        self.srv.wait_log('reason="idle timeout"')

    def test_many_sessions_at_once(self):
        self.start()
        clients = [self.srv.connect(self.port) for _ in range(100)]
        for i, c in enumerate(clients):
            self.assertTrue(c.readline().startswith("220"))
            c.send(f"HELLO n{i}")
        for i, c in enumerate(clients):
            self.assertEqual(c.readline(), f"250 hello n{i}")
            c.close()

    def test_counted_bytes_then_lines(self):
        self.start()
        c = self.srv.connect(self.port)
        c.readline()
        payload = bytes(range(256)) * 40 + b"\r\nQUIT\r\n.\r\n"
        c.send(f"BYTES {len(payload)}")
        # Split oddly, and glue the next command to the last piece.
        c.sock.sendall(payload[:7])
        c.sock.sendall(payload[7:5000])
        c.sock.sendall(payload[5000:] + b"HELLO after\r\n")
        self.assertEqual(c.readline(), f"250 received {len(payload)} bytes "
                                       f"sum={sum(payload)}")
        self.assertEqual(c.readline(), "250 hello after")
        c.close()

    def test_large_output_streams_with_backpressure(self):
        self.start()
        c = self.srv.connect(self.port)
        c.readline()
        c.send("STREAM 8192")  # 8 MiB, four times the memory budget
        time.sleep(0.5)  # the client reads nothing for a while
        total = 0
        while True:
            line = c.readline()
            if line == "250 stream done":
                break
            total += len(line) + 1
        self.assertEqual(total, 8 * 1024 * 1024 + 1)
        self.assertNotIn("memory budget exceeded", self.srv.log())

    def test_half_close_still_answers_pipelined_commands(self):
        self.start()
        s = socket.create_connection(("127.0.0.1", self.port))
        c = h.LineClient(s)
        c.readline()
        s.sendall(b"HELLO one\r\nHELLO two\r\n")
        s.shutdown(socket.SHUT_WR)
        self.assertEqual(c.readline(), "250 hello one")
        self.assertEqual(c.readline(), "250 hello two")
        self.assertTrue(c.closed())
        self.srv.wait_log('listener=hello reason="peer closed"')

    def test_session_timeout(self):
        self.start("session_timeout = 1s\nidle_timeout = 1m\n")
        c = self.srv.connect(self.port)
        c.readline()
        t0 = time.monotonic()
        while not c.closed(timeout=0.2):
            c.send("HELLO busy")  # busy, but the total time runs out
            self.assertLess(time.monotonic() - t0, 5)
        self.srv.wait_log('reason="session timeout"')

    def test_nul_and_binary_bytes_do_not_crash(self):
        self.start()
        c = self.srv.connect(self.port)
        c.readline()
        c.sock.sendall(b"\x16\x03\x01\x00\xa5\x01\x00\x00\xa1\x03\x03\r\n")
        self.assertEqual(c.readline(), "500 unknown command")
        c.sock.sendall(b"HEL\x00LO\r\n")
        self.assertEqual(c.readline(), "500 unknown command")
        c.close()


if __name__ == "__main__":
    h.main()
