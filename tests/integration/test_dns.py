"""DNS lookups in a running server, through the dnsprobe module's line
protocol, against a local nsd (dnsfixture): every record type, CNAME
chains, PTR, NXDOMAIN vs NODATA vs TEMPFAIL, DNSSEC secure / bogus /
insecure, timeouts, cancel on disconnect — and 200 lookups in flight
while a 10 ms timer keeps firing on schedule (the loop never blocks).
Nothing is ever asked of anything but 127.0.0.1.

The zones avoid the names libunbound answers itself by default (test.,
invalid., 192.0.2.0/24 and 2001:db8::/32 reverse zones, …: its built-in
local zones for special-use names): example., example.org.,
18.198.in-addr.arpa. and f.f.f.3.ip6.arpa. are served by the fixture."""
import re
import shutil
import socket
import tempfile
import time
import unittest

import dnsfixture
import tsharness as h

TLSA_HEX = "8d02536c887482bc34ff54e41d2ba659bf85b341a0a20afadb5813dcfbcf286d"

SECURE = """
www A 192.0.2.1
www A 192.0.2.2
www AAAA 2001:db8::1
short 60 A 192.0.2.5
@ MX 10 mx.secure.example.
@ MX 20 mx2.secure.example.
mx A 192.0.2.25
@ TXT "v=spf1 " "-all"
_25._tcp.mx TLSA 3 1 1 """ + TLSA_HEX + """
alias CNAME www
chain CNAME alias
*.flood A 192.0.2.7
"""


def answer(line):
    """`ANSWER k=v ... records=a|b [why=...]` as a dict."""
    assert line.startswith("ANSWER "), line
    why = None
    if " why=" in line:
        line, why = line.split(" why=", 1)
    d = dict(re.findall(r"(\w+)=(\S*)", line))
    d["records"] = [] if d["records"] == "-" else d["records"].split("|")
    d["why"] = why
    return d


@unittest.skipIf(dnsfixture.tools_missing(),
                 "nsd/ldnsutils not installed")
class Dns(h.TempDirTest):
    @classmethod
    def setUpClass(cls):
        cls.fxdir = tempfile.mkdtemp(prefix="tessera-dns-")
        fx = dnsfixture.DnsFixture(cls.fxdir)
        fx.zone("example.", signed=True)
        fx.zone("secure.example.", SECURE, signed=True)
        fx.zone("bogus.example.", "www A 192.0.2.66", signed=True,
                corrupt=("www.bogus.example.", "A", "192.0.2.99"))
        fx.zone("insecure.example.", "www A 192.0.2.3\n*.flood A 192.0.2.8")
        fx.zone("other.example.org.", "www A 198.51.100.1")
        fx.zone("18.198.in-addr.arpa.", "1.0 PTR www.secure.example.")
        fx.zone("f.f.f.3.ip6.arpa.",
                "1.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0 "
                "PTR mx.secure.example.")
        cls.fx = fx.start()

    @classmethod
    def tearDownClass(cls):
        cls.fx.stop()
        shutil.rmtree(cls.fxdir, ignore_errors=True)

    def start(self, dns=None, core=None):
        """A server whose [dns] forwards to nsd unless `dns` says else."""
        if dns is None:
            dns = {"resolver": "forward",
                   "forward": f"127.0.0.1@{self.fx.port}",
                   "trust_anchor": self.fx.trust_anchor}
        cfg = self.config(core=core)
        self.port = h.free_port()
        cfg.write("conf.d/10-dnsprobe.ini",
                  "[module dnsprobe]\nenabled = yes\n\n"
                  f"[listener probe]\nport = {self.port}\n"
                  "protocol = dnsprobe\n\n[dns]\n" +
                  "".join(f"{k} = {v}\n" for k, v in dns.items()))
        self.srv = h.Server(cfg)
        self.srv.start()
        self.addCleanup(self.srv.stop)
        self.client = self.connect()
        return self.srv

    def connect(self):
        c = self.srv.connect(self.port, timeout=30)
        self.addCleanup(c.close)
        self.assertEqual(c.readline(), "200 dnsprobe ready")
        return c

    def q(self, rtype, name, client=None):
        c = client or self.client
        c.send(f"Q {rtype} {name}")
        return answer(c.readline())

    # --- record types ---------------------------------------------------

    def test_a_two_records_secure(self):
        self.start(core={"log_level": "trace"})
        a = self.q("A", "www.secure.example")
        self.assertEqual((a["status"], a["rcode"], a["security"]),
                         ("ok", "0", "secure"))
        self.assertEqual(sorted(a["records"]), ["192.0.2.1", "192.0.2.2"])
        self.assertEqual((a["count"], a["canonical"]),
                         ("2", "www.secure.example"))
        self.assertEqual(a["ttl"], "3600")
        self.srv.wait_log(r"trace module=kernel dns lookup "
                          r"name=www\.secure\.example type=A status=ok "
                          r"security=secure rcode=0 count=2 ttl=3600 "
                          r"ms=\d+")

    def test_aaaa_and_own_ttl(self):
        self.start()
        a = self.q("AAAA", "www.secure.example")
        self.assertEqual((a["status"], a["records"], a["security"]),
                         ("ok", ["2001:db8::1"], "secure"))
        a = self.q("A", "short.secure.example")
        self.assertEqual((a["records"], a["ttl"]), (["192.0.2.5"], "60"))

    def test_mx(self):
        self.start()
        a = self.q("MX", "secure.example")
        self.assertEqual(a["status"], "ok")
        self.assertEqual(sorted(a["records"]),
                         ["10:mx.secure.example", "20:mx2.secure.example"])

    def test_txt_strings_concatenated(self):
        self.start()
        a = self.q("TXT", "secure.example")
        self.assertEqual((a["status"], a["security"]), ("ok", "secure"))
        # "v=spf1 " "-all": the line splits at spaces, so rebuild it.
        self.client.send("Q TXT secure.example")
        line = self.client.readline()
        self.assertIn("records=v=spf1 -all", line)

    def test_tlsa(self):
        self.start()
        self.client.send("Q TLSA _25._tcp.mx.secure.example")
        line = self.client.readline()
        self.assertIn(f"records=3 1 1 {TLSA_HEX}", line)
        self.assertIn("status=ok", line)
        self.assertIn("security=secure", line)

    def test_cname_followed_to_target(self):
        self.start()
        a = self.q("A", "chain.secure.example")
        self.assertEqual((a["status"], a["security"]), ("ok", "secure"))
        self.assertEqual(a["canonical"], "www.secure.example")
        self.assertEqual(sorted(a["records"]), ["192.0.2.1", "192.0.2.2"])
        a = self.q("CNAME", "alias.secure.example")
        self.assertEqual((a["records"], a["canonical"]),
                         (["www.secure.example"], "alias.secure.example"))

    def test_ptr_v4_v6_and_bad_address(self):
        self.start()
        self.client.send("PTR 198.18.0.1")
        a = answer(self.client.readline())
        self.assertEqual((a["status"], a["records"], a["security"]),
                         ("ok", ["www.secure.example"], "insecure"))
        self.client.send("PTR 3fff::1")
        a = answer(self.client.readline())
        self.assertEqual(a["records"], ["mx.secure.example"])
        self.client.send("PTR 198.18.0.300")
        self.assertEqual(self.client.readline(), "550 lookup not started")

    # --- how lookups end ------------------------------------------------

    def test_nxdomain_vs_nodata(self):
        self.start()
        a = self.q("A", "nope.secure.example")
        self.assertEqual((a["status"], a["rcode"], a["count"]),
                         ("nxdomain", "3", "0"))
        self.assertEqual((a["security"], a["ttl"]), ("secure", "300"))
        a = self.q("MX", "www.secure.example")
        self.assertEqual((a["status"], a["rcode"], a["count"]),
                         ("nodata", "0", "0"))
        self.assertEqual((a["security"], a["ttl"]), ("secure", "300"))

    def test_servfail_is_tempfail(self):
        with dnsfixture.ServfailServer() as sf:
            self.start(dns={"resolver": "forward",
                            "forward": f"127.0.0.1@{sf.port}"})
            a = self.q("A", "www.secure.example")
            self.assertEqual((a["status"], a["rcode"], a["count"]),
                             ("tempfail", "2", "0"))
            self.assertGreater(sf.queries, 0)

    def test_silent_server_times_out(self):
        # A socket that never answers: only [dns] timeout ends the wait.
        with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as hole:
            hole.bind(("127.0.0.1", 0))
            self.start(dns={"resolver": "forward",
                            "forward": f"127.0.0.1@{hole.getsockname()[1]}",
                            "timeout": "700ms"})
            t0 = time.monotonic()
            a = self.q("A", "www.secure.example")
            elapsed = time.monotonic() - t0
            self.assertEqual((a["status"], a["rcode"]), ("tempfail", "2"))
            self.assertGreaterEqual(elapsed, 0.65)
            self.assertLess(elapsed, 5)
            self.srv.wait_log(r"dns lookup timed out name=www\.secure\.example "
                              r"type=A after=\d+ms")

    def test_malformed_name_is_permfail(self):
        self.start()
        a = self.q("A", "a" * 64 + ".secure.example")
        self.assertEqual((a["status"], a["rcode"]), ("permfail", "1"))
        a = self.q("A", "a..secure.example")
        self.assertEqual(a["status"], "permfail")

    # --- DNSSEC -----------------------------------------------------------

    def test_bogus(self):
        self.start()
        a = self.q("A", "www.bogus.example")
        self.assertEqual(a["security"], "bogus")
        self.assertEqual((a["status"], a["rcode"], a["count"]),
                         ("tempfail", "2", "0"))
        self.assertTrue(a["why"], "no reason given for bogus")
        # The rest of the tree is unaffected.
        self.assertEqual(self.q("A", "www.secure.example")["security"],
                         "secure")

    def test_insecure_child_and_unrelated_zone(self):
        self.start()
        a = self.q("A", "www.insecure.example")
        self.assertEqual((a["status"], a["security"], a["records"]),
                         ("ok", "insecure", ["192.0.2.3"]))
        a = self.q("A", "www.other.example.org")
        self.assertEqual((a["status"], a["security"], a["records"]),
                         ("ok", "insecure", ["198.51.100.1"]))

    def test_no_anchor_means_insecure(self):
        self.start(dns={"resolver": "forward",
                        "forward": f"127.0.0.1@{self.fx.port}"})
        a = self.q("A", "www.secure.example")
        self.assertEqual((a["status"], a["security"]), ("ok", "insecure"))
        # Without an anchor, broken signatures go unnoticed.
        a = self.q("A", "www.bogus.example")
        self.assertEqual((a["status"], a["security"], a["records"]),
                         ("ok", "insecure", ["192.0.2.99"]))

    def test_anchor_file(self):
        self.start(dns={"resolver": "forward",
                        "forward": f"127.0.0.1@{self.fx.port}",
                        "trust_anchor_file": self.fx.anchor_file})
        self.assertEqual(self.q("A", "www.secure.example")["security"],
                         "secure")

    # --- the loop ---------------------------------------------------------

    def flood(self, n, rtype, pattern):
        self.client.send(f"FLOOD {n} {rtype} {pattern}")
        line = self.client.readline()
        m = re.fullmatch(rf"FLOOD n={n} ok=(\d+) max_lag_ms=(\d+) "
                         rf"ms=(\d+)", line)
        self.assertIsNotNone(m, line)
        return tuple(map(int, m.groups()))

    def test_flood_keeps_timer_on_schedule(self):
        # Every answer comes 50 ms late: 200 lookups resolved one after
        # the other would take 10 s and freeze the loop meanwhile.
        with dnsfixture.DelayProxy(self.fx.port, delay=0.05) as proxy:
            self.start(dns={"resolver": "forward",
                            "forward": f"127.0.0.1@{proxy.port}"})
            ok, lag, ms = self.flood(200, "A", "n#.flood.insecure.example")
            print(f"# flood via 50 ms proxy: 200 lookups in {ms} ms, "
                  f"max timer lag {lag} ms", flush=True)
            self.assertEqual(ok, 200)
            self.assertGreaterEqual(proxy.queries, 200)
            self.assertLess(lag, 250, "the event loop was blocked")
            self.assertLess(ms, 2000, "the lookups did not overlap")

    def test_flood_validating(self):
        self.start()
        # Fetch and validate the keys once; then 200 wildcard answers,
        # each with its signatures to check.
        self.assertEqual(self.q("A", "www.secure.example")["security"],
                         "secure")
        ok, lag, ms = self.flood(200, "A", "n#.flood.secure.example")
        print(f"# validating flood: 200 lookups in {ms} ms, "
              f"max timer lag {lag} ms", flush=True)
        self.assertEqual(ok, 200)
        self.assertLess(lag, 250, "the event loop was blocked")
        # The same names again come from the cache.
        ok, lag, ms = self.flood(200, "A", "n#.flood.secure.example")
        self.assertEqual(ok, 200)
        self.assertLess(lag, 250)

    def test_disconnect_cancels_lookups(self):
        with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as hole:
            hole.bind(("127.0.0.1", 0))
            self.start(dns={"resolver": "forward",
                            "forward": f"127.0.0.1@{hole.getsockname()[1]}",
                            "timeout": "1s"})
            self.client.send("FLOOD 5 A x#.secure.example")
            time.sleep(0.2)
            self.client.close()
            self.srv.wait_log("dnsprobe cancelled lookups=5")
            time.sleep(1.2)  # past the timeout: nothing may fire now
            self.assertNotIn("dns lookup timed out", self.srv.log())
            c = self.connect()
            c.send("QUIT")
            self.assertEqual(c.readline(), "221 bye")

    @unittest.skipUnless(
        re.search(r"^127\.0\.0\.1\s.*\blocalhost\b",
                  open("/etc/hosts").read(), re.M),
        "no localhost line in /etc/hosts")
    def test_system_resolver_answers_from_hosts(self):
        # Answered inside libunbound's call: still delivered later, on
        # the loop.  resolv.conf names a server that never gets asked.
        conf = self.config().write("resolv.conf", "nameserver 127.0.0.1\n")
        self.start(dns={"resolver": "system", "resolv_conf": conf})
        a = self.q("A", "localhost")
        self.assertEqual((a["status"], a["records"]), ("ok", ["127.0.0.1"]))


if __name__ == "__main__":
    h.main()
