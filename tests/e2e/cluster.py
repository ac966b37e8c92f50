"""A real kube-apiserver (with etcd) on loopback, its test PKI, kubectl and a local audit receiver.

Everything lives in a temp dir; every process runs in its own process group and is stopped
(SIGTERM, then SIGKILL) by whoever started it. Nothing here touches /etc/kubernetes.
"""
from __future__ import annotations

import contextlib
import datetime
import http.server
import ipaddress
import json
import os
import signal
import socket
import ssl
import subprocess
import threading
import time
import urllib.error
import urllib.request
from collections.abc import Sequence
from pathlib import Path

#: How long one component may take to become ready on a busy 2-core machine.
READY_TIMEOUT = 180.0
STOP_TIMEOUT = 60.0


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


# --- PKI -------------------------------------------------------------------------------------

class Pki:
    """A test CA and the certificates the run needs, written as PEM files under ``root``.

    Client certificates carry the user in CN and the groups in O, as kube-apiserver reads them.
    """

    def __init__(self, root: Path) -> None:
        from cryptography import x509
        from cryptography.hazmat.primitives import hashes, serialization
        from cryptography.hazmat.primitives.asymmetric import ec
        from cryptography.x509.oid import ExtendedKeyUsageOID, NameOID

        self._x509, self._hashes, self._ser, self._ec = x509, hashes, serialization, ec
        self._eku, self._oid = ExtendedKeyUsageOID, NameOID
        self.root = root
        root.mkdir(parents=True, exist_ok=True)
        self._ca_key = ec.generate_private_key(ec.SECP256R1())
        name = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, "kubeadm-audit-e2e-ca")])
        now = datetime.datetime.now(datetime.timezone.utc)
        self._ca_name = name
        self._ca = (x509.CertificateBuilder().subject_name(name).issuer_name(name)
                    .public_key(self._ca_key.public_key()).serial_number(x509.random_serial_number())
                    .not_valid_before(now - datetime.timedelta(minutes=5))
                    .not_valid_after(now + datetime.timedelta(days=1))
                    .add_extension(x509.BasicConstraints(ca=True, path_length=None), critical=True)
                    .add_extension(x509.KeyUsage(digital_signature=True, key_cert_sign=True, crl_sign=True,
                                                 content_commitment=False, key_encipherment=False,
                                                 data_encipherment=False, key_agreement=False,
                                                 encipher_only=False, decipher_only=False), critical=True)
                    .sign(self._ca_key, hashes.SHA256()))
        self.ca = root / "ca.pem"
        self.ca.write_bytes(self._ca.public_bytes(serialization.Encoding.PEM))
        key = ec.generate_private_key(ec.SECP256R1())
        self.sa_key = self._write_key(key, "sa.key")
        self.sa_pub = root / "sa.pub"
        self.sa_pub.write_bytes(key.public_key().public_bytes(
            serialization.Encoding.PEM, serialization.PublicFormat.SubjectPublicKeyInfo))

    def _write_key(self, key, name: str) -> Path:
        path = self.root / name
        path.write_bytes(key.private_bytes(self._ser.Encoding.PEM, self._ser.PrivateFormat.PKCS8,
                                           self._ser.NoEncryption()))
        path.chmod(0o600)
        return path

    def issue(self, name: str, common_name: str, groups: Sequence[str] = (), server: bool = False):
        """(certificate, key) paths: a serving certificate for 127.0.0.1/localhost, or a client one."""
        x509, oid = self._x509, self._oid
        key = self._ec.generate_private_key(self._ec.SECP256R1())
        subject = x509.Name([x509.NameAttribute(oid.ORGANIZATION_NAME, g) for g in groups]
                            + [x509.NameAttribute(oid.COMMON_NAME, common_name)])
        now = datetime.datetime.now(datetime.timezone.utc)
        builder = (x509.CertificateBuilder().subject_name(subject).issuer_name(self._ca_name)
                   .public_key(key.public_key()).serial_number(x509.random_serial_number())
                   .not_valid_before(now - datetime.timedelta(minutes=5))
                   .not_valid_after(now + datetime.timedelta(days=1))
                   .add_extension(x509.BasicConstraints(ca=False, path_length=None), critical=True)
                   .add_extension(x509.ExtendedKeyUsage(
                       [self._eku.SERVER_AUTH if server else self._eku.CLIENT_AUTH]), critical=False))
        if server:
            builder = builder.add_extension(x509.SubjectAlternativeName(
                [x509.DNSName("localhost"), x509.IPAddress(ipaddress.ip_address("127.0.0.1"))]),
                critical=False)
        cert = builder.sign(self._ca_key, self._hashes.SHA256())
        cert_path = self.root / f"{name}.pem"
        cert_path.write_bytes(cert.public_bytes(self._ser.Encoding.PEM))
        return cert_path, self._write_key(key, f"{name}-key.pem")


# --- processes -------------------------------------------------------------------------------

class Process:
    """A child in its own process group, its output in a file; ``stop`` ends the whole group."""

    def __init__(self, name: str, argv: list[str], log: Path, env: dict | None = None) -> None:
        self.name, self.argv, self.log = name, argv, log
        self._out = log.open("wb")
        self.proc = subprocess.Popen(argv, stdout=self._out, stderr=subprocess.STDOUT, stdin=subprocess.DEVNULL,
                                     start_new_session=True, env={**os.environ, **(env or {})})

    def alive(self) -> bool:
        return self.proc.poll() is None

    def stop(self, timeout: float = STOP_TIMEOUT) -> int | None:
        """SIGTERM the group (kube-apiserver then flushes its audit backends), SIGKILL after timeout."""
        if self.proc.poll() is None:
            self._signal(signal.SIGTERM)
            try:
                self.proc.wait(timeout)
            except subprocess.TimeoutExpired:
                self._signal(signal.SIGKILL)
                self.proc.wait(10)
        self._signal(signal.SIGKILL)  # any straggler in the group
        self._out.close()
        return self.proc.returncode

    def _signal(self, sig: int) -> None:
        with contextlib.suppress(ProcessLookupError, PermissionError):
            os.killpg(self.proc.pid, sig)

    def tail(self, lines: int = 30) -> str:
        try:
            text = self.log.read_text(errors="replace")
        except OSError:
            return ""
        return "\n".join(text.splitlines()[-lines:])


class Etcd:
    def __init__(self, binary: Path, root: Path) -> None:
        root.mkdir(parents=True, exist_ok=True)
        client, peer = free_port(), free_port()
        self.url = f"http://127.0.0.1:{client}"
        peer_url = f"http://127.0.0.1:{peer}"
        self.process = Process("etcd", [
            str(binary), "--name=e2e", f"--data-dir={root / 'data'}",
            f"--listen-client-urls={self.url}", f"--advertise-client-urls={self.url}",
            f"--listen-peer-urls={peer_url}", f"--initial-advertise-peer-urls={peer_url}",
            f"--initial-cluster=e2e={peer_url}", "--unsafe-no-fsync", "--log-level=warn",
        ], root / "etcd.log")
        deadline = time.monotonic() + READY_TIMEOUT
        while True:
            if not self.process.alive():
                raise RuntimeError(f"etcd exited:\n{self.process.tail()}")
            try:
                with urllib.request.urlopen(f"{self.url}/health", timeout=5) as response:
                    if json.load(response).get("health") == "true":
                        return
            except (OSError, ValueError):
                pass
            if time.monotonic() > deadline:
                self.process.stop()
                raise RuntimeError(f"etcd not healthy after {READY_TIMEOUT:.0f}s:\n{self.process.tail()}")
            time.sleep(0.3)

    def stop(self) -> None:
        self.process.stop()


class ApiServer:
    """kube-apiserver with the given audit flags plus the minimum a standalone one needs."""

    def __init__(self, binary: Path, root: Path, etcd: Etcd, pki: Pki, audit_flags: Sequence[str]) -> None:
        root.mkdir(parents=True, exist_ok=True)
        self.root, self.pki = root, pki
        self.port = free_port()
        self.url = f"https://127.0.0.1:{self.port}"
        serving = pki.root / "apiserver.pem"
        if not serving.exists():
            pki.issue("apiserver", "kube-apiserver", server=True)
        self.argv = [
            str(binary),
            "--bind-address=127.0.0.1", "--advertise-address=127.0.0.1", f"--secure-port={self.port}",
            f"--etcd-servers={etcd.url}", f"--etcd-prefix=/{root.name}-{self.port}",
            f"--cert-dir={root / 'certs'}",
            f"--tls-cert-file={serving}", f"--tls-private-key-file={pki.root / 'apiserver-key.pem'}",
            f"--client-ca-file={pki.ca}",
            f"--service-account-key-file={pki.sa_pub}",
            f"--service-account-signing-key-file={pki.sa_key}",
            "--service-account-issuer=https://kubernetes.default.svc.cluster.local",
            "--service-cluster-ip-range=10.96.0.0/16",
            "--authorization-mode=RBAC", "--anonymous-auth=true",
            "--endpoint-reconciler-type=none", "--profiling=false",
            *audit_flags,
        ]
        self.process = Process("kube-apiserver", self.argv, root / "kube-apiserver.log")

    def wait(self, client: Identity, ready: bool = True, timeout: float = READY_TIMEOUT) -> int | None:
        """None once /readyz answers ok (or, with ready=False, once it answers at all: the flags
        and the policy were accepted and it serves); the exit code if kube-apiserver exits first."""
        context = client.ssl_context()
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            code = self.process.proc.poll()
            if code is not None:
                return code
            try:
                with urllib.request.urlopen(f"{self.url}/readyz", timeout=5, context=context) as response:
                    if response.status == 200:
                        return None
            except urllib.error.HTTPError:
                if not ready:
                    return None
            except (OSError, urllib.error.URLError):
                pass
            time.sleep(0.2)
        raise RuntimeError(f"kube-apiserver neither ready nor exited after {timeout:.0f}s:\n{self.process.tail()}")

    def request(self, identity: Identity, path: str, method: str = "GET") -> int:
        """The HTTP status of one plain HTTPS request (kubectl cannot send one without credentials)."""
        request = urllib.request.Request(self.url + path, method=method)
        if identity.token:
            request.add_header("Authorization", f"Bearer {identity.token}")
        try:
            with urllib.request.urlopen(request, timeout=30, context=identity.ssl_context()) as response:
                response.read()
                return response.status
        except urllib.error.HTTPError as exc:
            return exc.code

    def stop(self) -> int | None:
        return self.process.stop()


# --- clients ---------------------------------------------------------------------------------

class Identity:
    """Who a request comes from: a client certificate, a (bogus) token, or nothing at all."""

    def __init__(self, name: str, cert: Path | None = None, key: Path | None = None,
                 token: str | None = None, ca: Path | None = None) -> None:
        self.name, self.cert, self.key, self.token, self.ca = name, cert, key, token, ca

    def ssl_context(self) -> ssl.SSLContext:
        context = ssl.create_default_context(cafile=str(self.ca))
        if self.cert:
            context.load_cert_chain(str(self.cert), str(self.key))
        return context

    def kubeconfig(self, server: str, path: Path) -> Path:
        if self.cert:
            user = {"client-certificate": str(self.cert), "client-key": str(self.key)}
        elif self.token:
            user = {"token": self.token}
        else:
            raise ValueError("kubectl prompts for a username without credentials: use ApiServer.request")
        config = {
            "apiVersion": "v1", "kind": "Config", "current-context": "e2e",
            "clusters": [{"name": "e2e", "cluster": {"server": server, "certificate-authority": str(self.ca)}}],
            "users": [{"name": self.name, "user": user}],
            "contexts": [{"name": "e2e", "context": {"cluster": "e2e", "user": self.name}}],
        }
        path.write_text(json.dumps(config))
        return path


class Kubectl:
    def __init__(self, binary: Path, apiserver: ApiServer, root: Path) -> None:
        self.binary, self.apiserver, self.root = binary, apiserver, root
        root.mkdir(parents=True, exist_ok=True)

    def __call__(self, identity: Identity, *args: str, stdin: str | None = None,
                 timeout: float = 60) -> subprocess.CompletedProcess:
        config = self.root / f"{identity.name}.kubeconfig"
        if not config.exists():
            identity.kubeconfig(self.apiserver.url, config)
        return subprocess.run([str(self.binary), f"--kubeconfig={config}", f"--cache-dir={self.root / 'cache'}",
                               "--request-timeout=30s", *args], input=stdin or "", capture_output=True,
                              text=True, timeout=timeout)


# --- the audit receiver ----------------------------------------------------------------------

class Receiver:
    """An HTTPS endpoint that accepts kube-apiserver's audit EventLists, as a SIEM would.

    With ``client_ca`` it requires a client certificate signed by it (mTLS); with ``token``, that
    bearer token (anything else is 401, and counted).
    """

    def __init__(self, cert: Path, key: Path, client_ca: Path | None = None,
                 token: str | None = None) -> None:
        self.batches: list[tuple] = []  # (received at, peer certificate subject, [events])
        self.unauthorized = 0
        self.lock = threading.Lock()
        receiver = self

        class Handler(http.server.BaseHTTPRequestHandler):
            protocol_version = "HTTP/1.1"

            def do_POST(self) -> None:
                body = self.rfile.read(int(self.headers.get("Content-Length") or 0))
                if token is not None and self.headers.get("Authorization") != f"Bearer {token}":
                    with receiver.lock:
                        receiver.unauthorized += 1
                    self.send_error(401)
                    return
                try:
                    items = json.loads(body).get("items") or []
                except ValueError:
                    self.send_error(400)
                    return
                peer = self.connection.getpeercert() or {}
                subject = dict(pair[0] for pair in peer.get("subject", ()))
                with receiver.lock:
                    receiver.batches.append((time.monotonic(), subject.get("commonName"), items))
                self.send_response(200)
                self.send_header("Content-Length", "0")
                self.end_headers()

            def log_message(self, *args) -> None:
                pass

        context = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
        context.load_cert_chain(str(cert), str(key))
        if client_ca:
            context.verify_mode = ssl.CERT_REQUIRED
            context.load_verify_locations(str(client_ca))
        self.server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.server.daemon_threads = True
        self.server.socket = context.wrap_socket(self.server.socket, server_side=True)
        self.url = f"https://127.0.0.1:{self.server.server_address[1]}/audit"
        self.thread = threading.Thread(target=self.server.serve_forever, daemon=True)
        self.thread.start()

    def events(self) -> list[dict]:
        with self.lock:
            return [event for _, _, items in self.batches for event in items]

    def stop(self) -> None:
        self.server.shutdown()
        self.server.server_close()


def read_log(path: Path) -> list[dict]:
    """The JSON audit events of a log backend file (and its rotated siblings, oldest first)."""
    files = sorted(path.parent.glob(path.name + "*"), key=lambda p: p.stat().st_mtime)
    return [json.loads(line) for f in files for line in f.read_text().splitlines() if line.strip()]
