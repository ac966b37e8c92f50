"""``webhook test``: deliver a sample EventList the way kube-apiserver's audit webhook does.

kube-apiserver loads ``--audit-webhook-config-file`` with client-go (clientcmd, then a REST
client with no API path and no group version) and POSTs ``audit.k8s.io/v1`` EventLists to the
current context's cluster server. This module reproduces each step that decides whether a
receiver gets the events: the kubeconfig's validation (clientcmd's rules, named by field), the
URL (a bare host:port is https only with TLS settings; the path is cleaned as ``path.Join``
cleans it; query and fragment are dropped), TLS (CA data over file, ``insecure-skip-tls-verify``,
``tls-server-name``, client certificate and key, TLS 1.2 at least), credentials (bearer token,
token file, basic auth) and the request (``Content-Type: application/json``).

Files the kubeconfig names are read through a ``read`` callable the caller gives, so this module
decides and never opens files itself, except that Python's ``ssl`` loads a client key pair only
from files: :func:`send` puts in-memory key material into a private temporary directory for the
moment of the handshake.
"""
from __future__ import annotations

import base64
import binascii
import http.client
import json
import os
import posixpath
import socket
import ssl
import tempfile
import time
import uuid
from collections.abc import Mapping
from datetime import datetime, timezone
from typing import Any, Callable
from urllib.parse import quote, unquote, urlsplit

from kubeadm_audit import versions
from kubeadm_audit.errors import InputError
from kubeadm_audit.typing_lite import NamedTuple

#: client-go's request timeout for webhooks (k8s.io/apiserver/pkg/util/webhook: defaultRequestTimeout).
DEFAULT_TIMEOUT = 30.0
CONTENT_TYPE = "application/json"
TEST_ANNOTATION = "kubeadm-audit.dev/webhook-test"


class Endpoint(NamedTuple):
    """Where and how kube-apiserver would deliver, from the kubeconfig."""

    url: str                        # what kube-apiserver requests (no credentials in it)
    scheme: str
    host: str
    port: int
    path: str                       # escaped path, as sent on the request line
    server_name: str | None         # tls-server-name: SNI and the name the certificate must carry
    insecure: bool
    ca: bytes | None
    ca_field: str | None            # which kubeconfig field the CA came from (for messages)
    client_cert: bytes | None
    client_key: bytes | None
    authorization: str | None       # the Authorization header value; never printed
    auth_kind: str | None           # "bearer token", "token file", "basic auth" (printable)


class Outcome(NamedTuple):
    status: int
    reason: str
    latency: float                  # seconds from connecting to the response headers
    body: str                       # the start of the receiver's answer


class DeliveryError(Exception):
    """The events did not reach the receiver: ``message`` says why, in plain words."""

    def __init__(self, message: str, latency: float) -> None:
        super().__init__(message)
        self.message = message
        self.latency = latency


Reader = Callable[[str, str], bytes]   # (path, kubeconfig field) -> content; raises InputError


# --- the kubeconfig ------------------------------------------------------------------------------

def _named(items: Any, name: str, section: str, source: str) -> tuple[dict[str, Any], str] | None:
    """The entry named ``name`` of ``clusters``/``users`` and its field path (None: no such entry)."""
    if items is None:
        items = []
    if not isinstance(items, list):
        raise InputError("must be a list", source=source, field=section)
    for index, item in enumerate(items):
        if isinstance(item, dict) and item.get("name") == name:
            body = item.get(section[:-1])
            if body is None:
                body = {}
            if not isinstance(body, dict):
                raise InputError("must be a mapping", source=source, field=f"{section}[{index}].{section[:-1]}")
            return body, f"{section}[{index}].{section[:-1]}"
    return None


def _string(block: Mapping[str, Any], key: str, where: str, source: str) -> str:
    value = block.get(key)
    if value is None:
        return ""
    if not isinstance(value, str):
        raise InputError("must be a string", source=source, field=f"{where}.{key}")
    return value


def _data(block: Mapping[str, Any], key: str, where: str, source: str) -> bytes | None:
    """A ``*-data`` field: base64, as client-go's []byte fields decode it."""
    value = _string(block, key, where, source)
    if not value:
        return None
    try:
        return base64.b64decode(value, validate=True)
    except (binascii.Error, ValueError):
        raise InputError("is not valid base64", source=source, field=f"{where}.{key}") from None


def _resolve(path: str, base: str) -> str:
    """Relative paths in a kubeconfig are relative to the kubeconfig's directory (ResolvePaths)."""
    return path if posixpath.isabs(path) else posixpath.join(base, path)


def _clean_path(path: str) -> str:
    """Go's ``path.Join("/", p)``: cleaned, absolute, no trailing slash."""
    cleaned = posixpath.normpath("/" + path)
    return "/" + cleaned.lstrip("/")


def endpoint(kubeconfig: Any, source: str, base_dir: str, read: Reader) -> Endpoint:
    """The delivery kube-apiserver would make, or InputError naming the kubeconfig field.

    ``base_dir`` is the kubeconfig's directory; ``read`` returns a named file's bytes.
    """
    if not isinstance(kubeconfig, dict):
        raise InputError("a kubeconfig must be a mapping (apiVersion: v1, kind: Config)", source=source)
    current = kubeconfig.get("current-context")
    if not current or not isinstance(current, str):
        raise InputError("not set: kube-apiserver delivers to the current context's cluster",
                         source=source, field="current-context")
    found = _named(kubeconfig.get("contexts"), current, "contexts", source)
    if found is None:
        raise InputError(f"no context named {current!r}", source=source, field="current-context")
    context, where_context = found
    cluster_name = _string(context, "cluster", where_context, source)
    user_name = _string(context, "user", where_context, source)
    if not cluster_name:
        raise InputError("cluster was not specified", source=source, field=f"{where_context}.cluster")
    found = _named(kubeconfig.get("clusters"), cluster_name, "clusters", source)
    if found is None:
        raise InputError(f"cluster {cluster_name!r} was not found", source=source, field=f"{where_context}.cluster")
    cluster, where = found
    user: dict[str, Any] = {}
    where_user = f"{where_context}.user"
    if user_name:
        found = _named(kubeconfig.get("users"), user_name, "users", source)
        if found is None:
            raise InputError(f"user {user_name!r} was not found", source=source, field=where_user)
        user, where_user = found

    server = _string(cluster, "server", where, source)
    if not server:
        raise InputError("no server: kube-apiserver has nowhere to send events", source=source,
                         field=f"{where}.server")
    ca = _data(cluster, "certificate-authority-data", where, source)
    ca_file = _string(cluster, "certificate-authority", where, source)
    if ca is not None and ca_file:
        raise InputError("certificate-authority-data and certificate-authority are both given (client-go "
                         "refuses the kubeconfig)", source=source, field=f"{where}.certificate-authority")
    ca_field = f"{where}.certificate-authority-data" if ca is not None else None
    if ca_file:
        ca = read(_resolve(ca_file, base_dir), f"{where}.certificate-authority")
        ca_field = f"{where}.certificate-authority"
    insecure = cluster.get("insecure-skip-tls-verify", False)
    if not isinstance(insecure, bool):
        raise InputError("must be true or false", source=source, field=f"{where}.insecure-skip-tls-verify")
    if insecure and ca is not None:
        raise InputError("insecure-skip-tls-verify with a certificate authority: client-go refuses "
                         "\"a root certificates file with the insecure flag\"", source=source,
                         field=f"{where}.insecure-skip-tls-verify")
    server_name = _string(cluster, "tls-server-name", where, source) or None
    if cluster.get("proxy-url"):
        raise InputError("a proxy is not supported by webhook test", source=source, field=f"{where}.proxy-url")

    cert = _data(user, "client-certificate-data", where_user, source)
    key = _data(user, "client-key-data", where_user, source)
    for data, key_name in ((cert, "client-certificate"), (key, "client-key")):
        if data is not None and _string(user, key_name, where_user, source):
            raise InputError(f"{key_name}-data and {key_name} are both given (client-go refuses the kubeconfig)",
                             source=source, field=f"{where_user}.{key_name}")
    if cert is None and _string(user, "client-certificate", where_user, source):
        cert = read(_resolve(user["client-certificate"], base_dir), f"{where_user}.client-certificate")
    if key is None and _string(user, "client-key", where_user, source):
        key = read(_resolve(user["client-key"], base_dir), f"{where_user}.client-key")
    if cert is not None and key is None:
        raise InputError("a client certificate needs client-key-data or client-key", source=source,
                         field=f"{where_user}.client-key")
    if key is not None and cert is None:
        raise InputError("a client key needs client-certificate-data or client-certificate", source=source,
                         field=f"{where_user}.client-certificate")
    for unsupported in ("exec", "auth-provider"):
        if user.get(unsupported):
            raise InputError("not supported by webhook test", source=source, field=f"{where_user}.{unsupported}")

    token = _string(user, "token", where_user, source)
    token_file = _string(user, "tokenFile", where_user, source)
    username = _string(user, "username", where_user, source)
    password = _string(user, "password", where_user, source)
    if token and (username or password):
        raise InputError("more than one authentication method (token and basic auth): client-go refuses the "
                         "kubeconfig", source=source, field=f"{where_user}.token")
    authorization = auth_kind = None
    if token_file:
        # client-go's transport prefers the file's current content (whitespace trimmed) to token.
        raw = read(_resolve(token_file, base_dir), f"{where_user}.tokenFile")
        try:
            file_token = raw.decode("utf-8").strip()
        except UnicodeDecodeError:
            raise InputError("the token file is not UTF-8 text", source=source,
                             field=f"{where_user}.tokenFile") from None
        if file_token:
            authorization, auth_kind = f"Bearer {file_token}", "bearer token from tokenFile"
    if authorization is None and token:
        authorization, auth_kind = f"Bearer {token}", "bearer token"
    if authorization is None and (username or password):
        basic = base64.b64encode(f"{username}:{password}".encode()).decode("ascii")
        authorization, auth_kind = f"Basic {basic}", "basic auth"

    has_tls = ca is not None or cert is not None or insecure
    parts = urlsplit(server if "://" in server else ("https://" if has_tls else "http://") + server)
    if parts.scheme not in ("http", "https") or not parts.hostname:
        raise InputError("must be an http(s) URL or host:port", source=source, field=f"{where}.server")
    try:
        port = parts.port or (443 if parts.scheme == "https" else 80)
    except ValueError:
        raise InputError("has an invalid port", source=source, field=f"{where}.server") from None
    if parts.username is not None and authorization is None:
        userinfo = f"{parts.username}:{parts.password or ''}"
        authorization = "Basic " + base64.b64encode(unquote(userinfo).encode("utf-8")).decode("ascii")
        auth_kind = "basic auth from the server URL"
    path = quote(_clean_path(parts.path), safe="/:@!$&'()*+,;=-._~%")
    host = parts.hostname
    netloc = f"[{host}]" if ":" in host else host
    if parts.port:
        netloc += f":{parts.port}"
    return Endpoint(f"{parts.scheme}://{netloc}{path}", parts.scheme, host, port, path, server_name,
                    insecure, ca, ca_field, cert, key, authorization, auth_kind)


# --- the events ---------------------------------------------------------------------------------

def _micro_time(moment: datetime) -> str:
    """metav1.MicroTime's JSON form."""
    return moment.astimezone(timezone.utc).strftime("%Y-%m-%dT%H:%M:%S.%fZ")


def sample_event_list(now: datetime, count: int = 1,
                      user_agent: str = "kubeadm-audit webhook test") -> dict[str, Any]:
    """An ``audit.k8s.io/v1`` EventList as kube-apiserver's webhook backend encodes one: items
    carry no kind/apiVersion of their own. The events are marked with an annotation, so a
    receiver's operator can tell them from real ones."""
    items = []
    for _ in range(count):
        items.append({
            "level": "Metadata",
            "auditID": str(uuid.uuid4()),
            "stage": "ResponseComplete",
            "requestURI": "/api/v1/namespaces/default/configmaps/kubeadm-audit-webhook-test",
            "verb": "get",
            "user": {"username": "system:kubeadm-audit:webhook-test", "groups": ["system:authenticated"]},
            "sourceIPs": ["127.0.0.1"],
            "userAgent": user_agent,
            "objectRef": {"resource": "configmaps", "namespace": "default", "name": "kubeadm-audit-webhook-test",
                          "apiVersion": "v1"},
            "responseStatus": {"metadata": {}, "code": 200},
            "requestReceivedTimestamp": _micro_time(now),
            "stageTimestamp": _micro_time(now),
            "annotations": {TEST_ANNOTATION: "true"},
        })
    return {"kind": "EventList", "apiVersion": versions.AUDIT_API_VERSION, "metadata": {}, "items": items}


def encode(event_list: Mapping[str, Any]) -> bytes:
    return json.dumps(event_list, separators=(",", ":")).encode("utf-8")


# --- delivery -----------------------------------------------------------------------------------

def _ssl_context(target: Endpoint, workdir: str) -> ssl.SSLContext:

    context = ssl.SSLContext(ssl.PROTOCOL_TLS_CLIENT)
    context.minimum_version = ssl.TLSVersion.TLSv1_2          # client-go's floor
    if target.insecure:
        context.check_hostname = False
        context.verify_mode = ssl.CERT_NONE
    elif target.ca is not None:
        try:
            context.load_verify_locations(cadata=target.ca.decode("ascii", "replace"))
        except (ssl.SSLError, ValueError):
            raise InputError("holds no PEM certificate", field=target.ca_field) from None
    else:
        context.load_default_certs()                            # Go uses the system roots
    if target.client_cert is not None and target.client_key is not None:
        cert_path, key_path = os.path.join(workdir, "client.pem"), os.path.join(workdir, "client-key.pem")
        for path, data in ((cert_path, target.client_cert), (key_path, target.client_key)):
            descriptor = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
            with os.fdopen(descriptor, "wb") as handle:
                handle.write(data)
        try:
            context.load_cert_chain(cert_path, key_path)
        except ssl.SSLError:
            raise InputError("the client certificate and key do not load as a PEM pair that belongs together",
                             field="users[].user.client-certificate") from None
    return context


#: OpenSSL verification results -> what they mean for the person setting up the receiver.
_VERIFY = {
    18: "unknown authority: the receiver presents a self-signed certificate that the kubeconfig's CA does not "
        "contain",
    19: "unknown authority: the receiver's certificate chain ends in a CA that the kubeconfig's CA does not "
        "contain",
    20: "unknown authority: the receiver's certificate is signed by a CA that the kubeconfig's CA does not "
        "contain",
    21: "unknown authority: the receiver's certificate is signed by a CA that the kubeconfig's CA does not "
        "contain",
    10: "expired: the receiver's certificate has expired",
    9: "not yet valid: the receiver's certificate is not valid yet (check the clocks)",
    62: "wrong server name",
    64: "wrong server name",
}


def _explain_tls(exc: Exception, target: Endpoint) -> str:
    checked = target.server_name or target.host
    names = ("tls-server-name" if target.server_name else "the server URL's host")
    if isinstance(exc, ssl.SSLCertVerificationError):
        meaning = _VERIFY.get(exc.verify_code)
        detail = getattr(exc, "verify_message", "") or str(exc)
        if meaning == "wrong server name":
            return (f"certificate: wrong server name: the receiver's certificate is not valid for {checked!r} "
                    f"({names}); it must list that name or address in its subjectAltName, or set "
                    f"tls-server-name to a name it does list ({detail})")
        if meaning:
            source = f" ({target.ca_field})" if target.ca_field and meaning.startswith("unknown") else ""
            if meaning.startswith("unknown") and target.ca is None:
                meaning = meaning.replace("the kubeconfig's CA does not contain",
                                          "this system's trusted roots do not contain (the kubeconfig names no CA)")
            return f"certificate: {meaning}{source} ({detail})"
        return f"certificate: the receiver's certificate was refused: {detail}"
    text = str(exc)
    upper = text.upper()
    if "CERTIFICATE_REQUIRED" in upper or ("HANDSHAKE_FAILURE" in upper and target.client_cert is None):
        return ("client certificate required: the receiver asks for a client certificate (mTLS) and the "
                "kubeconfig's user has none (client-certificate-data and client-key-data)")
    if "UNKNOWN_CA" in upper or "BAD_CERTIFICATE" in upper or "CERTIFICATE_UNKNOWN" in upper:
        return ("client certificate refused: the receiver does not accept the kubeconfig's client certificate "
                "(signed by a CA it does not trust, or not a client certificate)")
    if "CERTIFICATE_EXPIRED" in upper:
        return "client certificate refused: the receiver says the kubeconfig's client certificate has expired"
    if "WRONG_VERSION_NUMBER" in upper or "RECORD_LAYER_FAILURE" in upper or "PACKET_LENGTH_TOO_LONG" in upper:
        return "TLS: the receiver does not speak TLS on this port (is it plain http? then the server URL is http://)"
    return f"TLS: {text}"


def _reason(exc: BaseException) -> str:
    return getattr(exc, "strerror", None) or str(exc) or type(exc).__name__


def _explain_after_handshake(exc: BaseException, target: Endpoint) -> str:
    """The receiver took the TLS handshake, then refused or hung up before answering."""
    explained = _explain_tls(exc, target) if isinstance(exc, Exception) else ""
    if explained.startswith("client certificate"):
        return explained
    if target.client_cert is None:
        return ("client certificate required: the receiver closed the TLS connection before answering, as a "
                "receiver that requires mTLS does when the client presents no certificate; the kubeconfig's "
                f"user has none (client-certificate-data and client-key-data) ({_reason(exc)})")
    return ("client certificate refused: the receiver closed the TLS connection before answering, as a "
            "receiver does that does not accept the client certificate (signed by a CA it does not trust, "
            f"expired, or not for client authentication) ({_reason(exc)})")


def send(target: Endpoint, body: bytes, timeout: float = DEFAULT_TIMEOUT, user_agent: str = "kubeadm-audit") -> Outcome:
    """POST ``body`` once, as kube-apiserver's webhook client would; DeliveryError when it never
    got an HTTP answer. No proxy is used (a kube-apiserver static Pod has none)."""
    headers = {"Content-Type": CONTENT_TYPE, "Accept": f"{CONTENT_TYPE}, */*", "User-Agent": user_agent}
    if target.authorization:
        headers["Authorization"] = target.authorization
    started = time.monotonic()
    with tempfile.TemporaryDirectory(prefix="kubeadm-audit-webhook-") as workdir:
        if target.scheme == "https":
            context = _ssl_context(target, workdir)
            connection: http.client.HTTPConnection = http.client.HTTPSConnection(
                target.host, target.port, timeout=timeout, context=context)
            if target.server_name:
                sni: str = target.server_name
                # SNI and verification against tls-server-name, as Go's tls.Config.ServerName does
                def connect(conn: Any = connection, name: str = sni) -> None:
                    sock = socket.create_connection((conn.host, conn.port), conn.timeout)
                    conn.sock = context.wrap_socket(sock, server_hostname=name)
                connection.connect = connect  # type: ignore[method-assign]
        else:
            connection = http.client.HTTPConnection(target.host, target.port, timeout=timeout)
        handshaken = False
        try:
            connection.connect()
            handshaken = True
            connection.request("POST", target.path, body=body, headers=headers)
            response = connection.getresponse()
            answer = response.read(4096)
            latency = time.monotonic() - started
        except (ssl.SSLError, ConnectionResetError, http.client.RemoteDisconnected, BrokenPipeError) as exc:
            if handshaken and target.scheme == "https":
                # TLS 1.3 verifies the client certificate after the client's handshake is done:
                # a receiver that wants mTLS shows it by an alert or by hanging up at the first read.
                raise DeliveryError(_explain_after_handshake(exc, target), time.monotonic() - started) from None
            if isinstance(exc, ssl.SSLError):
                raise DeliveryError(_explain_tls(exc, target), time.monotonic() - started) from None
            raise DeliveryError(f"connection failed: {_reason(exc)}" + (
                " (does the receiver expect https?)" if target.scheme == "http" else ""),
                time.monotonic() - started) from None
        except ConnectionRefusedError:
            raise DeliveryError(f"connection refused: nothing listens on {target.host} port {target.port}",
                                time.monotonic() - started) from None
        except socket.timeout:
            raise DeliveryError(f"timed out after {timeout:g} s: no answer from {target.host} port {target.port}",
                                time.monotonic() - started) from None
        except socket.gaierror as exc:
            raise DeliveryError(f"cannot resolve {target.host!r}: {exc.strerror or exc}",
                                time.monotonic() - started) from None
        except (OSError, http.client.HTTPException) as exc:
            raise DeliveryError(f"connection failed: {_reason(exc)}", time.monotonic() - started) from None
        finally:
            connection.close()
    return Outcome(response.status, response.reason, latency, answer.decode("utf-8", "replace"))


def now() -> datetime:
    return datetime.now(timezone.utc)
