"""``webhook test`` against a real HTTPS receiver on loopback (Python ssl, a CA made here)."""
from __future__ import annotations

import base64
import datetime
import http.server
import json
import socket
import ssl
import threading
from pathlib import Path

import pytest
import yaml

from conftest import one_error_line, run_cli

x509 = pytest.importorskip("cryptography.x509")
import ipaddress  # noqa: E402

from cryptography.hazmat.primitives import hashes, serialization  # noqa: E402
from cryptography.hazmat.primitives.asymmetric import ec  # noqa: E402
from cryptography.x509.oid import ExtendedKeyUsageOID, NameOID  # noqa: E402

TOKEN = "s3cr3t-t0ken-value-4711"


class CA:
    """A test certificate authority that issues server and client certificates into ``root``."""

    def __init__(self, root: Path, name: str) -> None:
        self.root, self.name = root, name
        self.key = ec.generate_private_key(ec.SECP256R1())
        subject = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, name)])
        now = datetime.datetime.now(datetime.timezone.utc)
        self.cert = (x509.CertificateBuilder().subject_name(subject).issuer_name(subject)
                     .public_key(self.key.public_key()).serial_number(x509.random_serial_number())
                     .not_valid_before(now - datetime.timedelta(days=1))
                     .not_valid_after(now + datetime.timedelta(days=30))
                     .add_extension(x509.BasicConstraints(ca=True, path_length=None), critical=True)
                     .add_extension(x509.KeyUsage(False, False, False, False, False, True, True, False, False),
                                    critical=True)
                     .sign(self.key, hashes.SHA256()))
        self.pem = self.cert.public_bytes(serialization.Encoding.PEM)
        self.path = root / f"{name}.pem"
        self.path.write_bytes(self.pem)

    def issue(self, name: str, *, dns=(), ips=(), client=False, expired=False) -> tuple:
        key = ec.generate_private_key(ec.SECP256R1())
        now = datetime.datetime.now(datetime.timezone.utc)
        start, end = ((now - datetime.timedelta(days=10), now - datetime.timedelta(days=1)) if expired
                      else (now - datetime.timedelta(hours=1), now + datetime.timedelta(days=10)))
        builder = (x509.CertificateBuilder()
                   .subject_name(x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, name)]))
                   .issuer_name(self.cert.subject).public_key(key.public_key())
                   .serial_number(x509.random_serial_number()).not_valid_before(start).not_valid_after(end)
                   .add_extension(x509.ExtendedKeyUsage([ExtendedKeyUsageOID.CLIENT_AUTH if client
                                                         else ExtendedKeyUsageOID.SERVER_AUTH]), critical=False))
        sans = [x509.DNSName(d) for d in dns] + [x509.IPAddress(ipaddress.ip_address(i)) for i in ips]
        if sans:
            builder = builder.add_extension(x509.SubjectAlternativeName(sans), critical=False)
        cert = builder.sign(self.key, hashes.SHA256())
        cert_path, key_path = self.root / f"{name}.pem", self.root / f"{name}-key.pem"
        cert_path.write_bytes(cert.public_bytes(serialization.Encoding.PEM))
        key_path.write_bytes(key.private_bytes(serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8,
                                               serialization.NoEncryption()))
        return cert_path, key_path


class Receiver:
    """A loopback HTTP(S) audit receiver that records each request and answers ``status``."""

    def __init__(self, cert=None, key=None, client_ca=None, status=200) -> None:
        self.requests: list = []
        self.status = status
        owner = self

        class Handler(http.server.BaseHTTPRequestHandler):
            def do_POST(self) -> None:
                length = int(self.headers.get("Content-Length") or 0)
                owner.requests.append({"path": self.path, "headers": dict(self.headers),
                                       "body": self.rfile.read(length),
                                       "peer_cert": self.connection.getpeercert()
                                       if isinstance(self.connection, ssl.SSLSocket) else None})
                payload = b'{"error":"receiver failure"}' if owner.status >= 300 else b"{}"
                self.send_response(owner.status)
                self.send_header("Content-Type", "application/json")
                self.send_header("Content-Length", str(len(payload)))
                self.end_headers()
                self.wfile.write(payload)

            def log_message(self, *args) -> None:
                pass

        self.server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.server.daemon_threads = True
        if cert:
            context = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
            context.load_cert_chain(str(cert), str(key))
            if client_ca:
                context.verify_mode = ssl.CERT_REQUIRED
                context.load_verify_locations(cafile=str(client_ca))
            self.server.socket = context.wrap_socket(self.server.socket, server_side=True)
        self.port = self.server.server_address[1]
        self.thread = threading.Thread(target=self.server.serve_forever, daemon=True)
        self.thread.start()

    def stop(self) -> None:
        self.server.shutdown()
        self.server.server_close()


@pytest.fixture
def pki(tmp_path):
    ca = CA(tmp_path, "receiver-ca")
    other = CA(tmp_path, "other-ca")
    clients = CA(tmp_path, "client-ca")
    server = ca.issue("receiver", dns=["localhost", "audit.example.test"], ips=["127.0.0.1"])
    return {"ca": ca, "other": other, "clients": clients, "server": server,
            "expired": ca.issue("expired", ips=["127.0.0.1"], expired=True),
            "client": clients.issue("kube-apiserver", client=True), "dir": tmp_path}


@pytest.fixture
def receivers():
    started: list = []

    def start(**kwargs) -> Receiver:
        receiver = Receiver(**kwargs)
        started.append(receiver)
        return receiver

    yield start
    for receiver in started:
        receiver.stop()


def b64(data: bytes) -> str:
    return base64.b64encode(data).decode()


def kubeconfig(path: Path, server: str, cluster: dict | None = None, user: dict | None = None) -> Path:
    """A kubeconfig in the shape generate writes (kube-apiserver reads the current context)."""
    path.write_text(yaml.safe_dump({
        "apiVersion": "v1", "kind": "Config", "preferences": {},
        "clusters": [{"name": "audit-webhook", "cluster": {"server": server, **(cluster or {})}}],
        "users": [{"name": "kube-apiserver", "user": user or {}}],
        "contexts": [{"name": "audit-webhook", "context": {"cluster": "audit-webhook", "user": "kube-apiserver"}}],
        "current-context": "audit-webhook"}))
    return path


def test_delivers_an_eventlist_over_verified_tls_as_kube_apiserver_does(pki, receivers, tmp_path):
    receiver = receivers(cert=pki["server"][0], key=pki["server"][1])
    config = kubeconfig(tmp_path / "w.yaml", f"https://127.0.0.1:{receiver.port}/k8s-audit/?x=1#f",
                        {"certificate-authority-data": b64(pki["ca"].pem)})
    result = run_cli("webhook", "test", config)
    assert result.returncode == 0, result.stdout + result.stderr
    assert f"POST https://127.0.0.1:{receiver.port}/k8s-audit (1 event" in result.stdout
    assert ": 200 OK in " in result.stdout and "accepted" in result.stdout
    (request,) = receiver.requests
    # client-go: path.Join cleans the trailing slash, the query and fragment are dropped
    assert request["path"] == "/k8s-audit"
    assert request["headers"]["Content-Type"] == "application/json"
    assert "Authorization" not in request["headers"]
    body = json.loads(request["body"])
    assert body["kind"] == "EventList" and body["apiVersion"] == "audit.k8s.io/v1"
    (event,) = body["items"]
    assert event["stage"] == "ResponseComplete" and event["annotations"] == {"kubeadm-audit.dev/webhook-test": "true"}
    assert "kind" not in event and len(event["auditID"]) == 36


def test_mtls_and_a_bearer_token_from_files_relative_to_the_kubeconfig(pki, receivers, tmp_path):
    receiver = receivers(cert=pki["server"][0], key=pki["server"][1], client_ca=pki["clients"].path)
    (tmp_path / "token").write_text(TOKEN + "\n")
    cert, key = pki["client"]
    config = kubeconfig(tmp_path / "w.yaml", f"https://localhost:{receiver.port}",
                        {"certificate-authority": pki["ca"].path.name},
                        {"client-certificate": cert.name, "client-key": key.name, "tokenFile": "token"})
    result = run_cli("webhook", "test", config, "--events", "3", "-o", "json")
    assert result.returncode == 0, result.stdout + result.stderr
    report = json.loads(result.stdout)
    assert report["delivered"] and report["status"] == 200 and report["events"] == 3
    assert report["auth"] == "bearer token from tokenFile" and report["latencyMs"] > 0
    (request,) = receiver.requests
    assert request["path"] == "/"
    assert request["headers"]["Authorization"] == f"Bearer {TOKEN}"
    assert dict(x[0] for x in request["peer_cert"]["subject"])["commonName"] == "kube-apiserver"
    assert len(json.loads(request["body"])["items"]) == 3
    assert TOKEN not in result.stdout + result.stderr


def test_mtls_required_but_no_client_certificate(pki, receivers, tmp_path):
    receiver = receivers(cert=pki["server"][0], key=pki["server"][1], client_ca=pki["clients"].path)
    config = kubeconfig(tmp_path / "w.yaml", f"https://127.0.0.1:{receiver.port}",
                        {"certificate-authority-data": b64(pki["ca"].pem)}, {"token": TOKEN})
    result = run_cli("webhook", "test", config)
    assert result.returncode == 1, result.stdout + result.stderr
    assert "client certificate required" in result.stdout
    assert TOKEN not in result.stdout + result.stderr
    assert receiver.requests == []


def test_client_certificate_from_an_untrusted_ca(pki, receivers, tmp_path):
    receiver = receivers(cert=pki["server"][0], key=pki["server"][1], client_ca=pki["clients"].path)
    cert, key = pki["other"].issue("stranger", client=True)
    config = kubeconfig(tmp_path / "w.yaml", f"https://127.0.0.1:{receiver.port}",
                        {"certificate-authority-data": b64(pki["ca"].pem)},
                        {"client-certificate-data": b64(cert.read_bytes()), "client-key-data": b64(key.read_bytes())})
    result = run_cli("webhook", "test", config)
    assert result.returncode == 1 and "client certificate refused" in result.stdout, result.stdout
    assert b64(key.read_bytes())[:40] not in result.stdout + result.stderr


def test_wrong_ca_is_an_unknown_authority(pki, receivers, tmp_path):
    receiver = receivers(cert=pki["server"][0], key=pki["server"][1])
    config = kubeconfig(tmp_path / "w.yaml", f"https://127.0.0.1:{receiver.port}",
                        {"certificate-authority-data": b64(pki["other"].pem)})
    result = run_cli("webhook", "test", config)
    assert result.returncode == 1
    assert "not delivered: certificate: unknown authority" in result.stdout
    assert "clusters[0].cluster.certificate-authority-data" in result.stdout
    assert receiver.requests == []


def test_wrong_server_name_and_tls_server_name_fixing_it(pki, receivers, tmp_path):
    receiver = receivers(cert=pki["server"][0], key=pki["server"][1])
    ca = {"certificate-authority-data": b64(pki["ca"].pem)}
    wrong = kubeconfig(tmp_path / "w.yaml", f"https://127.0.0.1:{receiver.port}",
                       {**ca, "tls-server-name": "siem.example.test"})
    result = run_cli("webhook", "test", wrong)
    assert result.returncode == 1
    assert "wrong server name" in result.stdout and "'siem.example.test' (tls-server-name)" in result.stdout
    right = kubeconfig(tmp_path / "r.yaml", f"https://127.0.0.1:{receiver.port}",
                       {**ca, "tls-server-name": "audit.example.test"})
    assert run_cli("webhook", "test", right).returncode == 0
    # the URL's host is what is checked without tls-server-name
    ip_only = pki["ca"].issue("ip-only", ips=["127.0.0.2"])
    other = receivers(cert=ip_only[0], key=ip_only[1])
    mismatch = run_cli("webhook", "test", kubeconfig(tmp_path / "m.yaml", f"https://127.0.0.1:{other.port}", ca))
    assert mismatch.returncode == 1 and "not valid for '127.0.0.1' (the server URL's host)" in mismatch.stdout


def test_expired_certificate(pki, receivers, tmp_path):
    receiver = receivers(cert=pki["expired"][0], key=pki["expired"][1])
    config = kubeconfig(tmp_path / "w.yaml", f"https://127.0.0.1:{receiver.port}",
                        {"certificate-authority-data": b64(pki["ca"].pem)})
    result = run_cli("webhook", "test", config)
    assert result.returncode == 1 and "certificate: expired" in result.stdout, result.stdout


def test_insecure_skip_tls_verify_delivers_to_any_certificate(pki, receivers, tmp_path):
    receiver = receivers(cert=pki["expired"][0], key=pki["expired"][1])
    config = kubeconfig(tmp_path / "w.yaml", f"127.0.0.1:{receiver.port}", {"insecure-skip-tls-verify": True})
    result = run_cli("webhook", "test", config)   # host:port with a TLS setting means https, as client-go
    assert result.returncode == 0, result.stdout
    assert f"POST https://127.0.0.1:{receiver.port}/ " in result.stdout


def test_plain_http_and_a_500_answer(receivers, tmp_path):
    receiver = receivers(status=500)
    config = kubeconfig(tmp_path / "w.yaml", f"http://127.0.0.1:{receiver.port}/a//b/../events",
                        user={"token": TOKEN})
    result = run_cli("webhook", "test", config)
    assert result.returncode == 1
    assert "500 Internal Server Error" in result.stdout and "refused" in result.stdout
    assert "retries with backoff" in result.stdout
    (request,) = receiver.requests
    assert request["path"] == "/a/events" and request["headers"]["Authorization"] == f"Bearer {TOKEN}"
    assert TOKEN not in result.stdout + result.stderr
    # a bare host:port without TLS settings is plain http, as client-go does
    bare = run_cli("webhook", "test", kubeconfig(tmp_path / "b.yaml", f"127.0.0.1:{receiver.port}"))
    assert f"POST http://127.0.0.1:{receiver.port}/ " in bare.stdout


def test_https_kubeconfig_against_a_plain_http_receiver(pki, receivers, tmp_path):
    receiver = receivers()
    config = kubeconfig(tmp_path / "w.yaml", f"https://127.0.0.1:{receiver.port}",
                        {"certificate-authority-data": b64(pki["ca"].pem)})
    result = run_cli("webhook", "test", config)
    assert result.returncode == 1 and "does not speak TLS" in result.stdout, result.stdout


def test_connection_refused(tmp_path):
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        port = probe.getsockname()[1]
    result = run_cli("webhook", "test", kubeconfig(tmp_path / "w.yaml", f"http://127.0.0.1:{port}"))
    assert result.returncode == 1
    assert f"connection refused: nothing listens on 127.0.0.1 port {port}" in result.stdout


def test_the_bundle_kubeconfig_generate_writes_is_what_is_tested(pki, receivers, tmp_path):
    receiver = receivers(cert=pki["server"][0], key=pki["server"][1], client_ca=pki["clients"].path)
    cert, key = pki["client"]
    out = tmp_path / "bundle"
    generated = run_cli("generate", "--webhook-server", f"https://127.0.0.1:{receiver.port}/audit",
                        "--ca-file", pki["ca"].path, "--client-certificate", cert, "--client-key", key, "--out", out)
    assert generated.returncode == 0, generated.stderr
    result = run_cli("webhook", "test", out / "audit-webhook.yaml")
    assert result.returncode == 0, result.stdout + result.stderr
    assert receiver.requests[0]["path"] == "/audit"


@pytest.mark.parametrize("change, field", [
    (lambda c: c.pop("current-context"), "current-context"),
    (lambda c: c.update({"current-context": "nope"}), "current-context"),
    (lambda c: c["clusters"][0]["cluster"].pop("server"), "clusters[0].cluster.server"),
    (lambda c: c["clusters"][0]["cluster"].update({"certificate-authority-data": "%%%"}),
     "clusters[0].cluster.certificate-authority-data"),
    (lambda c: c["clusters"][0]["cluster"].update({"certificate-authority": "missing.pem"}),
     "clusters[0].cluster.certificate-authority"),
    (lambda c: c["clusters"][0]["cluster"].update({"certificate-authority-data": b64(b"x"),
                                                   "insecure-skip-tls-verify": True}),
     "clusters[0].cluster.insecure-skip-tls-verify"),
    (lambda c: c["users"][0]["user"].update({"client-certificate-data": b64(b"x")}),
     "users[0].user.client-key"),
    (lambda c: c["users"][0]["user"].update({"token": TOKEN, "username": "u", "password": TOKEN}),
     "users[0].user.token"),
    (lambda c: c["users"][0]["user"].update({"tokenFile": "no-such-token"}), "users[0].user.tokenFile"),
    (lambda c: c["contexts"][0]["context"].update({"user": "ghost"}), "contexts[0].context.user"),
])
def test_a_bad_kubeconfig_is_exit_2_naming_the_field(tmp_path, change, field):
    path = kubeconfig(tmp_path / "w.yaml", "https://127.0.0.1:1")
    data = yaml.safe_load(path.read_text())
    change(data)
    path.write_text(yaml.safe_dump(data))
    result = run_cli("webhook", "test", path)
    assert result.returncode == 2, result.stdout + result.stderr
    line = one_error_line(result)
    assert f"{path}: {field}:" in line
    assert TOKEN not in result.stdout + result.stderr


def test_unreadable_or_malformed_file_is_exit_2(tmp_path):
    missing = run_cli("webhook", "test", tmp_path / "none.yaml")
    assert missing.returncode == 2 and "cannot read" in one_error_line(missing)
    (tmp_path / "bad.yaml").write_text("clusters: [\n")
    malformed = run_cli("webhook", "test", tmp_path / "bad.yaml")
    assert malformed.returncode == 2 and "malformed YAML" in one_error_line(malformed)


def _audit_config(path: Path, webhook: dict) -> Path:
    path.write_text(yaml.safe_dump({"apiVersion": "kubeadm-audit.dev/v1alpha1", "kind": "AuditConfig",
                                    "metadata": {"name": "audit"}, "spec": {"webhook": webhook}}))
    return path


def test_bearer_token_authentication_from_the_audit_config(pki, receivers, tmp_path):
    receiver = receivers(cert=pki["server"][0], key=pki["server"][1])
    server = f"https://127.0.0.1:{receiver.port}/ingest"
    token_file = tmp_path / "node" / "token"
    token_file.parent.mkdir()
    token_file.write_text(TOKEN + "\n")
    # tokenFile: a node path, written as the kubeconfig's tokenFile and mounted into kube-apiserver
    config = _audit_config(tmp_path / "file.yaml", {"server": server, "certificateAuthority": str(pki["ca"].path),
                                                    "tokenFile": str(token_file)})
    generated = run_cli("generate", "--config", config, "--out", tmp_path / "by-file")
    assert generated.returncode == 0, generated.stderr
    assert f"tokenFile {token_file} must exist on every control-plane node" in generated.stderr
    kubeconfig_doc = yaml.safe_load((tmp_path / "by-file" / "audit-webhook.yaml").read_text())
    assert kubeconfig_doc["users"][0]["user"] == {"tokenFile": str(token_file)}
    kubeadm_docs = list(yaml.safe_load_all((tmp_path / "by-file" / "kubeadm-config.yaml").read_text()))
    volumes = next(d for d in kubeadm_docs if d["kind"] == "ClusterConfiguration")["apiServer"]["extraVolumes"]
    assert {"name": "audit-webhook-token", "hostPath": str(token_file.parent), "mountPath": str(token_file.parent),
            "readOnly": True, "pathType": "Directory"} in volumes
    assert len({v["mountPath"] for v in volumes}) == len(volumes)
    assert run_cli("webhook", "test", tmp_path / "by-file" / "audit-webhook.yaml").returncode == 0
    assert receiver.requests[-1]["headers"]["Authorization"] == f"Bearer {TOKEN}"
    # token: embedded in the kubeconfig (mode 0600), never shown
    config = _audit_config(tmp_path / "inline.yaml", {"server": server, "certificateAuthority": str(pki["ca"].path),
                                                      "token": TOKEN})
    generated = run_cli("generate", "--config", config, "--out", tmp_path / "inline")
    assert generated.returncode == 0 and TOKEN not in generated.stdout + generated.stderr
    written = tmp_path / "inline" / "audit-webhook.yaml"
    assert yaml.safe_load(written.read_text())["users"][0]["user"] == {"token": TOKEN}
    assert written.stat().st_mode & 0o777 == 0o600
    tested = run_cli("webhook", "test", written)
    assert tested.returncode == 0 and "bearer token" in tested.stdout and TOKEN not in tested.stdout


@pytest.mark.parametrize("webhook, field", [
    ({"token": TOKEN, "tokenFile": "/etc/kubernetes/audit/token"}, "spec.webhook.tokenFile"),
    ({"token": TOKEN + " x"}, "spec.webhook.token"),
    ({"tokenFile": "token"}, "spec.webhook.tokenFile"),
])
def test_token_settings_are_checked(tmp_path, webhook, field):
    config = _audit_config(tmp_path / "a.yaml", {"server": "https://10.0.0.5:8080", **webhook})
    result = run_cli("generate", "--config", config, "--out", tmp_path / "out")
    assert result.returncode == 2
    assert field in one_error_line(result) and TOKEN not in result.stderr
    assert not (tmp_path / "out").exists()


def test_a_token_over_plain_http_warns(tmp_path):
    config = _audit_config(tmp_path / "a.yaml", {"server": "http://10.0.0.7:30007/k8s-audit", "token": TOKEN})
    result = run_cli("generate", "--config", config, "--out", tmp_path / "out")
    assert result.returncode == 0 and "bearer token goes to" in result.stderr and TOKEN not in result.stderr


def test_the_bundle_reproduces_its_token_settings_and_keeps_the_token_private(tmp_path):
    for webhook in ({"token": TOKEN}, {"tokenFile": "/etc/kubernetes/audit-token/token"}):
        config = _audit_config(tmp_path / "a.yaml", {"server": "https://10.0.0.5:8080",
                                                     "insecureSkipTLSVerify": True, **webhook})
        (tmp_path / next(iter(webhook))).mkdir()
        first, again = tmp_path / next(iter(webhook)) / "first", tmp_path / next(iter(webhook)) / "again"
        assert run_cli("generate", "--config", config, "--out", first).returncode == 0
        written = first / "audit-config.yaml"
        assert written.stat().st_mode & 0o777 == (0o600 if "token" in webhook else 0o644)
        assert run_cli("generate", "--config", written, "--out", again).returncode == 0
        assert (again / "audit-webhook.yaml").read_text() == (first / "audit-webhook.yaml").read_text()
