"""How kubeadm turns ClusterConfiguration.apiServer into the kube-apiserver Pod (for tests).

Modelled on reference/kubeadm.md §2.1-2.2: an extraArg removes every default flag of
the same name; flags are rendered ``--name=value``; extra volumes are keyed by name
(a same-named default is replaced) and volumes and mounts come out sorted by name.
"""
from __future__ import annotations

import copy

from kubeadm_audit.kubeadm import extra_args_items


def render(manifest: dict, api_server: dict) -> dict:
    pod = copy.deepcopy(manifest)
    container = pod["spec"]["containers"][0]
    extra = extra_args_items(api_server.get("extraArgs"))
    names = {name for name, _ in extra}
    defaults = [arg for arg in container["command"][1:]
                if arg[2:].partition("=")[0] not in names]
    container["command"] = [container["command"][0]] + defaults + [f"--{n}={v}" for n, v in extra]
    volumes = {v["name"]: v for v in pod["spec"]["volumes"]}
    mounts = {m["name"]: m for m in container["volumeMounts"]}
    for ev in api_server.get("extraVolumes") or []:
        volumes[ev["name"]] = {"hostPath": {"path": ev["hostPath"], "type": ev.get("pathType", "")},
                               "name": ev["name"]}
        mount = {"mountPath": ev["mountPath"], "name": ev["name"]}
        if ev.get("readOnly"):
            mount["readOnly"] = True
        mounts[ev["name"]] = mount
    pod["spec"]["volumes"] = [volumes[k] for k in sorted(volumes)]
    container["volumeMounts"] = [mounts[k] for k in sorted(mounts)]
    return pod
