"""A small SOCKS5 proxy (RFC 1928, CONNECT, no authentication) on
loopback for the socks transport's tests: it records each CONNECT's
target, can refuse them with a given reply code, and relays bytes both
ways.  Written for tests: every socket has a timeout, and stop() ends
every thread it started."""
import select
import socket
import struct
import threading


class Socks5Proxy:
    def __init__(self, refuse=0):
        self.refuse = refuse  # REP code to answer with (0: connect)
        self.requests = []  # (address, port) of each CONNECT
        self.sock = socket.socket()
        self.sock.bind(("127.0.0.1", 0))
        self.sock.listen(16)
        self.sock.settimeout(0.2)
        self.port = self.sock.getsockname()[1]
        self.stopping = False
        self.threads = []
        self.lock = threading.Lock()
        self.acceptor = threading.Thread(target=self._accept, daemon=True)
        self.acceptor.start()

    def stop(self):
        self.stopping = True
        self.acceptor.join(10)
        for t in list(self.threads):
            t.join(10)
        self.sock.close()

    def _accept(self):
        while not self.stopping:
            try:
                c, _ = self.sock.accept()
            except socket.timeout:
                continue
            except OSError:
                return
            t = threading.Thread(target=self._serve, args=(c,), daemon=True)
            with self.lock:
                self.threads.append(t)
            t.start()

    @staticmethod
    def _read(c, n):
        buf = b""
        while len(buf) < n:
            got = c.recv(n - len(buf))
            if not got:
                raise ConnectionError("closed")
            buf += got
        return buf

    def _serve(self, c):
        c.settimeout(10)
        up = None
        try:
            ver, nmethods = self._read(c, 2)
            methods = self._read(c, nmethods)
            if ver != 5 or 0 not in methods:
                c.sendall(b"\x05\xff")
                return
            c.sendall(b"\x05\x00")
            ver, cmd, _, atyp = self._read(c, 4)
            if atyp == 1:
                addr = socket.inet_ntop(socket.AF_INET, self._read(c, 4))
            elif atyp == 4:
                addr = socket.inet_ntop(socket.AF_INET6, self._read(c, 16))
            else:
                addr = self._read(c, self._read(c, 1)[0]).decode()
            port = struct.unpack("!H", self._read(c, 2))[0]
            self.requests.append((addr, port))
            if self.refuse or cmd != 1:
                rep = self.refuse or 7
                c.sendall(bytes([5, rep, 0, 1, 0, 0, 0, 0, 0, 0]))
                return
            try:
                up = socket.create_connection((addr, port), timeout=10)
            except OSError:
                c.sendall(b"\x05\x05\x00\x01\x00\x00\x00\x00\x00\x00")
                return
            bound = up.getsockname()
            c.sendall(b"\x05\x00\x00\x01" + socket.inet_aton(bound[0]) +
                      struct.pack("!H", bound[1]))
            self._relay(c, up)
        except (OSError, ConnectionError, ValueError):
            pass
        finally:
            c.close()
            if up is not None:
                up.close()

    def _relay(self, a, b):
        while not self.stopping:
            r, _, _ = select.select([a, b], [], [], 0.2)
            for s in r:
                data = s.recv(65536)
                if not data:
                    return
                (b if s is a else a).sendall(data)
