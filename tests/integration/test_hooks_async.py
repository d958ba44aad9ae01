"""The hook pipeline in a running server, driven through the hooktest
module's `hookprobe` protocol: async hooks, priorities, first final verdict
wins, timeouts, stale resumes, cancel on disconnect, parallel waits."""
import re
import time

import tsharness as h


class HooksAsync(h.TempDirTest):
    def start(self, hooks, core=None):
        cfg = self.config(core=core)
        self.port = h.free_port()
        cfg.write("conf.d/10-hooktest.ini",
                  "[module hooktest]\nenabled = yes\n\n"
                  f"[listener probe]\nport = {self.port}\n"
                  "protocol = hookprobe\n\n" + hooks)
        self.srv = h.Server(cfg)
        self.srv.start()
        self.addCleanup(self.srv.stop)
        self.client = self.srv.connect(self.port)
        self.addCleanup(self.client.close)
        self.assertEqual(self.client.readline(), "200 hookprobe ready")

    def run_point(self, point="smtp_rcpt", arg="a@example.org"):
        self.client.send(f"RUN {point} {arg}")
        line = self.client.readline()
        self.assertTrue(line.startswith("RESULT "), line)
        return dict(re.findall(r"(\w+)=(\S+)", line.split(" text=")[0]),
                    text=line.split(" text=", 1)[1])

    def test_pending_hook_resumes_after_timer(self):
        self.start("[hooktest slow]\naction = pending\nresume = reject\n"
                   "wait = 150ms\ntext = slow no\n")
        t0 = time.monotonic()
        r = self.run_point()
        self.assertGreaterEqual(time.monotonic() - t0, 0.14)
        self.assertEqual(r["verdict"], "reject")
        self.assertEqual(r["module"], "hooktest")
        self.assertEqual(r["text"], "slow no")
        self.assertIn("hooktest resumed hook=slow", self.srv.log())

    def test_priority_order_lower_first(self):
        self.start("[hooktest late]\npriority = 10\naction = reject\n"
                   "text = late\n\n"
                   "[hooktest early]\npriority = -10\naction = reject\n"
                   "text = early\n")
        r = self.run_point()
        self.assertEqual((r["verdict"], r["text"]), ("reject", "early"))
        log = self.srv.log()
        self.assertIn("hooktest hook=early point=smtp_rcpt", log)
        self.assertNotIn("hooktest hook=late point=smtp_rcpt", log)

    def test_first_final_verdict_wins(self):
        self.start("[hooktest a]\npriority = 0\naction = continue\n"
                   "header = X-A: 1\n\n"
                   "[hooktest b]\npriority = 5\naction = pending\n"
                   "resume = reject\nwait = 50ms\ntext = b says no\n\n"
                   "[hooktest c]\npriority = 9\naction = tempfail\n")
        r = self.run_point()
        self.assertEqual((r["verdict"], r["code"], r["text"]),
                         ("reject", "550", "b says no"))
        self.assertEqual(r["headers"], "1")
        self.assertNotIn("hooktest hook=c point", self.srv.log())

    def test_continue_when_nobody_objects(self):
        self.start("[hooktest a]\naction = continue\n")
        r = self.run_point()
        self.assertEqual(r["verdict"], "continue")
        self.assertEqual(r["module"], "-")

    def test_never_resuming_hook_times_out(self):
        self.start("[hooktest stuck]\npoint = smtp_mail\naction = never\n",
                   core={"hook_timeout": "300ms"})
        r = self.run_point("smtp_mail", "<b@example.org>")
        self.assertEqual((r["verdict"], r["code"], r["enhanced"]),
                         ("tempfail", "451", "4.4.3"))
        log = self.srv.wait_log("hooktest cancelled hook=stuck")
        self.assertRegex(log, r"error module=kernel hook timed out "
                              r"module=hooktest hook=smtp_mail after=300ms")
        # The session goes on normally afterwards.
        self.client.send("QUIT")
        self.assertEqual(self.client.readline(), "221 bye")

    def test_second_resume_is_ignored(self):
        self.start("[hooktest twice]\naction = double_resume\n"
                   "resume = reject\nwait = 20ms\n")
        r = self.run_point()
        self.assertEqual(r["verdict"], "reject")
        self.srv.wait_log("hooktest second resume rc=stale token")
        # Nothing else came out of the second resume.
        self.client.send("QUIT")
        self.assertEqual(self.client.readline(), "221 bye")

    def test_disconnect_while_pending_cancels(self):
        self.start("[hooktest slow]\naction = pending\nwait = 1s\n")
        self.client.send("RUN smtp_rcpt x@example.org")
        self.srv.wait_log("hooktest hook=slow point=smtp_rcpt")
        self.client.close()
        self.srv.wait_log("hooktest cancelled hook=slow")
        self.srv.wait_log('session closed listener=probe reason="peer '
                          'closed"')
        time.sleep(1.2)  # past the wait: the timer must be gone
        self.assertNotIn("hooktest resumed hook=slow", self.srv.log())
        # Server still healthy; stop() checks ASan's verdict.
        c = self.srv.connect(self.port)
        self.assertEqual(c.readline(), "200 hookprobe ready")
        c.close()

    def test_parallel_hooks_overlap_their_waits(self):
        self.start("[hooktest p1]\nparallel = yes\naction = pending\n"
                   "wait = 200ms\nheader = X-P1: 1\n\n"
                   "[hooktest p2]\nparallel = yes\naction = pending\n"
                   "wait = 200ms\nheader = X-P2: 1\n")
        t0 = time.monotonic()
        r = self.run_point()
        elapsed = time.monotonic() - t0
        self.assertEqual(r["verdict"], "continue")
        self.assertEqual(r["headers"], "2")
        self.assertLess(elapsed, 0.39, "parallel waits did not overlap")

    def test_sequential_hooks_add_their_waits(self):
        self.start("[hooktest s1]\naction = pending\nwait = 200ms\n\n"
                   "[hooktest s2]\naction = pending\nwait = 200ms\n")
        t0 = time.monotonic()
        self.run_point()
        # 2 × 200 ms one after the other (overlapping would be ~0.2 s);
        # libuv's cached loop time lets a timer fire a hair early.
        self.assertGreaterEqual(time.monotonic() - t0, 0.38)

    def test_parallel_reject_beats_tempfail(self):
        self.start("[hooktest t]\nparallel = yes\npriority = -5\n"
                   "action = tempfail\ntext = later\n\n"
                   "[hooktest r]\nparallel = yes\npriority = 5\n"
                   "action = pending\nwait = 50ms\nresume = reject\n"
                   "text = rejected\n")
        r = self.run_point()
        self.assertEqual((r["verdict"], r["text"]), ("reject", "rejected"))

    def test_conn_open_delay_and_reject(self):
        cfg_hooks = ("[hooktest gate]\npoint = conn_open\naction = pending\n"
                     "wait = 300ms\nresume = reject\ntext = go away\n")
        t0 = time.monotonic()
        cfg = self.config()
        port = h.free_port()
        cfg.write("conf.d/10-hooktest.ini",
                  "[module hooktest]\nenabled = yes\n\n"
                  f"[listener probe]\nport = {port}\n"
                  "protocol = hookprobe\n\n" + cfg_hooks)
        with h.Server(cfg) as srv:
            c = srv.connect(port)
            t0 = time.monotonic()
            line = c.readline()
            self.assertGreaterEqual(time.monotonic() - t0, 0.25)
            self.assertEqual(line, "554 go away")
            self.assertTrue(c.closed())
            c.close()


if __name__ == "__main__":
    h.main()
