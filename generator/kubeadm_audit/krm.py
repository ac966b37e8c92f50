"""``kubeadm-audit krm``: the KRM function and the legacy Kustomize exec plugin, one entry point.

The protocol is read from stdin: one ``kind: ResourceList`` document is a KRM
function call (kpt ``fn eval --exec`` / ``fn render --allow-exec``, kustomize
``--enable-alpha-plugins --enable-exec``); anything else, including nothing, is the
legacy exec plugin (``kubectl kustomize --enable-alpha-plugins``), whose config
file is the first argument.

This is the I/O edge: it reads stdin, the config and the files it names, and
writes stdout (data only) and stderr (messages only). It imports neither click nor
ruamel, and leaves every resource that is not a target as the text it came in.
"""
from __future__ import annotations

import os
import sys
from collections.abc import Sequence

from kubeadm_audit.typing_lite import TYPE_CHECKING

if TYPE_CHECKING:                 # imported when used: the KRM start-up path stays short
    from typing import Any, NoReturn

    from kubeadm_audit.resourcelist import Document

USAGE = """\
usage: kubeadm-audit krm                      KRM function: a ResourceList on stdin, one on stdout
       kubeadm-audit krm CONFIG_FILE          legacy Kustomize exec plugin: resources on stdin
       kubeadm-audit krm --strip-kubeadm-metadata   drop metadata from kubeadm and kind documents (stdin to stdout)

The function config is an AuditConfig (kubeadm-audit.dev/v1alpha1), or with kpt's
'-- key=value' form a ConfigMap whose keys are spec fields (webhook.server=https://...).
Annotations on the AuditConfig: kubeadm-audit.dev/mode: inject|generate|remove,
kubeadm-audit.dev/force: "true" (replace audit values someone else set),
kubeadm-audit.dev/allow-external-files: "true" (read spec files from outside the
function config's directory). What the function sets it records on each target
(annotation kubeadm-audit.dev/managed), so a changed config converges and
mode remove takes out exactly that.

Targets: Cluster API KubeadmControlPlane(Template) v1beta1/v1beta2, the
kube-system/kubeadm-config ConfigMap, kubeadm ClusterConfiguration documents and
kind Clusters (kind.x-k8s.io/v1alpha4: a kubeadmConfigPatches entry, control-plane
extraMounts, and the policy and webhook kubeconfig emitted as resources kpt writes
beside the Cluster's file; strip metadata, then run kind from that directory).
Install the legacy plugin for kubectl kustomize with: kubeadm-audit plugin install

Examples:
  kpt fn eval pkg --exec "kubeadm-audit krm" --fn-config audit.yaml
  kpt fn eval pkg --exec "kubeadm-audit krm" -- preset=zeron \\
      webhook.server=https://10.0.0.5:8080 webhook.certificateAuthority=ca.pem
  KUSTOMIZE_PLUGIN_HOME=$PWD/plugins kubectl kustomize --enable-alpha-plugins overlays/prod
  kubectl kustomize --enable-alpha-plugins kubeadm/ | kubeadm-audit krm --strip-kubeadm-metadata > kubeadm.yaml
  kubeadm-audit krm --strip-kubeadm-metadata < kind/dev.yaml > kind/dev.kind.yaml   (kubeadm and kind documents)
"""

PROG = "kubeadm-audit krm"


def main(argv: Sequence[str]) -> int:
    args = list(argv)
    if args[:1] in (["-h"], ["--help"]):
        sys.stdout.write(USAGE)
        return 0
    import gc

    from kubeadm_audit.errors import KubeadmAuditError

    # A short-lived process: the cyclic GC only slows big YAML loads (several-fold on a
    # whole-parse ResourceList) and has nothing to reclaim before exit.
    gc.disable()
    try:
        data = _read_stdin()
        if args[:1] == ["--strip-kubeadm-metadata"]:
            return _strip(data.decode("utf-8"))
        from kubeadm_audit import resourcelist

        if resourcelist.is_resource_list(data):
            return _krm(data)   # as bytes: a big list is held once, never as text too
        return _legacy(data.decode("utf-8"), args)
    except KubeadmAuditError as exc:
        _say("error", str(exc))
        return exc.exit_code
    except BrokenPipeError:
        return 1
    except (MemoryError, RecursionError) as exc:
        from kubeadm_audit.errors import exhausted

        _say("error", exhausted(exc))
        return 2
    finally:
        gc.enable()


def run(argv: Sequence[str]) -> NoReturn:
    """``main`` for a process of its own (the installed plugin), ended without the interpreter's teardown.

    Tearing down every module and collecting every object at exit costs a one-resource
    call a tenth of its time (issue 10), and the process has nothing left to release:
    the output is flushed here, it opened no file it writes, and nothing registers
    atexit work on this path.
    """
    code = main(argv)
    try:
        sys.stdout.flush()
    except BrokenPipeError:       # the reader went away: what main does for a write that fails
        code = code or 1
    finally:
        sys.stderr.flush()
    os._exit(code)


def _read_stdin() -> bytes:
    """stdin's bytes, checked to be UTF-8 (in pieces: no second copy of a big input)."""
    from kubeadm_audit.errors import InputError

    data = sys.stdin.buffer.read()
    if not data.isascii():
        import codecs

        decoder = codecs.getincrementaldecoder("utf-8")()
        view = memoryview(data)
        try:
            for at in range(0, len(data), 1 << 20):
                decoder.decode(view[at:at + (1 << 20)])
            decoder.decode(b"", final=True)
        except UnicodeDecodeError as exc:
            raise InputError(f"not UTF-8 text: {exc.reason}", source="<stdin>") from None
    return data


def _say(severity: str, message: str) -> None:
    sys.stderr.write(f"{PROG}: {severity}: {message}\n")


def _report(results: Sequence[dict[str, Any]], severities: Sequence[str] = ("error", "warning")) -> None:
    """Results as stderr lines: KRM callers show ``results`` themselves, so there only errors."""
    for entry in results:
        if entry.get("severity", "error") not in severities:
            continue
        ref = entry.get("resourceRef")
        message = entry["message"]
        # an error about a resource already names it (``Kind namespace/name: field: ...``)
        named = ref and message.startswith(f"{ref.get('kind')} ")
        where = f"{ref.get('kind')} {ref.get('name')}: " if ref and not named else ""
        _say(entry.get("severity", "error"), where + message)


# --- KRM ----------------------------------------------------------------------------------

def _krm(text: bytes) -> int:
    from kubeadm_audit import resourcelist, transform
    from kubeadm_audit.errors import KubeadmAuditError

    try:
        rl = resourcelist.ResourceList(text)
    except KubeadmAuditError as exc:
        results = [transform.result("error", str(exc))]
        sys.stdout.write(_empty_list(results))
        _report(results, ("error",))
        return exc.exit_code
    try:
        from kubeadm_audit import fnconfig

        fn = fnconfig.read(rl.function_config, "functionConfig")
        auditor = _Auditor(fn)
        report = transform.run(rl.items, auditor, fn.settings, _new_document)
        results, code = list(report.results), report.exit_code
        if not code and fn.settings.mode != "remove":
            auditor.check()
    except KubeadmAuditError as exc:
        results, code = [transform.result("error", transform.error_message(exc))], exc.exit_code
    results = _in_config_words(results)
    if code:
        rl = resourcelist.ResourceList(text)   # the input as it came: nothing half-done goes out
    out = getattr(sys.stdout, "buffer", None)
    if out is None:  # a text-only stdout (an embedding caller): the list as text
        sys.stdout.write(rl.render(results))
    else:
        sys.stdout.flush()
        rl.write(out, results)
        out.flush()
    _report(results, ("error",))
    return code


def _empty_list(results: list[dict[str, Any]]) -> str:
    from kubeadm_audit import resourcelist, yamlio

    return yamlio.dump({"apiVersion": resourcelist.DEFAULT_API_VERSION, "kind": resourcelist.RESOURCE_LIST_KIND,
                        "items": [], "results": results})


def _new_document(obj: dict[str, Any]) -> Document:
    from kubeadm_audit.resourcelist import Document

    return Document(obj=obj, source=f"{obj.get('kind')} {obj.get('metadata', {}).get('name')}")


_OPTION = None


def _in_config_words(results: Sequence[dict[str, Any]]) -> list[dict[str, Any]]:
    """Messages in the function config's words: the AuditConfig field for a command-line option.

    The configuration checks are shared with the command line, whose messages name its
    options (``--ca-file``); a pipeline user has only the AuditConfig. The option table
    (and click with it) is imported only when a message names one.
    """
    import re

    global _OPTION
    if _OPTION is None:
        _OPTION = re.compile(r"(?<![\w-])--(?!audit-)[a-z][a-z-]*[a-z]")
    if not any(_OPTION.search(str(entry.get("message", ""))) for entry in results):
        return list(results)
    from kubeadm_audit.cli.options import CONFIG_OPTIONS

    fields = {decl.split("/")[0]: f"spec.{path}" for _name, decls, path, _kwargs in CONFIG_OPTIONS for decl in decls}
    fields.update({"--no-log": "spec.log: null", "--config": "the function config",
                   "--force": f'the annotation {transform_force()}: "true"'})

    def reword(text: str) -> str:
        text = text.replace("--no-log / log: null", "--no-log")
        text = _OPTION.sub(lambda m: fields.get(m.group(0), m.group(0)), text)
        return re.sub(r"(\S+) \(\1\)", r"\1", text)

    return [{**entry, "message": reword(str(entry["message"]))} if "message" in entry else entry
            for entry in results]


def transform_force() -> str:
    from kubeadm_audit.transform import FORCE_ANNOTATION

    return FORCE_ANNOTATION


# --- legacy exec plugin -------------------------------------------------------------------

def _legacy(text: str, args: list[str]) -> int:
    from kubeadm_audit import fnconfig, resourcelist, transform, yamlio
    from kubeadm_audit.errors import InputError

    if not args:
        raise InputError("expected a KRM ResourceList on stdin, or the function config file as the first "
                         "argument (the legacy Kustomize exec plugin); see 'kubeadm-audit krm --help'",
                         source="<stdin>")
    path = args[0]
    fn = fnconfig.read(yamlio.load_file(path), path)
    documents = resourcelist.split_stream(text)
    if not documents and fn.settings.mode == "inject":
        raise InputError("no resources on stdin: list the AuditConfig under 'transformers:' (under "
                         f"'generators:' annotate it {fnconfig.MODE_ANNOTATION}: generate)", source=path)
    auditor = _Auditor(fn)
    report = transform.run(documents, auditor, fn.settings, _new_document)
    _report(_in_config_words(report.results))
    if report.exit_code:
        return report.exit_code
    if fn.settings.mode != "remove":
        auditor.check()
    sys.stdout.write(resourcelist.join_stream(documents))
    return 0


# --- the audit pieces, read once per Kubernetes version ------------------------------------

class _Auditor:
    """``auditor(version)``: resolve, read the files the config names, build and check the parts.

    Built on first use, once per Kubernetes version, and only for the target's own
    version when the configuration does not pin ``kubernetesVersion``. ``check``
    resolves once when no target asked, so a bad configuration fails even then.
    """

    def __init__(self, fn: Any) -> None:
        from kubeadm_audit import fnconfig

        base = fn.base_dir or os.environ.get("KUSTOMIZE_PLUGIN_CONFIG_ROOT") or os.getcwd()
        self.spec = fnconfig.file_references(fn.spec, base, fn.settings.allow_external_files, fn.source)
        self.source = fn.source
        self.pinned = "kubernetesVersion" in self.spec
        self.cache: dict[str | None, Any] = {}

    def __call__(self, version: str | None) -> Any:
        key = None if self.pinned else version
        if key not in self.cache:
            from kubeadm_audit import config, targets, transform
            from kubeadm_audit.pipeline import parts as pipeline_parts
            from kubeadm_audit.targets.kubeadm.options import of as kubeadm_options

            cfg = config.resolve(self.spec, source=self.source, target_version=key,
                                 target=targets.hooks("kubeadm"))
            if not self.cache and kubeadm_options(cfg).route != "extraArgs":
                _say("warning", "kubeadmRoute: patches does not apply in pipelines: targets get extraArgs "
                                "and extraVolumes")
            parts = pipeline_parts.read(cfg)
            self.cache[key] = transform.audit(cfg, parts)
        return self.cache[key]

    def check(self) -> None:
        if not self.cache:
            self(None)


# --- strip ----------------------------------------------------------------------------------

def _strip(text: str) -> int:
    """Drop ``metadata`` from kubeadm and kind documents: kustomize and kpt need it, ``kubeadm config
    validate`` and kind's loader refuse it."""
    from kubeadm_audit import resourcelist, transform

    documents = resourcelist.split_stream(text)
    for document in documents:
        api_version, kind = document.header
        if not kind:
            obj = document.obj
            api_version = str(obj.get("apiVersion") or "") if isinstance(obj, dict) else ""
        if transform.group_of(api_version) in transform.STRIP_GROUPS and isinstance(document.obj, dict) \
                and "metadata" in document.obj:
            del document.obj["metadata"]
            document.mark_changed()
    sys.stdout.write(resourcelist.join_stream(documents))
    return 0
