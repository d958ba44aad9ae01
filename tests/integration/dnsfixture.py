"""dnsfixture — local authoritative DNS for tests, on 127.0.0.1 only.

`DnsFixture` writes zone files into a temp dir, signs the ones asked for
with ldns-keygen/ldns-signzone (Debian package ldnsutils), and serves them
all with nsd (package nsd) in the foreground on a free port:

    fx = DnsFixture(tmpdir)
    fx.zone("test.", signed=True)                  # the trust anchor
    fx.zone("secure.test.", "www A 192.0.2.1", signed=True)
    fx.zone("bogus.test.", "www A 192.0.2.2", signed=True,
            corrupt=("www.bogus.test.", "A", "192.0.2.99"))
    fx.zone("insecure.test.", "www A 192.0.2.3")   # unsigned child
    with fx:                                       # nsd runs inside
        fx.port, fx.trust_anchor                   # -> [dns] settings

A zone whose parent is also in the fixture is delegated from it (NS and
glue, plus a DS when the child is signed), so one anchor at the top
validates the whole tree: a signed child is secure, an unsigned child is
provably insecure (NSEC in the parent denies its DS).  A signed zone
without a signed parent in the fixture is an anchor of its own; all
anchors are in `anchors` (DS records) and `anchor_file`.  `corrupt`
changes a record's data after signing, so its RRSIG no longer matches and
a validator calls it bogus.

Records are zone-file lines relative to the zone ($ORIGIN is set); every
zone gets an SOA (negative TTL 300), NS ns.<zone> and ns.<zone> A
127.0.0.1.

`ServfailServer` is a tiny UDP responder answering SERVFAIL to anything;
`DelayProxy` relays UDP queries to the fixture and holds each answer back
for a while (a slow network, so that a resolver blocking on its lookups
would show); `free_port()` finds a port free for UDP and TCP.
"""
import heapq
import os
import re
import select
import shutil
import socket
import struct
import subprocess
import threading
import time

NSD = shutil.which("nsd") or "/usr/sbin/nsd"
KEYGEN = shutil.which("ldns-keygen") or "/usr/bin/ldns-keygen"
SIGNZONE = shutil.which("ldns-signzone") or "/usr/bin/ldns-signzone"


def tools_missing():
    """Names of the programs this fixture needs that are not installed."""
    return [p for p in (NSD, KEYGEN, SIGNZONE) if not os.access(p, os.X_OK)]


def free_port():
    """A port on 127.0.0.1 free for both UDP and TCP a moment ago."""
    for _ in range(50):
        with socket.socket() as t:
            t.bind(("127.0.0.1", 0))
            port = t.getsockname()[1]
            with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as u:
                try:
                    u.bind(("127.0.0.1", port))
                except OSError:
                    continue
                return port
    raise RuntimeError("no free port")


def encode_name(name):
    out = b""
    for label in name.rstrip(".").split("."):
        if label:
            out += bytes([len(label)]) + label.encode()
    return out + b"\0"


def build_query(name, qtype=6, qid=0x5151):
    """A DNS query message (RD clear) for name/qtype, class IN."""
    return struct.pack(">HHHHHH", qid, 0, 1, 0, 0, 0) + \
        encode_name(name) + struct.pack(">HH", qtype, 1)


def udp_query(port, name, qtype=6, timeout=0.2):
    """Send one query to 127.0.0.1:port; the reply bytes or None."""
    with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as s:
        s.settimeout(timeout)
        s.sendto(build_query(name, qtype), ("127.0.0.1", port))
        try:
            data, _ = s.recvfrom(65535)
            return data
        except socket.timeout:
            return None


def _parent(name):
    """'a.b.' -> 'b.'; '.' for a top-level name."""
    rest = name.split(".", 1)[1]
    return rest if rest else "."


class _Zone:
    def __init__(self, name, records, signed, corrupt):
        self.name = name
        self.records = records
        self.signed = signed
        self.corrupt = corrupt
        self.key = None  # key base name
        self.ds = None  # DS record text
        self.file = None  # what nsd serves


class DnsFixture:
    """Zones served by one nsd; a context manager that always stops it."""

    def __init__(self, tmpdir):
        self.dir = os.path.join(tmpdir, "dns")
        os.makedirs(self.dir, exist_ok=True)
        self.zones = {}
        self.port = None
        self.proc = None
        self.anchors = []
        self.anchor_file = os.path.join(self.dir, "anchors.ds")

    def zone(self, name, records="", signed=False, corrupt=None):
        """Add a zone.  corrupt=(owner, type, new rdata) after signing."""
        if not name.endswith("."):
            name += "."
        if isinstance(records, (list, tuple)):
            records = "\n".join(records)
        self.zones[name] = _Zone(name, records, signed, corrupt)
        return self

    # --- building ------------------------------------------------------

    def _children(self, zone):
        return [z for z in self.zones.values()
                if z is not zone and _parent(z.name) == zone.name]

    def _zone_text(self, z):
        lines = [f"$ORIGIN {z.name}", "$TTL 3600",
                 f"@ IN SOA ns.{z.name} hostmaster.{z.name} "
                 "1 3600 900 604800 300",
                 f"@ IN NS ns.{z.name}",
                 "ns IN A 127.0.0.1"]
        for child in self._children(z):
            lines.append(f"{child.name} IN NS ns.{child.name}")
            lines.append(f"ns.{child.name} IN A 127.0.0.1")
            if child.signed:
                lines.append(child.ds)
        lines.append(z.records)
        return "\n".join(lines) + "\n"

    def _run(self, args):
        r = subprocess.run(args, cwd=self.dir, capture_output=True,
                           text=True, timeout=60)
        if r.returncode != 0:
            raise RuntimeError(f"{args[0]} failed ({r.returncode}): "
                               f"{r.stderr.strip()}")
        return r.stdout

    def _keygen(self, z):
        # One ECDSA P-256 key with the SEP flag, used as a CSK.
        z.key = self._run([KEYGEN, "-a", "ECDSAP256SHA256", "-k",
                           z.name]).strip()
        with open(os.path.join(self.dir, z.key + ".ds")) as f:
            z.ds = " ".join(f.read().split())

    def _corrupt(self, z):
        owner, rtype, rdata = z.corrupt
        path = os.path.join(self.dir, z.file)
        with open(path) as f:
            lines = f.read().splitlines()
        rx = re.compile(rf"^({re.escape(owner)}\s+\d+\s+IN\s+{rtype}\s+)\S.*$",
                        re.IGNORECASE)
        hits = 0
        for i, line in enumerate(lines):
            m = rx.match(line)
            if m:
                lines[i] = m.group(1) + rdata
                hits += 1
        if hits != 1:
            raise RuntimeError(f"corrupt {owner} {rtype}: {hits} records")
        with open(path, "w") as f:
            f.write("\n".join(lines) + "\n")

    def build(self):
        """Write, sign and corrupt every zone (children first)."""
        order = sorted(self.zones.values(),
                       key=lambda z: -z.name.count("."))
        for z in order:
            if z.signed:
                self._keygen(z)
        for z in order:
            base = z.name.rstrip(".") or "root"
            src = base + ".zone"
            with open(os.path.join(self.dir, src), "w") as f:
                f.write(self._zone_text(z))
            z.file = src
            if z.signed:
                z.file = src + ".signed"
                self._run([SIGNZONE, "-o", z.name, "-f", z.file, src,
                           z.key])
                if z.corrupt:
                    self._corrupt(z)
        self.anchors = [
            z.ds for z in self.zones.values() if z.signed and not (
                _parent(z.name) in self.zones and
                self.zones[_parent(z.name)].signed)]
        with open(self.anchor_file, "w") as f:
            f.write("\n".join(self.anchors) + "\n")

    @property
    def trust_anchor(self):
        """The one anchor (DS record text) when there is exactly one."""
        assert len(self.anchors) == 1, self.anchors
        return self.anchors[0]

    # --- serving -------------------------------------------------------

    def _conf(self):
        d = self.dir
        lines = ["server:",
                 "\tip-address: 127.0.0.1",
                 f"\tport: {self.port}",
                 "\tdo-ip4: yes",
                 "\tdo-ip6: no",
                 "\tserver-count: 1",
                 '\tusername: ""',
                 '\tchroot: ""',
                 f'\tzonesdir: "{d}"',
                 '\tdatabase: ""',
                 f'\tzonelistfile: "{d}/zone.list"',
                 f'\txfrdfile: "{d}/xfrd.state"',
                 f'\txfrdir: "{d}"',
                 f'\tpidfile: "{d}/nsd.pid"',
                 f'\tlogfile: "{d}/nsd.log"',
                 "\tverbosity: 1",
                 "\thide-version: yes",
                 "\treuseport: no",
                 "\ttcp-count: 200",
                 "\trrl-ratelimit: 0",
                 "remote-control:",
                 "\tcontrol-enable: no"]
        for z in self.zones.values():
            lines += ["zone:", f'\tname: "{z.name}"',
                      f'\tzonefile: "{z.file}"']
        path = os.path.join(d, "nsd.conf")
        with open(path, "w") as f:
            f.write("\n".join(lines) + "\n")
        return path

    def start(self, timeout=15):
        if tools_missing():
            raise RuntimeError("missing: " + " ".join(tools_missing()))
        if any(z.file is None for z in self.zones.values()):
            self.build()
        self.port = free_port()
        conf = self._conf()
        self.out = open(os.path.join(self.dir, "nsd.out"), "w")
        self.proc = subprocess.Popen([NSD, "-d", "-c", conf],
                                     stdout=self.out,
                                     stderr=subprocess.STDOUT,
                                     stdin=subprocess.DEVNULL)
        probe = next(iter(self.zones))
        deadline = time.monotonic() + timeout
        while udp_query(self.port, probe, timeout=0.05) is None:
            if self.proc.poll() is not None or \
                    time.monotonic() > deadline:
                log = self.log()
                self.stop()
                raise RuntimeError(f"nsd did not start:\n{log}")
        return self

    def log(self):
        text = ""
        for name in ("nsd.out", "nsd.log"):
            path = os.path.join(self.dir, name)
            if os.path.exists(path):
                with open(path, errors="replace") as f:
                    text += f.read()
        return text

    def stop(self):
        """SIGTERM nsd by PID and wait for it."""
        if self.proc is None:
            return
        if self.proc.poll() is None:
            self.proc.terminate()
            try:
                self.proc.wait(timeout=10)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait()
        self.proc = None
        self.out.close()

    def __enter__(self):
        return self.start()

    def __exit__(self, *exc):
        self.stop()
        return False


class ServfailServer:
    """Answers every UDP query on 127.0.0.1:port with SERVFAIL."""

    def __init__(self):
        self.sock = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
        self.sock.bind(("127.0.0.1", 0))
        self.port = self.sock.getsockname()[1]
        self.queries = 0
        self._stop = False
        self._thread = threading.Thread(target=self._serve, daemon=True)

    def _serve(self):
        self.sock.settimeout(0.1)
        while not self._stop:
            try:
                data, peer = self.sock.recvfrom(65535)
            except socket.timeout:
                continue
            except OSError:
                return
            if len(data) < 12:
                continue
            self.queries += 1
            qid, flags = struct.unpack(">HH", data[:4])
            # QR, the opcode and RD copied, RA, rcode 2; the question
            # echoed, no records (and no OPT: plain RFC 1035).
            end = 12
            while end < len(data) and data[end] != 0:
                end += data[end] + 1
            question = data[12:end + 5]
            reply = struct.pack(">HHHHHH", qid,
                                0x8000 | (flags & 0x7900) | 0x0080 | 2,
                                1, 0, 0, 0) + question
            self.sock.sendto(reply, peer)

    def __enter__(self):
        self._thread.start()
        return self

    def __exit__(self, *exc):
        self._stop = True
        self._thread.join(timeout=5)
        self.sock.close()
        return False


class DelayProxy:
    """Relays UDP queries on 127.0.0.1:port to 127.0.0.1:upstream and
    sends each answer back `delay` seconds after it came."""

    def __init__(self, upstream, delay=0.05):
        self.sock = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
        self.sock.bind(("127.0.0.1", 0))
        self.port = self.sock.getsockname()[1]
        self.up = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
        self.up.connect(("127.0.0.1", upstream))
        self.delay = delay
        self.queries = 0
        self._pending = {}  # (id, question) -> client address
        self._due = []  # heap of (when, seq, answer, address)
        self._stop = False
        self._thread = threading.Thread(target=self._serve, daemon=True)

    @staticmethod
    def _key(data):
        # The id and the question: what a resolver matches answers by.
        end = 12
        while end < len(data) and data[end] != 0:
            end += data[end] + 1
        return data[:2] + data[12:end + 5].lower()

    def _serve(self):
        seq = 0
        while not self._stop:
            now = time.monotonic()
            while self._due and self._due[0][0] <= now:
                _, _, data, addr = heapq.heappop(self._due)
                self.sock.sendto(data, addr)
            wait = self._due[0][0] - now if self._due else 0.1
            ready, _, _ = select.select([self.sock, self.up], [], [],
                                        max(0.0, min(wait, 0.1)))
            if self.sock in ready:
                data, addr = self.sock.recvfrom(65535)
                if len(data) >= 12:
                    self.queries += 1
                    self._pending[self._key(data)] = addr
                    self.up.send(data)
            if self.up in ready:
                try:
                    data = self.up.recv(65535)
                except OSError:
                    continue
                addr = self._pending.pop(self._key(data), None)
                if addr is not None:
                    seq += 1
                    heapq.heappush(self._due, (time.monotonic() +
                                               self.delay, seq, data, addr))

    def __enter__(self):
        self._thread.start()
        return self

    def __exit__(self, *exc):
        self._stop = True
        self._thread.join(timeout=5)
        self.sock.close()
        self.up.close()
        return False
