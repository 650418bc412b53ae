"""The local control plane's PKI: a CA, the API server's serving certificate, one client
certificate per component, the service-account key pair, and the kubeconfigs that use them."""

from __future__ import annotations

import datetime as dt
import ipaddress
import json
from collections.abc import Sequence
from pathlib import Path

from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import rsa
from cryptography.x509.oid import NameOID


def _key() -> rsa.RSAPrivateKey:
    return rsa.generate_private_key(public_exponent=65537, key_size=2048)


def _write_key(key: rsa.RSAPrivateKey, path: Path) -> None:
    path.write_bytes(
        key.private_bytes(
            serialization.Encoding.PEM, serialization.PrivateFormat.TraditionalOpenSSL, serialization.NoEncryption()
        )
    )
    path.chmod(0o600)


def _cert(
    subject_cn: str,
    key: rsa.RSAPrivateKey,
    *,
    issuer: tuple[x509.Certificate, rsa.RSAPrivateKey] | None = None,
    org: str | None = None,
    sans: Sequence[str] = (),
    client: bool = False,
) -> x509.Certificate:
    attrs = [x509.NameAttribute(NameOID.COMMON_NAME, subject_cn)]
    if org:
        attrs.insert(0, x509.NameAttribute(NameOID.ORGANIZATION_NAME, org))
    name = x509.Name(attrs)
    now = dt.datetime.now(dt.UTC)
    builder = (
        x509.CertificateBuilder()
        .subject_name(name)
        .issuer_name(issuer[0].subject if issuer else name)
        .public_key(key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(now - dt.timedelta(minutes=5))
        .not_valid_after(now + dt.timedelta(days=30))
    )
    if issuer is None:
        builder = builder.add_extension(x509.BasicConstraints(ca=True, path_length=None), critical=True).add_extension(
            x509.KeyUsage(True, False, False, False, False, True, True, False, False), critical=True
        )
    else:
        usage = x509.oid.ExtendedKeyUsageOID.CLIENT_AUTH if client else x509.oid.ExtendedKeyUsageOID.SERVER_AUTH
        builder = builder.add_extension(x509.ExtendedKeyUsage([usage]), critical=False)
    if sans:
        entries: list[x509.GeneralName] = []
        for s in sans:
            try:
                entries.append(x509.IPAddress(ipaddress.ip_address(s)))
            except ValueError:
                entries.append(x509.DNSName(s))
        builder = builder.add_extension(x509.SubjectAlternativeName(entries), critical=False)
    return builder.sign(issuer[1] if issuer else key, hashes.SHA256())


def _write_cert(cert: x509.Certificate, path: Path) -> None:
    path.write_bytes(cert.public_bytes(serialization.Encoding.PEM))


def make_pki(pki: Path) -> None:
    """CA, apiserver serving cert, client certs per component, service-account key pair."""
    pki.mkdir(parents=True, exist_ok=True)
    ca_key = _key()
    ca = _cert("modelfreshness-local-ca", ca_key)
    _write_key(ca_key, pki / "ca.key")
    _write_cert(ca, pki / "ca.crt")
    sans = ["127.0.0.1", "localhost", "kubernetes", "kubernetes.default", "kubernetes.default.svc", "10.0.0.1"]
    srv_key = _key()
    _write_key(srv_key, pki / "apiserver.key")
    _write_cert(_cert("kube-apiserver", srv_key, issuer=(ca, ca_key), sans=sans), pki / "apiserver.crt")
    clients = {
        "admin": ("kubernetes-admin", "system:masters"),
        "controller-manager": ("system:kube-controller-manager", None),
        "scheduler": ("system:kube-scheduler", None),
        "kwok": ("kwok-controller", "system:masters"),
    }
    for name, (cn, org) in clients.items():
        k = _key()
        _write_key(k, pki / f"{name}.key")
        _write_cert(_cert(cn, k, issuer=(ca, ca_key), org=org, client=True), pki / f"{name}.crt")
    sa = _key()
    _write_key(sa, pki / "sa.key")
    (pki / "sa.pub").write_bytes(
        sa.public_key().public_bytes(serialization.Encoding.PEM, serialization.PublicFormat.SubjectPublicKeyInfo)
    )


def write_kubeconfig(path: Path, server: str, pki: Path, user: str) -> None:
    path.write_text(
        json.dumps(
            {
                "apiVersion": "v1",
                "kind": "Config",
                "clusters": [
                    {"name": "local", "cluster": {"server": server, "certificate-authority": str(pki / "ca.crt")}}
                ],
                "users": [
                    {
                        "name": user,
                        "user": {
                            "client-certificate": str(pki / f"{user}.crt"),
                            "client-key": str(pki / f"{user}.key"),
                        },
                    }
                ],
                "contexts": [{"name": "local", "context": {"cluster": "local", "user": user}}],
                "current-context": "local",
            },
            indent=2,
        )
    )
    path.chmod(0o600)
