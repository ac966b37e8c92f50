"""Where kustomize looks for legacy exec plugins, and the executable we put there.

``kubectl kustomize`` runs only legacy exec plugins (no ``--enable-exec``): an
executable at ``<plugin home>/<group>/<version>/<lowercase kind>/<Kind>``, called
with the config file as its first argument and the resources on stdin.
"""
from __future__ import annotations

import os
import posixpath
from collections.abc import Callable, Mapping, Sequence

GROUP = "kubeadm-audit.dev"
VERSION = "v1alpha1"
KIND = "AuditConfig"

#: Shebang lines longer than this are cut by some kernels; longer paths go through /bin/sh.
MAX_SHEBANG = 120


def candidate_homes(env: Mapping[str, str]) -> list[tuple[str, str]]:
    """kustomize's own lookup order as (path, why); the first existing directory wins for lookups."""
    out = []
    if env.get("KUSTOMIZE_PLUGIN_HOME"):
        out.append((env["KUSTOMIZE_PLUGIN_HOME"], "$KUSTOMIZE_PLUGIN_HOME"))
    if env.get("XDG_CONFIG_HOME"):
        out.append((os.path.join(env["XDG_CONFIG_HOME"], "kustomize", "plugin"), "$XDG_CONFIG_HOME/kustomize/plugin"))
    if env.get("HOME"):
        out.append((os.path.join(env["HOME"], ".config", "kustomize", "plugin"), "$HOME/.config/kustomize/plugin"))
        out.append((os.path.join(env["HOME"], "kustomize", "plugin"), "$HOME/kustomize/plugin"))
    return out


def install_home(env: Mapping[str, str],
                 exists: Callable[[str], bool] = os.path.isdir) -> tuple[str | None, str]:
    """The plugin home to install into, and why.

    ``$KUSTOMIZE_PLUGIN_HOME`` when set (created if needed; kustomize then finds it
    first); otherwise the directory kustomize would find first: the first candidate
    that exists, or, when none exists yet, the first one that is set.
    """
    candidates = candidate_homes(env)
    if env.get("KUSTOMIZE_PLUGIN_HOME"):
        return env["KUSTOMIZE_PLUGIN_HOME"], "$KUSTOMIZE_PLUGIN_HOME"
    for path, why in candidates:
        if exists(path):
            return path, f"{why} (the first existing plugin home kustomize finds)"
    if candidates:
        path, why = candidates[0]
        return path, f"{why} (no plugin home exists yet; kustomize looks here first)"
    return None, "none of $KUSTOMIZE_PLUGIN_HOME, $XDG_CONFIG_HOME or $HOME is set"


def plugin_path(home: str) -> str:
    return os.path.join(home, GROUP, VERSION, KIND.lower(), KIND)


def script(python: str, package_root: str, search_path: Sequence[str] = ()) -> str:
    """A small launcher: this installation's Python and package, no CLI framework, no ``site``.

    kustomize starts the plugin once per build of every overlay. Python starts it with
    ``-S``: ``site`` (the .pth files, the user site, the search for sitecustomize) costs
    each call a few milliseconds, and what it would add to ``sys.path`` is known at
    install time: ``search_path`` (see :func:`search_path`), appended as site appends it.
    """
    body = ("# kubeadm-audit legacy Kustomize exec plugin for "
            f"{GROUP}/{VERSION} {KIND} (installed by 'kubeadm-audit plugin install').\n"
            "import sys\n"
            f"sys.path.insert(0, {package_root!r})\n"
            f"sys.path.extend([p for p in {list(search_path)!r} if p not in sys.path])\n"
            "from kubeadm_audit.krm import run\n"
            "run(sys.argv[1:])\n")
    if len(python) + len("#! -S") <= MAX_SHEBANG and not any(c.isspace() for c in python):
        return f"#!{python} -S\n{body}"
    quoted = "'" + python.replace("'", "'\"'\"'") + "'"
    # A shell/Python polyglot: sh runs the exec line, Python sees a string and a comment.
    return f"#!/bin/sh\n''''exec {quoted} -S \"$0\" \"$@\" # '''\n{body}"


def search_path(path: Sequence[str], safe_path: bool, pythonpath: str | None) -> list[str]:
    """The directories an installation imports from, as ``sys.path`` of a process run normally.

    ``path`` without its first entry (the running script's directory or the working
    directory, which Python puts first unless ``-P``), without PYTHONPATH's entries (the
    environment of the install, not of the installation) and without entries that do
    not exist: the standard library, site-packages, the user site and every .pth entry.
    """
    given = set(filter(None, (pythonpath or "").split(os.pathsep)))
    entries = list(path) if safe_path else list(path)[1:]
    return [entry for entry in dict.fromkeys(entries)
            if entry and entry not in given and os.path.exists(entry)]


def package_root() -> str:
    """The directory holding the kubeadm_audit package of this installation."""
    import kubeadm_audit

    return posixpath.dirname(posixpath.dirname(os.path.abspath(kubeadm_audit.__file__)))
