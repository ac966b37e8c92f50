"""Fixtures for the real-kube-apiserver tests (make e2e): the built components, a test PKI,
one etcd for the session, and factories for kube-apiservers and audit receivers that stop
whatever they started."""
from __future__ import annotations

import pytest
from bundles import KUBERNETES
from cluster import ApiServer, Etcd, Identity, Kubectl, Pki, Receiver

import realk8s


@pytest.fixture(scope="session")
def binaries() -> dict:
    """kube-apiserver, kubectl (the pinned release) and etcd, built or a skip naming the reason."""
    return {"kube-apiserver": realk8s.binary("kube-apiserver", KUBERNETES),
            "kubectl": realk8s.binary("kubectl", KUBERNETES),
            "etcd": realk8s.binary("etcd", realk8s.pinned("ETCD"))}


class Identities:
    """Who the tests act as: client certificates carry user (CN) and groups (O)."""

    def __init__(self, pki: Pki) -> None:
        self.admin = Identity("admin", *pki.issue("admin", "e2e-admin", ["system:masters"]), ca=pki.ca)
        self.alice = Identity("alice", *pki.issue("alice", "alice"), ca=pki.ca)
        self.bob = Identity("bob", *pki.issue("bob", "bob", ["e2e-devs"]), ca=pki.ca)
        self.burst = Identity("burst", *pki.issue("burst", "e2e-burst", ["system:masters"]), ca=pki.ca)
        self.anonymous = Identity("anonymous", ca=pki.ca)
        self.bad_token = Identity("bad-token", token="not-a-valid-token", ca=pki.ca)


@pytest.fixture(scope="session")
def pki(tmp_path_factory) -> Pki:
    return Pki(tmp_path_factory.mktemp("pki"))


@pytest.fixture(scope="session")
def who(pki) -> Identities:
    return Identities(pki)


@pytest.fixture(scope="session")
def etcd(binaries, tmp_path_factory):
    server = Etcd(binaries["etcd"], tmp_path_factory.mktemp("etcd"))
    yield server
    server.stop()


@pytest.fixture
def receiver(pki):
    """receiver(mtls=False, token=None): a local HTTPS audit receiver signed by the test CA."""
    started: list[Receiver] = []
    cert, key = pki.root / "receiver.pem", pki.root / "receiver-key.pem"
    if not cert.exists():
        pki.issue("receiver", "receiver", server=True)

    def start(mtls: bool = False, token: str | None = None) -> Receiver:
        started.append(Receiver(cert, key, client_ca=pki.ca if mtls else None, token=token))
        return started[-1]

    yield start
    for server in started:
        server.stop()


@pytest.fixture
def apiserver(binaries, etcd, pki, who, tmp_path):
    """apiserver(audit_flags, name, ready=True, version) -> (ApiServer, None once ready (or with
    ready=False, once serving) or its exit code)."""
    started: list[ApiServer] = []

    def start(audit_flags, name: str = "apiserver", ready: bool = True, version: str = KUBERNETES):
        binary = binaries["kube-apiserver"] if version == KUBERNETES else realk8s.binary("kube-apiserver", version)
        server = ApiServer(binary, tmp_path / name, etcd, pki, list(audit_flags))
        started.append(server)
        return server, server.wait(who.admin, ready=ready)

    yield start
    for server in started:
        server.stop()


@pytest.fixture
def kubectl_for(binaries, tmp_path):
    return lambda server: Kubectl(binaries["kubectl"], server, tmp_path / f"kubectl-{server.port}")
