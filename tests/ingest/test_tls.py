"""Over TLS (an `mqtts://` broker URL) a worker stores what devices publish, as over plain TCP.

The broker is a private Mosquitto with a TLS listener as deploy/mosquitto/mosquitto-secure.conf
has one, on a certificate from a throwaway CA the worker trusts through SSL_CERT_FILE (the
standard OpenSSL variable Python's default certificate store reads)."""

from __future__ import annotations

import ipaddress
from collections.abc import Callable
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest
from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.x509.oid import NameOID

from devices.contract import topic_for
from pilotlab.embedded.broker import EmbeddedBroker
from pilotlab.embedded.ports import free_port, wait_until_listening
from tests.conftest import requires_mosquitto
from tests.ingest import payloads
from tests.support import RegisteredPilot, count_rows, publish, wait_until

MESSAGES = 600  # TLS records and MQTT packets then straddle the worker's reads


def _write_pem(path: Path, data: bytes) -> Path:
    path.write_bytes(data)
    return path


def _certificates(directory: Path) -> tuple[Path, Path, Path]:
    """(CA certificate, server certificate for 127.0.0.1, server key), all PEM."""
    now = datetime.now(UTC)

    def certificate(subject: str, key: ec.EllipticCurvePrivateKey, issuer: str, signer: ec.EllipticCurvePrivateKey,
                    ca: bool) -> x509.Certificate:
        builder = (x509.CertificateBuilder()
                   .subject_name(x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, subject)]))
                   .issuer_name(x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, issuer)]))
                   .public_key(key.public_key()).serial_number(x509.random_serial_number())
                   .not_valid_before(now - timedelta(minutes=5)).not_valid_after(now + timedelta(days=1))
                   .add_extension(x509.BasicConstraints(ca=ca, path_length=None), critical=True))
        if not ca:
            builder = builder.add_extension(
                x509.SubjectAlternativeName([x509.IPAddress(ipaddress.ip_address("127.0.0.1"))]), critical=False)
        return builder.sign(signer, hashes.SHA256())

    ca_key, server_key = ec.generate_private_key(ec.SECP256R1()), ec.generate_private_key(ec.SECP256R1())
    ca = certificate("pilotlab test CA", ca_key, "pilotlab test CA", ca_key, ca=True)
    server = certificate("127.0.0.1", server_key, "pilotlab test CA", ca_key, ca=False)
    return (
        _write_pem(directory / "ca.pem", ca.public_bytes(serialization.Encoding.PEM)),
        _write_pem(directory / "server.pem", server.public_bytes(serialization.Encoding.PEM)),
        _write_pem(directory / "server.key", server_key.private_bytes(
            serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8, serialization.NoEncryption())),
    )


class TlsBroker(EmbeddedBroker):
    """The tuned embedded Mosquitto plus a TLS listener on `tls_port`."""

    def __init__(self, data_dir: Path, certificates: tuple[Path, Path, Path]) -> None:
        super().__init__(data_dir, prefer="mosquitto")
        self.certificates = certificates
        self.tls_port = free_port()

    def _mosquitto_args(self) -> list[str]:
        args = super()._mosquitto_args()
        ca, cert, key = self.certificates
        conf = Path(args[-1])
        conf.write_text(conf.read_text(encoding="utf-8")
                        + f"listener {self.tls_port} 127.0.0.1\ncafile {ca}\ncertfile {cert}\nkeyfile {key}\n",
                        encoding="utf-8")
        return args


@pytest.fixture
def tls_broker(tmp_path: Path) -> object:
    broker = TlsBroker(tmp_path / "tls-broker", _certificates(tmp_path))
    broker.start()
    wait_until_listening(broker.tls_port, what="the TLS listener", timeout=10)
    yield broker
    broker.stop()


@requires_mosquitto
def test_a_worker_on_an_mqtts_url_stores_every_message(
    tls_broker: TlsBroker, pilot: RegisteredPilot, thread_worker: Callable, database_url: str,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.setenv("SSL_CERT_FILE", str(tls_broker.certificates[0]))
    worker = thread_worker(mqtt_url=f"mqtts://127.0.0.1:{tls_broker.tls_port}")
    assert worker.worker.source.endpoint.tls

    topic = topic_for(pilot.pilot_id, pilot.switch_id, "telemetry")
    publish(tls_broker.url, [(topic, payloads.encode(payloads.switch(seq=n))) for n in range(MESSAGES)])

    wait_until(lambda: count_rows(database_url, "SELECT count(*) FROM telemetry WHERE device_id = %s",
                                  (pilot.switch_id,)) == MESSAGES, 20, what=f"{MESSAGES} readings")
    stats = worker.stop()
    assert (stats.received, stats.stored, sum(stats.dead_lettered.values())) == (MESSAGES, MESSAGES, 0)
