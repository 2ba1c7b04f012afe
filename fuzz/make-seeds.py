#!/usr/bin/env python3
"""Writes the seed corpus of the fuzz targets (fuzz/corpus/<target>/) from real material:
certificates, keys, keystores, DH parameters and OpenVPN keys made by openssl, OpenSSH keys
and certificates by ssh-keygen, htpasswd lines by htpasswd, KMIP responses as PyKMIP sends
them, and the examples/ resources. Re-run it to refresh the seeds (the material is random,
so every run changes them): python3 fuzz/make-seeds.py
"""
import glob
import os
import shutil
import struct
import subprocess
import tempfile

HERE = os.path.dirname(os.path.abspath(__file__))
CORPUS = os.path.join(HERE, "corpus")
PASSWORD = "fuzz-password"  # what the targets open keystores and encrypted keys with


def run(*args, cwd):
    subprocess.run(args, cwd=cwd, check=True, capture_output=True)


def read(path):
    with open(path, "rb") as f:
        return f.read()


def write(target, name, data):
    os.makedirs(os.path.join(CORPUS, target), exist_ok=True)
    with open(os.path.join(CORPUS, target, name), "wb") as f:
        f.write(data)


def frame(entries):
    """The framing of keysmith_fuzz::entries: u8 name length, name, u16 value length, value."""
    out = b""
    for name, value in entries:
        name = name.encode()
        out += bytes([len(name)]) + name + struct.pack(">H", len(value)) + value
    return out


# --- TTLV -----------------------------------------------------------------------------

def item(tag, typ, value):
    pad = (-len(value)) % 8
    return struct.pack(">I", tag)[1:] + bytes([typ]) + struct.pack(">I", len(value)) + value + b"\0" * pad


def structure(tag, *items):
    return item(tag, 0x01, b"".join(items))


def integer(tag, v):
    return item(tag, 0x02, struct.pack(">i", v))


def enum(tag, v):
    return item(tag, 0x05, struct.pack(">I", v))


def text(tag, s):
    return item(tag, 0x07, s.encode())


def byte_string(tag, b):
    return item(tag, 0x08, b)


def date_time(tag, v):
    return item(tag, 0x09, struct.pack(">q", v))


def response(operation, status, *rest):
    header = structure(0x42007A,
                       structure(0x420069, integer(0x42006A, 1), integer(0x42006B, 2)),
                       date_time(0x420092, 1_800_000_000),
                       integer(0x42000D, 1))
    batch = structure(0x42000F, enum(0x42005C, operation), enum(0x42007F, status), *rest)
    return structure(0x42007B, header, batch)


def payload(*items):
    return structure(0x42007C, *items)


def ttlv_seeds():
    uid = lambda u: text(0x420094, u)
    write("ttlv", "register", response(0x03, 0, payload(uid("1"))))
    write("ttlv", "locate", response(0x08, 0, payload(uid("7"), uid("8"))))
    write("ttlv", "locate-empty", response(0x08, 0))
    key_value = structure(0x420045, byte_string(0x420043, b"passphrase-of-twenty-chars"))
    key_block = structure(0x420040, enum(0x420042, 0x02), key_value)
    secret = structure(0x420085, enum(0x420086, 0x01), key_block)
    write("ttlv", "get", response(0x0A, 0, payload(enum(0x420057, 0x07), uid("1"), secret)))
    state = structure(0x420008, text(0x42000A, "State"), enum(0x42000B, 0x02))
    write("ttlv", "get-attributes", response(0x0B, 0, payload(uid("1"), state)))
    write("ttlv", "query", response(0x18, 0, payload(
        enum(0x42005C, 0x03), enum(0x42005C, 0x0A), enum(0x42005C, 0x14),
        text(0x42009D, "PyKMIP 0.11.0 Software Server"))))
    write("ttlv", "failure", response(0x14, 0x01, enum(0x42007E, 0x01),
                                      text(0x42007D, "Could not locate object: 9")))
    write("ttlv", "request", structure(0x420078,
        structure(0x420077, structure(0x420069, integer(0x42006A, 1), integer(0x42006B, 2)),
                  integer(0x42000D, 1)),
        structure(0x42000F, enum(0x42005C, 0x12), structure(0x420079, uid("1")))))


# --- material ---------------------------------------------------------------------------

def make_material(d):
    """Every kind of material, in directory d."""
    o = lambda *a: run("openssl", *a, cwd=d)
    o("req", "-x509", "-newkey", "ec", "-pkeyopt", "ec_paramgen_curve:P-256", "-nodes",
      "-keyout", "ca.key", "-out", "ca.crt", "-subj", "/CN=Fuzz CA", "-days", "3650",
      "-addext", "basicConstraints=critical,CA:TRUE", "-addext", "keyUsage=critical,keyCertSign,cRLSign")
    o("genpkey", "-algorithm", "EC", "-pkeyopt", "ec_paramgen_curve:P-256", "-out", "tls.key")
    o("req", "-new", "-key", "tls.key", "-subj", "/CN=fuzz/O=Fuzz", "-out", "tls.csr")
    with open(os.path.join(d, "ext"), "w") as f:
        f.write("subjectAltName=DNS:fuzz.example,IP:10.0.0.1,email:a@fuzz.example,URI:spiffe://fuzz\n"
                "keyUsage=critical,digitalSignature\nextendedKeyUsage=serverAuth,clientAuth\n"
                "authorityInfoAccess=OCSP;URI:http://ocsp.fuzz.example,caIssuers;URI:http://ca.fuzz.example/ca.crt\n"
                "crlDistributionPoints=URI:http://crl.fuzz.example/ca.crl\n")
    o("x509", "-req", "-in", "tls.csr", "-CA", "ca.crt", "-CAkey", "ca.key", "-CAcreateserial",
      "-days", "90", "-extfile", "ext", "-out", "tls.crt")
    o("genpkey", "-algorithm", "ED25519", "-out", "ed25519.key")
    o("genpkey", "-algorithm", "RSA", "-pkeyopt", "rsa_keygen_bits:1024", "-out", "rsa.key")
    o("pkey", "-in", "rsa.key", "-traditional", "-out", "rsa-pkcs1.key")
    o("ec", "-in", "tls.key", "-out", "sec1.key")
    o("pkey", "-in", "tls.key", "-pubout", "-outform", "DER", "-out", "spki.der")
    o("pkey", "-in", "tls.key", "-outform", "DER", "-out", "tls.key.der")
    o("pkcs12", "-export", "-in", "tls.crt", "-inkey", "tls.key", "-certfile", "ca.crt",
      "-name", "certificate", "-passout", "pass:" + PASSWORD, "-out", "keystore.p12")
    o("pkcs12", "-export", "-legacy", "-in", "tls.crt", "-inkey", "tls.key",
      "-passout", "pass:" + PASSWORD, "-out", "legacy.p12")
    o("pkcs12", "-export", "-nokeys", "-in", "ca.crt", "-passout", "pass:" + PASSWORD,
      "-out", "truststore.p12")
    o("dhparam", "-dsaparam", "-out", "dh-dsa.pem", "1024")
    o("genpkey", "-genparam", "-algorithm", "DH", "-pkeyopt", "group:ffdhe2048", "-out", "ffdhe.pem")
    o("pkeyparam", "-in", "ffdhe.pem", "-out", "dhparam.pem")
    run("openvpn", "--genkey", "secret", "static.key", cwd=d)
    s = lambda *a: run("ssh-keygen", "-q", *a, cwd=d)
    s("-t", "ed25519", "-N", "", "-C", "fuzz@keysmith", "-f", "id_ed25519")
    s("-t", "ecdsa", "-b", "384", "-N", "", "-f", "id_ecdsa")
    s("-t", "rsa", "-b", "1024", "-N", "", "-f", "id_rsa")
    s("-t", "ed25519", "-N", PASSWORD, "-a", "2", "-f", "id_encrypted")
    s("-t", "ed25519", "-N", "", "-f", "ssh_ca")
    s("-s", "ssh_ca", "-I", "fuzz-id", "-n", "fuzz,root", "-V", "+52w", "id_ed25519.pub")
    s("-s", "ssh_ca", "-h", "-I", "host", "-n", "fuzz.example", "id_ecdsa.pub")
    htpasswd = subprocess.run(["htpasswd", "-nbB", "-C", "4", "fuzz", PASSWORD],
                              check=True, capture_output=True).stdout.strip()
    with open(os.path.join(d, "htpasswd"), "wb") as f:
        f.write(htpasswd + b"\n")


def material_seeds(d):
    f = lambda name: read(os.path.join(d, name))
    seeds = {
        0: ["tls.crt", "ca.crt"], 1: ["tls.key", "ed25519.key", "rsa.key", "rsa-pkcs1.key", "sec1.key"],
        2: ["spki.der"], 3: ["id_ed25519.pub", "id_ecdsa.pub", "id_rsa.pub"],
        4: ["id_ed25519", "id_ecdsa", "id_rsa", "id_encrypted"], 5: ["dhparam.pem", "dh-dsa.pem"],
        6: ["static.key"], 7: ["keystore.p12", "legacy.p12", "truststore.p12"], 8: ["htpasswd"],
        10: ["id_ed25519-cert.pub", "id_ecdsa-cert.pub"],
    }
    for selector, names in seeds.items():
        for name in names:
            write("material", f"{selector:02}-{name}", bytes([selector]) + f(name))
    write("material", "00-bundle", b"\x00" + f("tls.crt") + f("ca.crt"))
    write("material", "01-key-and-cert", b"\x01" + f("tls.key") + f("tls.crt"))
    write("material", "01-der", b"\x01" + f("tls.key.der"))
    write("material", "09-passphrase", b"\x09" + b"twenty-two-characters!")
    write("material", "09-key-id", b"\x09" + b"0123456789abcdef" * 5)
    write("material", "11-chain", b"\x0b" + f("tls.crt") + f("ca.crt"))


def secret_seeds(d):
    f = lambda name: read(os.path.join(d, name))
    pw = [("@password", PASSWORD.encode())]
    write("secret", "tls", frame([("tls.crt", f("tls.crt")), ("tls.key", f("tls.key")),
                                  ("ca.crt", f("ca.crt")), ("@salt", b"c2FsdA")]))
    write("secret", "tls-keystores", frame([
        ("tls.crt", f("tls.crt")), ("tls.key", f("tls.key")), ("ca.crt", f("ca.crt")),
        ("keystore.p12", f("keystore.p12")), ("truststore.p12", f("truststore.p12")),
        ("tls.crt.der", f("tls.crt")), ("tls.key.der", f("tls.key.der"))] + pw))
    write("secret", "tls-previous", frame([
        ("tls.crt", f("tls.crt") + f("ca.crt")), ("tls.key", f("tls.key")),
        ("tls.crt.previous", f("ca.crt")), ("tls.key.previous", f("ca.key"))]))
    write("secret", "ssh", frame([
        ("ssh-privatekey", f("id_ed25519")), ("ssh-publickey", f("id_ed25519.pub")),
        ("ssh-certificate", f("id_ed25519-cert.pub")), ("known_hosts", b"fuzz.example " + f("id_ed25519.pub"))]))
    write("secret", "ssh-encrypted", frame([
        ("ssh-privatekey", f("id_encrypted")), ("ssh-publickey", f("id_encrypted.pub")),
        ("@passphrase", PASSWORD.encode())]))
    write("secret", "ssh-rsa", frame([("ssh-privatekey", f("id_rsa")), ("ssh-publickey", f("id_rsa.pub"))]))
    psk = os.urandom(32)
    write("secret", "psk", frame([("psk", psk), ("psk.hex", psk.hex().encode())]))
    write("secret", "dhparam", frame([("dhparam.pem", f("dhparam.pem"))]))
    write("secret", "openvpn", frame([("static.key", f("static.key"))]))
    write("secret", "remote-access", frame([("username", b"fuzz"), ("password", PASSWORD.encode()),
                                            ("htpasswd", f("htpasswd"))]))
    pub = subprocess.run(["openssl", "pkey", "-in", "tls.key", "-pubout"], cwd=d, check=True,
                         capture_output=True).stdout
    write("secret", "uftp", frame([("uftp.key", f("tls.key")), ("uftp.pub", pub)]))
    write("secret", "kms", frame([("passphrase", b"twenty-two-characters!"),
                                  ("key-id", b"0123456789abcdef" * 5), ("key-tag", b"fuzz"),
                                  ("passphrase.previous", b"another-passphrase-here")]))
    write("secret", "chain", frame([("chain.pem", f("tls.crt") + f("ca.crt")), ("tls.crt", f("tls.crt"))]))


def generate_seeds():
    examples = os.path.join(HERE, "..", "examples")
    for path in sorted(glob.glob(os.path.join(examples, "*", "*.yaml"))):
        name = os.path.basename(os.path.dirname(path)) + "-" + os.path.basename(path)
        write("generate", name, read(path))
    # Found by this target: a duration too long for kube's parser panicked (api/duration.rs).
    write("generate", "regression-duration-overflow.yaml", OVERFLOWING_DURATION)


OVERFLOWING_DURATION = b"""apiVersion: keysmith.dev/v1alpha1
kind: CertificateKeyPair
metadata:
  name: ca
spec:
  isCA: true
  commonName: CA
  duration: 876111111111111100h
---
apiVersion: keysmith.dev/v1alpha1
kind: KeyringSecret
metadata:
  name: psk
spec:
  type: psk
  params: {psk: {length: 32}}
  rotation: {every: 99999999999999999999h}
"""


def main():
    for target in ("ttlv", "material", "secret", "generate"):
        shutil.rmtree(os.path.join(CORPUS, target), ignore_errors=True)
    ttlv_seeds()
    with tempfile.TemporaryDirectory() as d:
        make_material(d)
        material_seeds(d)
        secret_seeds(d)
    generate_seeds()


if __name__ == "__main__":
    main()
