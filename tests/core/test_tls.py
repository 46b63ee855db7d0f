"""The encrypted channel: a certificate per experiment, pinned by executors, nothing in clear text."""

import contextlib
import socket
import struct
import threading

import grpc
import pytest

from maggy import experiment
from maggy.ablation import AblationStudy, MaggyDataset
from maggy.core.endpoint import Endpoint
from maggy.core.rpc import TOKEN_METADATA_KEY, DriverClient, serve
from maggy.core.rpc.generated import maggy_pb2 as pb
from maggy.core.rpc.generated import maggy_pb2_grpc
from maggy.core.rpc.tls import make_certificate
from maggy.core.scheduler import TrialScheduler
from maggy.core.servicer import DriverServicer
from maggy.trial import make_spec

TOKEN = "tls-test-token-0123456789"


@pytest.fixture
def tls_server():
    cert = make_certificate()
    scheduler = TrialScheduler([make_spec(0)])
    with serve(DriverServicer(scheduler), TOKEN, certificate=cert) as (_, port):
        yield cert, port


def test_the_right_certificate_completes_a_call(tls_server):
    cert, port = tls_server
    with DriverClient(f"127.0.0.1:{port}", TOKEN, timeout=10, tls_cert=cert.cert_pem) as client:
        assert client.register(0, 0, "h", 1).executor_id.startswith("e")


def test_a_plain_text_client_cannot_complete_a_call(tls_server):
    _, port = tls_server
    with grpc.insecure_channel(f"127.0.0.1:{port}") as channel:
        stub = maggy_pb2_grpc.DriverStub(channel)
        # Rule: the server speaks TLS only; a client without it never gets an answer.
        with pytest.raises(grpc.RpcError) as info:
            stub.Register(pb.RegisterRequest(partition_id=0), metadata=((TOKEN_METADATA_KEY, TOKEN),), timeout=5)
        assert info.value.code() == grpc.StatusCode.UNAVAILABLE


def test_a_client_pinning_another_certificate_is_refused(tls_server):
    _, port = tls_server
    other = make_certificate()  # e.g. another experiment's, or an impostor's server
    with DriverClient(f"127.0.0.1:{port}", TOKEN, timeout=5, tls_cert=other.cert_pem) as client:
        # Rule: executors trust exactly their experiment's certificate.
        with pytest.raises(grpc.RpcError) as info:
            client.register(0, 0, "h", 1)
        assert info.value.code() == grpc.StatusCode.UNAVAILABLE


def test_private_key_is_not_in_what_executors_get():
    cert = make_certificate()
    assert b"PRIVATE KEY" not in cert.cert_pem and b"PRIVATE KEY" in cert.key_pem
    assert "key_pem" not in repr(cert)


@pytest.mark.parametrize("env, bind_port, address", [
    ({}, 0, "10.0.0.5:4000"),
    ({"MAGGY_DRIVER_ADDRESS": "gateway"}, 0, "gateway:4000"),
    ({"MAGGY_DRIVER_ADDRESS": "gateway:9000", "MAGGY_DRIVER_PORT": "7000"}, 7000, "gateway:9000"),
])
def test_endpoint_overrides(env, bind_port, address):
    endpoint = Endpoint.resolve("0.0.0.0", "10.0.0.5", env)
    assert endpoint.bind_port == bind_port and endpoint.address(4000) == address
    assert endpoint.is_remote and not Endpoint.resolve("127.0.0.1", "127.0.0.1", {}).is_remote


@pytest.mark.parametrize("env", [{"MAGGY_DRIVER_PORT": "http"}, {"MAGGY_DRIVER_ADDRESS": "h:99999"}])
def test_endpoint_overrides_are_checked(env):
    with pytest.raises(ValueError, match="MAGGY_DRIVER_"):
        Endpoint.resolve("0.0.0.0", "h", env)


# --------------------------------------------------------------------------- a real run, relayed


class _Relay:
    """A TCP relay on loopback that copies bytes both ways and keeps a copy of everything."""

    def __init__(self, target_port: int):
        self.target_port = target_port
        self.listener = socket.create_server(("127.0.0.1", 0))
        self.port = self.listener.getsockname()[1]
        self.seen = bytearray()
        self.connections = 0
        self._lock = threading.Lock()
        self._closed = False
        threading.Thread(target=self._accept, daemon=True).start()

    def _accept(self):
        while not self._closed:
            try:
                client, _ = self.listener.accept()
            except OSError:
                return
            upstream = socket.create_connection(("127.0.0.1", self.target_port))
            self.connections += 1
            for a, b in ((client, upstream), (upstream, client)):
                threading.Thread(target=self._pump, args=(a, b), daemon=True).start()

    def _pump(self, src, dst):
        with contextlib.suppress(OSError):
            while chunk := src.recv(65536):
                with self._lock:
                    self.seen += chunk
                dst.sendall(chunk)
        with contextlib.suppress(OSError):
            dst.shutdown(socket.SHUT_WR)

    def close(self):
        self._closed = True
        self.listener.close()


METRIC = 0.123456789012345


class Tagged(MaggyDataset):
    def __init__(self):
        self.feature = None

    def __len__(self):
        return 1

    def __getitem__(self, i):
        return 0

    def ablate_feature(self, feature):
        self.feature = feature


def train(dataset_function, reporter):
    offset = 0.0 if dataset_function().feature is None else 1.0
    reporter.broadcast(METRIC + offset, step=0)
    reporter.log("a log line that should not be readable on the wire")
    return METRIC + offset


def _free_port():
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def _relayed_run(tmp_path, monkeypatch, tls):
    server_port = _free_port()
    relay = _Relay(server_port)
    monkeypatch.setenv("MAGGY_DRIVER_PORT", str(server_port))
    monkeypatch.setenv("MAGGY_DRIVER_ADDRESS", f"127.0.0.1:{relay.port}")
    captured = {}
    real_serve = serve

    @contextlib.contextmanager
    def remember_token(servicer, token, **kwargs):  # the test needs the run's token to look for it
        captured["token"] = token
        with real_serve(servicer, token, **kwargs) as served:
            yield served

    monkeypatch.setattr("maggy.core.driver.serve", remember_token)
    study = AblationStudy(dataset_generator=Tagged)
    study.features.include("x")
    try:
        result = experiment.lagom(train_fn=train, ablation_study=study, name="tls", direction="min",
                                  experiment_dir=str(tmp_path), num_executors=1, es_policy="none",
                                  verbose=False, tls=tls)
    finally:
        relay.close()
    return result, bytes(relay.seen), relay.connections, captured["token"]


def test_relayed_traffic_holds_no_token_and_no_metric(spark, tmp_path, monkeypatch):
    result, seen, connections, token = _relayed_run(tmp_path, monkeypatch, tls=True)
    # The run went through the relay and worked.
    assert connections >= 1 and len(seen) > 1000
    assert sorted(result["trials"]["metric"]) == pytest.approx([METRIC, METRIC + 1.0])
    # Rule: with TLS nothing readable crosses the network: not the token, not a metric, not a log line.
    for secret in (token.encode(), struct.pack("<d", METRIC), struct.pack("<d", METRIC + 1.0), b"should not be readable"):
        assert secret not in seen


def test_the_relay_would_see_a_plain_text_run(spark, tmp_path, monkeypatch):
    # The control: without TLS the same relay sees the token and the metric, so the test above
    # would catch a leak.
    _, seen, _, token = _relayed_run(tmp_path, monkeypatch, tls=False)
    assert token.encode() in seen and struct.pack("<d", METRIC) in seen
