#!/usr/bin/env python3
"""SPF conformance: the RFC 7208 and RFC 4408 YAML suites.

Loads ../shared/testdata/spf/*.yml (the openspf.org / pyspf suites; see the
README there), turns each scenario's zone data into the line format of
modules/spf/tests/spf-zone-check (our check_host() with an injected
resolver), runs every query and compares the result with the expected one
(or one of the listed ones) and, where given, the exp= explanation.

Zone conventions (README): an SPF: entry is served as TXT unless the name
has a TXT: entry of its own; "TXT: NONE" means no TXT record; a bare
TIMEOUT makes lookups of that name fail temporarily.

Skipped cases are listed in SKIP with the reason.  The counts are printed.
"""
import os
import subprocess
import sys
import unittest

sys.path.insert(0, os.path.join(os.environ.get("TS_SRCDIR", "."),
                                "tests", "integration"))
import tsharness as h  # noqa: E402

try:
    import yaml
except ImportError:  # python3-yaml (tools/dev DEPS)
    yaml = None

SRCDIR = os.environ.get("TS_SRCDIR", ".")
BUILDDIR = os.environ.get("TS_BUILDDIR", ".")
DATA = os.path.join(os.path.dirname(os.path.abspath(SRCDIR)), "shared",
                    "testdata", "spf")
if not os.path.isdir(DATA):
    DATA = os.path.join(SRCDIR, "..", "shared", "testdata", "spf")
CHECKER = os.path.join(BUILDDIR, "modules", "spf", "tests",
                       "spf-zone-check")

# (file, test id) -> why it is not run.
_IP6_CASE = (
    "expects the %{i} nibbles of an IPv6 client in the case the test "
    "wrote the address (CAFE:BABE::1 -> E.B.A.B...), an artefact of "
    "pyspf; RFC 7208 7.3/7.4 gives lower-case nibbles and DNS names are "
    "case-insensitive.  Our explanation differs only in that case.")
SKIP = {
    ("rfc7208-tests.yml", "v-macro-ip6"): _IP6_CASE,
    ("rfc4408-tests.yml", "v-macro-ip6"): _IP6_CASE,
}

COUNTS = {}


def as_bytes(value):
    """YAML text (with \\xNN escapes as code points < 256) as raw bytes."""
    if isinstance(value, bytes):
        return value
    out = bytearray()
    for ch in str(value):
        o = ord(ch)
        out += bytes([o]) if o < 256 else ch.encode("utf-8")
    return bytes(out)


def x(value):
    """A field of the line format: "x" and the bytes in hex."""
    return "x" + as_bytes(value).hex()


def zone_lines(zonedata):
    lines = []
    for name, items in (zonedata or {}).items():
        items = items or []
        has_txt = any(isinstance(i, dict) and "TXT" in i for i in items)
        for item in items:
            if item == "TIMEOUT":
                lines.append("zone %s TIMEOUT x" % x(name))
                continue
            (rtype, value), = item.items()
            if rtype == "SPF" and has_txt:
                continue  # the name's own TXT entries win
            if rtype in ("SPF", "TXT"):
                if value == "NONE":
                    continue
                if isinstance(value, list):
                    data = b"".join(as_bytes(v) for v in value)
                else:
                    data = as_bytes(value)
                lines.append("zone %s TXT %s" % (x(name), x(data)))
            elif rtype == "MX":
                lines.append("zone %s MX %s" % (x(name),
                                                 x("%d,%s" % tuple(value))))
            elif rtype in ("A", "AAAA", "PTR", "CNAME"):
                lines.append("zone %s %s %s" % (x(name), rtype, x(value)))
            else:
                raise ValueError("zone type %s" % rtype)
    return lines


def run_scenario(fname, scenario):
    tests = scenario.get("tests") or {}
    lines = zone_lines(scenario.get("zonedata"))
    for tid, t in tests.items():
        sender = t.get("mailfrom") or "-"
        lines.append("query %s %s %s %s" % (tid, x(t["host"]), x(t["helo"]),
                                            x(sender)))
    proc = subprocess.run([CHECKER], input="\n".join(lines) + "\n",
                          capture_output=True, text=True, timeout=60)
    if proc.returncode != 0:
        raise AssertionError("spf-zone-check failed: %s" % proc.stderr)
    h.check_sanitizers(proc.stderr) if hasattr(h, "check_sanitizers") \
        else None
    got = {}
    for line in proc.stdout.splitlines():
        tid, result, exp = line.split(" ")
        got[tid] = (result, None if exp == "-" else
                    bytes.fromhex(exp).decode("latin-1"))
    failures = []
    for tid, t in tests.items():
        if (fname, tid) in SKIP:
            COUNTS["skipped"] = COUNTS.get("skipped", 0) + 1
            continue
        want = t["result"]
        want = want if isinstance(want, list) else [want]
        result, exp = got[tid]
        ok = result in want
        if ok and "explanation" in t and result == "fail":
            if t["explanation"] == "DEFAULT":
                ok = exp is None
            else:
                ok = exp == t["explanation"]
        COUNTS["passed" if ok else "failed"] = \
            COUNTS.get("passed" if ok else "failed", 0) + 1
        if not ok:
            failures.append("%s: got %s (%r), want %s (%r)" % (
                tid, result, exp, "/".join(want), t.get("explanation")))
    return failures


class SpfSuite(unittest.TestCase):
    def run_file(self, fname):
        if yaml is None:
            self.skipTest("python3-yaml is not installed")
        if not os.path.isdir(DATA):
            self.skipTest("no conformance data in %s" % DATA)
        with open(os.path.join(DATA, fname), encoding="utf-8") as f:
            scenarios = list(yaml.safe_load_all(f))
        failures = []
        for sc in scenarios:
            failures += ["[%s] %s" % (sc.get("description"), x)
                         for x in run_scenario(fname, sc)]
        print("# %s: %d passed, %d failed, %d skipped" % (
            fname, COUNTS.get("passed", 0), COUNTS.get("failed", 0),
            COUNTS.get("skipped", 0)))
        COUNTS.clear()
        self.assertEqual(failures, [], "\n".join(failures))

    def test_rfc7208(self):
        self.run_file("rfc7208-tests.yml")

    def test_rfc4408(self):
        self.run_file("rfc4408-tests.yml")


if __name__ == "__main__":
    if len(sys.argv) > 1 and sys.argv[1] == "-v":
        unittest.main(argv=[sys.argv[0], "-v"])
    else:
        h.main()
