"""The audit webhook kubeconfig kube-apiserver reads (``--audit-webhook-config-file``)."""
from __future__ import annotations

import base64

from kubeadm_audit.findings import Finding, FindingKind, Severity
from kubeadm_audit.typing_lite import TYPE_CHECKING, NamedTuple

if TYPE_CHECKING:   # config imports this module (redact_url): the model's type only for annotations
    from typing import Any

    from kubeadm_audit.config import Webhook


class TLSMaterial(NamedTuple):
    """PEM contents read from the files the AuditConfig names."""

    ca: bytes | None = None
    client_certificate: bytes | None = None
    client_key: bytes | None = None


def redact_url(url: str) -> str:
    """``url`` with any user:password replaced by ``REDACTED``: for every message that names it.

    kube-apiserver's webhook client sends URL userinfo as basic auth, so the password is a
    credential; it belongs in the kubeconfig (mode 0600) and nowhere else.
    """
    scheme, sep, rest = url.partition("://")
    if not sep:
        return url
    end = len(rest)
    for ch in "/?#":
        found = rest.find(ch)
        if found != -1:
            end = min(end, found)
    at = rest.rfind("@", 0, end)
    if at == -1:
        return url
    return f"{scheme}://REDACTED@{rest[at + 1:]}"


def has_userinfo(url: str) -> bool:
    return redact_url(url) != url


def _b64(data: bytes) -> str:
    return base64.b64encode(data).decode("ascii")


def build_kubeconfig(hook: Webhook, tls: TLSMaterial) -> dict[str, Any]:
    """A complete kubeconfig: one cluster, one user, one context, current-context set.

    Certificates are embedded (``*-data``) so the file is self-contained and needs no
    further mounts inside the kube-apiserver container.
    """
    names = hook.kubeconfig_names
    cluster: dict[str, Any] = {"server": hook.server}
    if tls.ca is not None:
        cluster["certificate-authority-data"] = _b64(tls.ca)
    if hook.insecure_skip_tls_verify:
        cluster["insecure-skip-tls-verify"] = True
    if hook.tls_server_name:
        cluster["tls-server-name"] = hook.tls_server_name
    user: dict[str, Any] = {}
    if tls.client_certificate is not None and tls.client_key is not None:
        user["client-certificate-data"] = _b64(tls.client_certificate)
        user["client-key-data"] = _b64(tls.client_key)
    if hook.token is not None:
        user["token"] = hook.token
    if hook.token_file is not None:
        user["tokenFile"] = hook.token_file
    return {
        "apiVersion": "v1",
        "kind": "Config",
        "preferences": {},
        "clusters": [{"name": names.cluster, "cluster": cluster}],
        "users": [{"name": names.user, "user": user}],
        "contexts": [{"name": names.context, "context": {"cluster": names.cluster, "user": names.user}}],
        "current-context": names.context,
    }


#: Host names of this host (the node: kube-apiserver runs on the host network).
LOOPBACK = ("localhost", "127.0.0.1", "::1")


#: What :func:`warnings` reports (ids never change meaning; docs/findings.md lists them).
CREDENTIALS_IN_URL = FindingKind("KG001", Severity.WARNING,
                                 "the webhook server URL carries a user name and password")
SKIP_TLS_VERIFY = FindingKind("KG002", Severity.WARNING,
                              "insecure-skip-tls-verify: the receiver's certificate is not verified")
PLAIN_HTTP = FindingKind("KG003", Severity.WARNING, "the webhook server is plain http")
TOKEN_OVER_HTTP = FindingKind("KG004", Severity.WARNING, "a bearer token is sent over plain http")
TOKEN_FILE_ON_NODES = FindingKind("KG005", Severity.WARNING,
                                  "tokenFile must exist on every control-plane node before kube-apiserver starts")
SERVICE_NAME = FindingKind("KG006", Severity.WARNING,
                           "the webhook server looks like a cluster Service name, which kube-apiserver cannot resolve")
FINDINGS = (CREDENTIALS_IN_URL, SKIP_TLS_VERIFY, PLAIN_HTTP, TOKEN_OVER_HTTP, TOKEN_FILE_ON_NODES, SERVICE_NAME)

_FIELD = "spec.webhook"


def warnings(hook: Webhook) -> list[Finding]:
    """What works but deserves a second look (the paths are the AuditConfig's fields)."""
    from urllib.parse import urlsplit

    out = []
    parts = urlsplit(hook.server)
    host = parts.hostname or ""
    server = redact_url(hook.server)
    if has_userinfo(hook.server):
        out.append(CREDENTIALS_IN_URL(
            f"the webhook server URL {server} carries a user name and password: they are stored in "
            "clear in the webhook kubeconfig (and sent as basic auth); prefer a client certificate "
            "(--client-certificate/--client-key)", path=f"{_FIELD}.server"))
    if hook.insecure_skip_tls_verify:
        out.append(SKIP_TLS_VERIFY(f"insecure-skip-tls-verify: kube-apiserver will send audit events to {server} "
                                   "without verifying the receiver's certificate; pin its CA with --ca-file instead",
                                   path=f"{_FIELD}.insecureSkipTLSVerify"))
    if parts.scheme == "http":
        where = ("over loopback, where anything on the node can read them" if is_loopback(hook.server)
                 else "across the network")
        out.append(PLAIN_HTTP(f"the webhook server {server} is plain http: audit events travel unencrypted {where}, "
                              "and the receiver is not authenticated (Falco's default; use https where the receiver "
                              "supports it)", path=f"{_FIELD}.server"))
    if (hook.token or hook.token_file) and parts.scheme == "http":
        out.append(TOKEN_OVER_HTTP(f"the bearer token goes to {server} in clear text over plain http: anyone on the "
                                   "path can read and replay it; use https",
                                   path=f"{_FIELD}.{'token' if hook.token else 'tokenFile'}"))
    if hook.token_file:
        out.append(TOKEN_FILE_ON_NODES(
            f"tokenFile {hook.token_file} must exist on every control-plane node before kube-apiserver "
            "starts (it does not start without it); kube-apiserver re-reads it, so it can be "
            "rotated in place", path=f"{_FIELD}.tokenFile"))
    if host.endswith((".svc", ".cluster.local")) or ".svc." in host:
        out.append(SERVICE_NAME(f"{host} looks like a cluster Service name: kube-apiserver runs on the host network "
                                "before cluster DNS, so use an IP, a node-resolvable name or a NodePort",
                                path=f"{_FIELD}.server"))
    return out


def is_loopback(url: str) -> bool:
    """Whether ``url`` names this host (the node, seen from kube-apiserver on the host network)."""
    from urllib.parse import urlsplit

    host = urlsplit(url).hostname or ""
    return host in LOOPBACK or host.startswith("127.")


#: kubeconfig ``user`` fields that hold a secret in the file itself (not a path to one).
SECRET_FIELDS = ("client-key-data", "token", "password")


def inline_secrets(kubeconfig: Any) -> list[Any]:
    """Where a kubeconfig holds a secret (``users[0].user.client-key-data``, ...): such a file must be 0600."""
    users = kubeconfig.get("users") if isinstance(kubeconfig, dict) else None
    found = []
    for index, entry in enumerate(users if isinstance(users, list) else []):
        user = entry.get("user") if isinstance(entry, dict) else None
        if isinstance(user, dict):
            found += [f"users[{index}].user.{key}" for key in SECRET_FIELDS if user.get(key)]
    return found
