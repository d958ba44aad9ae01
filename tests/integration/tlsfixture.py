"""tlsfixture — a throwaway certificate authority for TLS tests.

Uses certtool (Debian's gnutls-bin) to make a CA and leaf certificates
signed by it, in a directory the test owns.  Nothing leaves that directory.
"""
import os
import subprocess


def _certtool(args, template=None, cwd=None):
    cmd = ["certtool"] + args
    tmpl = None
    if template is not None:
        tmpl = os.path.join(cwd, "template.cfg")
        with open(tmpl, "w") as f:
            f.write(template)
        cmd += ["--template", tmpl]
    r = subprocess.run(cmd, cwd=cwd, capture_output=True, text=True,
                       stdin=subprocess.DEVNULL)
    if r.returncode != 0:
        raise RuntimeError(f"certtool {' '.join(args)} failed: {r.stderr}")
    return r.stdout


class TestCA:
    """A CA in `directory`; `issue(name)` makes a leaf for that DNS name."""

    def __init__(self, directory, name="tessera test CA"):
        self.dir = directory
        os.makedirs(directory, exist_ok=True)
        self.key = os.path.join(directory, "ca.key")
        self.cert = os.path.join(directory, "ca.pem")
        _certtool(["--generate-privkey", "--key-type=ecdsa",
                   "--outfile", self.key], cwd=directory)
        _certtool(["--generate-self-signed", "--load-privkey", self.key,
                   "--outfile", self.cert],
                  template=f'cn = "{name}"\nca\ncert_signing_key\n'
                           'expiration_days = 30\n', cwd=directory)
        self.serial = 1

    def issue(self, *names, tag=None, ips=()):
        """Key and certificate for DNS names (and IP addresses, for
        clients that check the address they connected to); returns
        (cert, key) paths."""
        base = (tag or names[0]).replace("*", "star")
        key = os.path.join(self.dir, base + ".key")
        cert = os.path.join(self.dir, base + ".pem")
        self.serial += 1
        _certtool(["--generate-privkey", "--key-type=ecdsa",
                   "--outfile", key], cwd=self.dir)
        dns = "".join(f'dns_name = "{n}"\n' for n in names)
        dns += "".join(f'ip_address = "{ip}"\n' for ip in ips)
        _certtool(["--generate-certificate", "--load-privkey", key,
                   "--load-ca-certificate", self.cert,
                   "--load-ca-privkey", self.key, "--outfile", cert],
                  template=f'cn = "{names[0]}"\n{dns}'
                           f'serial = {self.serial}\n'
                           'tls_www_server\nsigning_key\n'
                           'encryption_key\nexpiration_days = 30\n',
                  cwd=self.dir)
        return cert, key
