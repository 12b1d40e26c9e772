"""HTTPS for the phone: a self-signed certificate made on first run and kept for later runs.

Why: phones give the microphone (and the wake lock) only to secure pages, and a LAN address is
not ``localhost``. The certificate names every address the URL may carry; when the machine's LAN
address changes it is made again, so the printed URL always matches it.
"""

from __future__ import annotations

import datetime as dt
import ipaddress
import logging
import os
import socket
from pathlib import Path

from face.state_files import PRIVATE_DIR, PRIVATE_FILE, write_private
from track2_voice.common.errors import UserError

log = logging.getLogger(__name__)

CERT_NAME = "phone-cert.pem"
KEY_NAME = "phone-key.pem"
VALID_DAYS = 825  # the longest validity Apple devices accept for a TLS server certificate
RENEW_BEFORE_DAYS = 30


class TLSError(UserError):
    """A certificate problem the user can fix (paths, permissions)."""


def ensure_self_signed(
    state_dir: str | Path, hosts: list[str], key: str = "state_dir"
) -> tuple[Path, Path]:
    """Return (certfile, keyfile) under ``state_dir``, making them if missing, expiring soon,
    or not naming one of ``hosts`` (IP addresses or DNS names)."""
    d = Path(state_dir).expanduser()
    try:
        d.mkdir(parents=True, exist_ok=True, mode=PRIVATE_DIR)
    except OSError as e:
        raise TLSError(f"{key}: cannot create {d} ({e.strerror})") from e
    cert, pem_key = d / CERT_NAME, d / KEY_NAME
    if cert.exists() and pem_key.exists() and _still_good(cert, hosts):
        for f in (cert, pem_key):  # one made by an older version may be 0644
            os.chmod(f, PRIVATE_FILE)
        return cert, pem_key
    try:
        _make(cert, pem_key, hosts)
    except OSError as e:
        raise TLSError(f"{key}: cannot write the certificate in {d} ({e.strerror})") from e
    log.info("made a self-signed certificate for %s in %s", ", ".join(hosts), d)
    return cert, pem_key


def _still_good(cert_path: Path, hosts: list[str]) -> bool:
    from cryptography import x509

    try:
        cert = x509.load_pem_x509_certificate(cert_path.read_bytes())
        san = cert.extensions.get_extension_for_class(x509.SubjectAlternativeName).value
    except Exception:
        return False
    names = {str(n) for n in san.get_values_for_type(x509.DNSName)}
    names |= {str(a) for a in san.get_values_for_type(x509.IPAddress)}
    left = cert.not_valid_after_utc - dt.datetime.now(dt.timezone.utc)
    return set(hosts) <= names and left > dt.timedelta(days=RENEW_BEFORE_DAYS)


def _make(cert_path: Path, key_path: Path, hosts: list[str]) -> None:
    from cryptography import x509
    from cryptography.hazmat.primitives import hashes, serialization
    from cryptography.hazmat.primitives.asymmetric import ec
    from cryptography.x509.oid import ExtendedKeyUsageOID, NameOID

    key = ec.generate_private_key(ec.SECP256R1())
    alt: list[x509.GeneralName] = []
    for h in dict.fromkeys(hosts):
        try:
            alt.append(x509.IPAddress(ipaddress.ip_address(h)))
        except ValueError:
            alt.append(x509.DNSName(h))
    name = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, "creature (self-signed)")])
    now = dt.datetime.now(dt.timezone.utc)
    cert = (
        x509.CertificateBuilder()
        .subject_name(name)
        .issuer_name(name)
        .public_key(key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(now - dt.timedelta(minutes=5))
        .not_valid_after(now + dt.timedelta(days=VALID_DAYS))
        .add_extension(x509.SubjectAlternativeName(alt), critical=False)
        .add_extension(x509.BasicConstraints(ca=False, path_length=None), critical=True)
        .add_extension(x509.ExtendedKeyUsage([ExtendedKeyUsageOID.SERVER_AUTH]), critical=False)
        .sign(key, hashes.SHA256())
    )
    key_bytes = key.private_bytes(
        serialization.Encoding.PEM,
        serialization.PrivateFormat.PKCS8,
        serialization.NoEncryption(),
    )
    write_private(key_path, key_bytes)
    write_private(cert_path, cert.public_bytes(serialization.Encoding.PEM))


def default_hosts(lan_ip: str) -> list[str]:
    """Every name a phone or this machine may use to reach the server."""
    hosts = ["localhost", "127.0.0.1", lan_ip]
    try:
        hosts.append(socket.gethostname())
    except OSError:
        pass
    return list(dict.fromkeys(h for h in hosts if h))
