#!/usr/bin/python3
"""DKIM signatures and verifications per second: tessera's dkim module code
(bench/dkim-bench, built with `make bench/dkim-bench`) next to dkimpy
(Debian python3-dkim) in the same run, for rsa-2048 and ed25519 keys over
4 KiB and 1 MiB messages, relaxed/relaxed, one signature.  dkimpy gets its
key record from a dnsfunc (no DNS); tessera's bench hands it over directly.
OpenDKIM (Debian opendkim-tools) is measured for signing only, through
opendkim-testmsg — one process per message, since the tools have no
in-process loop, and verifying would need the key in real DNS — so its
column shows what that tool does, not libopendkim's raw speed; and
opendkim-testmsg (2.11) signs with a=rsa-sha1, without an option to
choose rsa-sha256, and rejects Ed25519 keys.  Installed
by this script when run as root (apt-get), else the column says n/a.
Not a test.

    bench/dkim-speed.py [--build DIR] [--seconds S]
"""
import argparse
import base64
import os
import shutil
import subprocess
import sys
import tempfile
import time

import dkim
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import ed25519, rsa

HEADER = (b"From: Alice <alice@example.org>\r\n"
          b"To: Bob <bob@example.net>\r\n"
          b"Subject: benchmark message\r\n"
          b"Date: Sun, 22 Nov 2026 05:00:00 +0000\r\n"
          b"Message-ID: <bench@example.org>\r\n\r\n")
LINE = (b"The quick brown fox jumps over the lazy dog, again and again "
        b"and again.\r\n")


def message(size):
    body = (LINE * (size // len(LINE) + 1))[:size]
    return HEADER + body


def keys(ed):
    if ed:
        k = ed25519.Ed25519PrivateKey.generate()
        seed = k.private_bytes(serialization.Encoding.Raw,
                               serialization.PrivateFormat.Raw,
                               serialization.NoEncryption())
        pub = k.public_key().public_bytes(serialization.Encoding.Raw,
                                          serialization.PublicFormat.Raw)
        return (base64.b64encode(seed),
                b"v=DKIM1; k=ed25519; p=" + base64.b64encode(pub))
    k = rsa.generate_private_key(public_exponent=65537, key_size=2048)
    pem = k.private_bytes(serialization.Encoding.PEM,
                          serialization.PrivateFormat.TraditionalOpenSSL,
                          serialization.NoEncryption())
    pub = k.public_key().public_bytes(
        serialization.Encoding.DER,
        serialization.PublicFormat.SubjectPublicKeyInfo)
    return pem, b"v=DKIM1; k=rsa; p=" + base64.b64encode(pub)


def rate(fn, secs):
    n, t0 = 0, time.monotonic()
    while True:
        fn()
        n += 1
        t = time.monotonic() - t0
        if t >= secs:
            return n / t


def opendkim_ready():
    """opendkim-testmsg on PATH, installed via apt-get when root."""
    exe = shutil.which("opendkim-testmsg") or "/usr/sbin/opendkim-testmsg"
    if os.path.exists(exe):
        return exe
    if os.geteuid() == 0:
        subprocess.run(["apt-get", "install", "-y", "-q", "opendkim-tools"],
                       stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL,
                       stdin=subprocess.DEVNULL, timeout=600)
    return exe if os.path.exists(exe) else None


def opendkim_sign_rate(exe, keyfile, m, secs):
    """Signatures/s of opendkim-testmsg, one process per message."""
    def sign():
        r = subprocess.run([exe, "-d", "example.org", "-s", "bench",
                            "-k", keyfile], input=m, capture_output=True,
                           timeout=60)
        if r.returncode != 0 or b"DKIM-Signature" not in r.stdout:
            raise RuntimeError(r.stderr.decode(errors="replace"))
    try:
        return rate(sign, secs)
    except RuntimeError:
        return None


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--build", default="build")
    ap.add_argument("--seconds", type=float, default=2.0)
    a = ap.parse_args()
    results = {}
    exe = os.path.join(a.build, "bench", "dkim-bench")
    out = subprocess.run([exe, str(a.seconds)], capture_output=True,
                         text=True, check=True).stdout
    for line in out.splitlines():
        op, alg, size, _n, r = line.split()
        results[(op, alg, size)] = [float(r), None]
    odk = opendkim_ready()
    tmp = tempfile.mkdtemp(prefix="dkim-bench-")
    for ed in (True, False):
        alg = "ed25519" if ed else "rsa-2048"
        priv, txt = keys(ed)
        keyfile = os.path.join(tmp, alg + ".key")
        with open(keyfile, "wb") as f:
            # OpenDKIM reads PEM for RSA and the base64 seed for Ed25519
            f.write(priv if not ed else priv + b"\n")
        for size, name in ((4096, "4KiB"), (1 << 20, "1MiB")):
            m = message(size)
            algo = b"ed25519-sha256" if ed else b"rsa-sha256"

            def sign():
                return dkim.sign(m, b"bench", b"example.org", priv,
                                 canonicalize=(b"relaxed", b"relaxed"),
                                 signature_algorithm=algo)
            results[("sign", alg, name)][1] = rate(sign, a.seconds)
            results[("sign", alg, name)].append(
                opendkim_sign_rate(odk, keyfile, m, a.seconds)
                if odk else None)
            signed = sign() + m

            def verify():
                ok = dkim.verify(signed, dnsfunc=lambda n, timeout=5: txt)
                assert ok
            results[("verify", alg, name)][1] = rate(verify, a.seconds)
            results[("verify", alg, name)].append(None)
    shutil.rmtree(tmp, ignore_errors=True)
    print(f"{'operation':<28}{'tessera/s':>12}{'dkimpy/s':>12}"
          f"{'opendkim-testmsg/s':>20}")
    for (op, alg, size), (ours, py, odk_rate) in results.items():
        o = f"{odk_rate:.1f}" if odk_rate is not None else "n/a"
        print(f"{op + ' ' + alg + ' ' + size:<28}{ours:>12.1f}{py:>12.1f}"
              f"{o:>20}")


if __name__ == "__main__":
    sys.exit(main())
