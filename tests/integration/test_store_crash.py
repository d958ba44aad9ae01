#!/usr/bin/env python3
"""Crash safety of delivery (issue 4, acceptance 3).

A helper program (tests/store/deliver-loop) delivers messages through the
store's public API with several deliveries in flight, and prints "ok SEQ"
only after a delivery reported success.  The test kills it with SIGKILL at
random moments, in a bounded number of rounds, then checks that
`tessera verifydata` is clean, that the store's own counts check passes,
and that every delivery reported as done is in the store.
"""
import os
import random
import re
import signal
import subprocess
import time

import tsharness

HELPER = os.path.join(tsharness.BUILDDIR, "tests", "store", "deliver-loop")
ROUNDS = 10


class StoreCrashTest(tsharness.TempDirTest):
    def make_config(self):
        cfg = self.config()
        cfg.write("domains.d/example.ini",
                  "[domain example.org]\n"
                  "[account alice]\naddresses = alice@example.org\n"
                  "[account bob]\naddresses = bob@example.org\n")
        return cfg

    def deliver_round(self, cfg, spool, first, seconds, extra=()):
        """Run the helper until SIGKILL after `seconds`; return the
        sequence numbers it reported as delivered."""
        proc = subprocess.Popen(
            [HELPER, "deliver", "-c", cfg.path, "-s", spool,
             "-j", "8", "-b", "2000", "-f", str(first)] + list(extra) +
            ["alice", "bob"],
            stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
        try:
            time.sleep(seconds)
            proc.send_signal(signal.SIGKILL)
            out, err = proc.communicate(timeout=30)
        finally:
            if proc.poll() is None:
                proc.kill()
                proc.wait()
        self.assertEqual(proc.returncode, -signal.SIGKILL, err)
        tsharness.check_sanitizers(err)
        return {int(m) for m in re.findall(r"^ok (\d+)$", out, re.M)}

    def stored(self, cfg):
        r = subprocess.run([HELPER, "check", "-c", cfg.path, "alice", "bob"],
                           capture_output=True, text=True, timeout=120)
        tsharness.check_sanitizers(r.stderr)
        self.assertEqual(r.returncode, 0, r.stderr)
        found = {}
        for account, mid in re.findall(r"^msg (\S+) (\S+)$", r.stdout,
                                       re.M):
            m = re.match(r"(\d+)@deliver-loop$", mid)
            self.assertIsNotNone(m, mid)
            found.setdefault(int(m.group(1)), set()).add(account)
        return found

    def verifydata(self, cfg):
        r = tsharness.run_cli(["verifydata"], cfg, timeout=120)
        self.assertEqual(r.returncode, 0, r.stdout + r.stderr)
        self.assertIn("no problems", r.stdout + r.stderr)

    def test_sigkill_during_delivery(self):
        cfg = self.make_config()
        spool = os.path.join(self.tmp, "spool")
        os.makedirs(spool)
        rng = random.Random(os.environ.get("TS_CRASH_SEED"))
        reported = set()
        for rnd in range(ROUNDS):
            # Single-account and two-account (-m) deliveries alternate.
            extra = ["-m"] if rnd % 2 else []
            got = self.deliver_round(cfg, spool, rnd * 1000000,
                                     rng.uniform(0.15, 0.6), extra)
            reported |= {(seq, rnd % 2) for seq in got}
        self.assertGreater(len(reported), 0)
        self.verifydata(cfg)
        found = self.stored(cfg)
        for seq, multi in sorted(reported):
            want = {"alice", "bob"} if multi else \
                {("alice", "bob")[seq % 2]}
            self.assertTrue(want <= found.get(seq, set()),
                            f"delivery {seq} reported but missing: "
                            f"{found.get(seq)}")
        # The loop keeps working on the crashed stores.
        got = self.deliver_round(cfg, spool, 99000000, 0.3)
        self.assertGreater(len(got), 0)
        self.verifydata(cfg)


if __name__ == "__main__":
    tsharness.main()
