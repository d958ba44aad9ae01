"""Secrets are logged only at traceauth, message data only at tracedata."""
import tsharness as h


class LogLevels(h.TempDirTest):
    def logged(self, level):
        cfg = self.config(core={"log_level": level})
        port = h.free_port()
        cfg.write("conf.d/10-hooktest.ini",
                  "[module hooktest]\nenabled = yes\n\n"
                  f"[listener probe]\nport = {port}\nprotocol = hookprobe\n")
        with h.Server(cfg) as srv:
            c = srv.connect(port)
            c.readline()
            c.send("SECRET hunter2")
            self.assertEqual(c.readline(), "250 logged")
            c.close()
        return srv.log()

    def test_trace_hides_secrets_and_data(self):
        log = self.logged("trace")
        self.assertIn("hooktest trace marker", log)
        self.assertNotIn("hunter2", log)

    def test_traceauth_shows_secrets_only(self):
        log = self.logged("traceauth")
        self.assertIn("traceauth module=hooktest conn=", log)
        self.assertIn("secret=hunter2", log)
        self.assertNotIn("data=hunter2", log)

    def test_tracedata_shows_both(self):
        log = self.logged("tracedata")
        self.assertIn("secret=hunter2", log)
        self.assertIn("data=hunter2", log)

    def test_info_is_quiet(self):
        log = self.logged("info")
        self.assertNotIn("trace marker", log)
        self.assertIn("session opened listener=probe", log)


if __name__ == "__main__":
    h.main()
