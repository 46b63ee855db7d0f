"""A certificate per experiment, so the driver's gRPC channel is encrypted and pinned.

The driver creates a fresh key pair and a self-signed certificate for every run. The private
key never leaves the driver's process; the certificate (public) travels to the executors
with the token, in the Spark task's closure. An executor trusts exactly that certificate: it
is the only root its channel accepts, and the name checked is a fixed one that only this
certificate carries (:data:`SERVER_NAME`), so the address executors dial (an IP, a proxy, a
NAT'ed host name) does not matter, and no other certificate, however well signed, will do.
"""

from __future__ import annotations

import dataclasses
import datetime
import ipaddress

__all__ = ["ExperimentCertificate", "SERVER_NAME", "make_certificate", "server_credentials", "channel_credentials", "channel_options"]

#: The name in the certificate and the name executors check it against (not a DNS name:
#: the address executors dial is whatever Spark and the config say it is).
SERVER_NAME = "maggy-driver.invalid"

#: How long a certificate is valid. An experiment that runs longer keeps working: the TLS
#: handshake happens when a channel opens, and executors open theirs when their task starts.
_VALIDITY = datetime.timedelta(days=30)

#: Clock skew between driver and executors tolerated at the start of validity.
_SKEW = datetime.timedelta(hours=1)


@dataclasses.dataclass(frozen=True)
class ExperimentCertificate:
    """The driver's key and certificate for one experiment, PEM-encoded.

    Attributes:
        cert_pem: the self-signed certificate; give it to executors (it is public).
        key_pem: the private key; keep it on the driver.
    """

    cert_pem: bytes
    key_pem: bytes = dataclasses.field(repr=False)


def make_certificate() -> ExperimentCertificate:
    """Creates a new P-256 key and a self-signed certificate for :data:`SERVER_NAME`.

    Takes a few milliseconds (an EC key, not RSA).

    Example:
        >>> cert = make_certificate()
        >>> cert.cert_pem.startswith(b"-----BEGIN CERTIFICATE-----")
        True
    """
    from cryptography import x509
    from cryptography.hazmat.primitives import hashes, serialization
    from cryptography.hazmat.primitives.asymmetric import ec
    from cryptography.x509.oid import NameOID

    key = ec.generate_private_key(ec.SECP256R1())
    name = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, SERVER_NAME)])
    now = datetime.datetime.now(datetime.timezone.utc)
    cert = (
        x509.CertificateBuilder()
        .subject_name(name)
        .issuer_name(name)
        .public_key(key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(now - _SKEW)
        .not_valid_after(now + _VALIDITY)
        .add_extension(
            x509.SubjectAlternativeName(
                [x509.DNSName(SERVER_NAME), x509.IPAddress(ipaddress.ip_address("127.0.0.1"))]
            ),
            critical=False,
        )
        # A CA flag lets gRPC's TLS stack accept the certificate as its own root of trust.
        .add_extension(x509.BasicConstraints(ca=True, path_length=0), critical=True)
        .sign(key, hashes.SHA256())
    )
    return ExperimentCertificate(
        cert_pem=cert.public_bytes(serialization.Encoding.PEM),
        key_pem=key.private_bytes(
            serialization.Encoding.PEM,
            serialization.PrivateFormat.PKCS8,
            serialization.NoEncryption(),
        ),
    )


def server_credentials(cert: ExperimentCertificate):
    """gRPC server credentials that present ``cert``."""
    import grpc

    return grpc.ssl_server_credentials([(cert.key_pem, cert.cert_pem)])


def channel_credentials(cert_pem: bytes):
    """gRPC channel credentials that trust ``cert_pem`` and nothing else."""
    import grpc

    return grpc.ssl_channel_credentials(root_certificates=cert_pem)


def channel_options() -> list[tuple[str, str]]:
    """Channel options that check the server's certificate against :data:`SERVER_NAME`."""
    return [("grpc.ssl_target_name_override", SERVER_NAME), ("grpc.default_authority", SERVER_NAME)]
