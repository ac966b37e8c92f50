"""Reading what the AuditConfig points at: the config file, PEM files, a custom policy.

This is the input edge of the data flow: it touches files and hands plain data
to the model and the pure builders.
"""
from __future__ import annotations

import os
import re
from collections.abc import Mapping

from kubeadm_audit import config as config_mod
from kubeadm_audit import yamlio
from kubeadm_audit.errors import InputError
from kubeadm_audit.typing_lite import TYPE_CHECKING
from kubeadm_audit.webhook import TLSMaterial

if TYPE_CHECKING:
    from typing import Any

#: Compiled on first use (re's cache): the KRM start-up path reads no PEM.
_PEM = rb"-----BEGIN ([A-Z0-9 ]+)-----\r?\n([A-Za-z0-9+/=\r\n]+?)-----END \1-----"
_KEY_LABELS = (b"PRIVATE KEY", b"RSA PRIVATE KEY", b"EC PRIVATE KEY", b"ENCRYPTED PRIVATE KEY")

#: The files every bundle holds (``generate --out DIR``), whatever its target.
POLICY_FILE = "audit-policy.yaml"
WEBHOOK_FILE = "audit-webhook.yaml"
CONFIG_FILE = "audit-config.yaml"
INSTALL_LIST = "install.list"

#: spec fields holding file paths, relative to the AuditConfig file when read from one.
FILE_FIELDS = (("policy", "file"), ("webhook", "certificateAuthority"),
               ("webhook", "clientCertificate"), ("webhook", "clientKey"))


def read_config_file(path: str) -> dict[str, Any]:
    """The ``spec`` of an AuditConfig file, with its file paths made absolute."""
    spec = config_mod.read_document(yamlio.load_file(path), source=path)
    return absolutize(spec, os.path.dirname(os.path.abspath(path)))


def absolutize(spec: Mapping[str, Any], base: str) -> dict[str, Any]:
    spec = dict(spec)
    for section, key in FILE_FIELDS:
        block = spec.get(section)
        if isinstance(block, dict) and isinstance(block.get(key), str) and block[key] \
                and not os.path.isabs(block[key]):
            spec[section] = {**block, key: os.path.join(base, block[key])}
    return spec


def read_bytes(path: str, field: str, source: str | None = None) -> bytes:
    """The bytes of the file ``field`` names; InputError when it cannot be read.

    ``source`` is the file that names ``path`` (a kubeconfig): the error then names that
    file and field and says which path failed; without it the error's source is ``path``.
    """
    try:
        with open(path, "rb") as handle:
            return handle.read()
    except OSError as exc:
        reason = exc.strerror or str(exc)
        if source is None:
            raise InputError(f"cannot read: {reason}", source=path, field=field) from None
        raise InputError(f"cannot read {path}: {reason}", source=source, field=field) from None


def _pem_blocks(data: bytes) -> list[bytes]:
    import base64
    import binascii

    blocks: list[bytes] = []
    for match in re.finditer(_PEM, data):
        try:
            base64.b64decode(b"".join(match.group(2).split()), validate=True)
        except (binascii.Error, ValueError):
            continue
        blocks.append(match.group(1))
    return blocks


def read_pem(path: str, field: str, want: str) -> bytes:
    """Read a PEM file and check it holds what ``want`` says ("certificate" or "key")."""
    data = read_bytes(path, field)
    labels = _pem_blocks(data)
    if want == "certificate":
        if b"CERTIFICATE" not in labels:
            found = f" (found {', '.join(label.decode() for label in labels)})" if labels else ""
            raise InputError(f"not a PEM certificate: expected a '-----BEGIN CERTIFICATE-----' block{found}",
                             source=path, field=field)
    elif not any(label in _KEY_LABELS for label in labels):
        raise InputError("not a PEM private key: expected a '-----BEGIN ... PRIVATE KEY-----' block",
                         source=path, field=field)
    return data


def read_tls(cfg: config_mod.AuditConfig) -> TLSMaterial:
    hook = cfg.webhook
    if hook is None:
        return TLSMaterial()
    if cfg.bundle is not None:
        return _bundle_tls(cfg.bundle)
    return TLSMaterial(
        ca=read_pem(hook.certificate_authority, "certificateAuthority", "certificate")
        if hook.certificate_authority else None,
        client_certificate=read_pem(hook.client_certificate, "clientCertificate", "certificate")
        if hook.client_certificate else None,
        client_key=read_pem(hook.client_key, "clientKey", "key") if hook.client_key else None,
    )


def read_policy(cfg: config_mod.AuditConfig) -> Any | None:
    """The custom policy document, when the AuditConfig names one."""
    if not cfg.policy.file:
        return None
    return yamlio.load_file(cfg.policy.file)


def read_bundle_config(directory: str) -> dict[str, Any]:
    """The spec of a bundle's resolved AuditConfig, its policy taken from the bundle itself.

    The bundle's policy file already holds the preset's policy with any inline rules and
    custom file, so it replaces them: a bundle copied to a node needs nothing else.
    """
    path = os.path.join(directory, CONFIG_FILE)
    if not os.path.isfile(path):
        raise InputError(f"no {CONFIG_FILE}: not a bundle written by 'kubeadm-audit generate' "
                         "(regenerate it to get one)", source=directory, field="--bundle")
    spec = read_config_file(path)
    spec["policy"] = {"file": os.path.abspath(os.path.join(directory, POLICY_FILE))}
    return spec


def _bundle_tls(directory: str) -> TLSMaterial:
    """The CA and client credentials the bundle's webhook kubeconfig embeds."""
    import base64
    import binascii

    path = os.path.join(directory, WEBHOOK_FILE)
    kubeconfig = yamlio.load_file(path)
    try:
        cluster = kubeconfig["clusters"][0]["cluster"]
        user = (kubeconfig.get("users") or [{}])[0].get("user") or {}
        data = {key: base64.b64decode(str(block[key]), validate=True) if block.get(key) else None
                for block, key in ((cluster, "certificate-authority-data"), (user, "client-certificate-data"),
                                   (user, "client-key-data"))}
    except (KeyError, IndexError, TypeError, AttributeError, binascii.Error, ValueError):
        raise InputError("not the webhook kubeconfig kubeadm-audit writes (one cluster with its "
                         "certificate data)", source=path) from None
    return TLSMaterial(ca=data["certificate-authority-data"], client_certificate=data["client-certificate-data"],
                       client_key=data["client-key-data"])
