"""What the dev kubelet understands of a pod spec, and the container's environment. Pure, except
that ``container_env`` reads ConfigMaps and Secrets through the ``lookup`` it is given.

``check_fields`` walks the pod spec against an allow-list: a field it does not know, or a value it
cannot honour, raises ``Refused("UnsupportedField", "spec.containers[0].xyz: ...")`` and the pod
fails with that reason, as nothing may be silently ignored. Accepted without effect on the process,
on purpose: scheduling fields (the scheduler already placed the pod), ``image`` (commands run from
the runner's environment; an image of the local registry is pulled, see pull.py), ``ports`` (processes bind directly),
``resources.requests`` (used by the scheduler) and ``dnsPolicy`` (no cluster DNS exists here: names
resolve through this machine's resolver, after the pod's /etc/hosts, which names its subdomain's
pods: hack/kubelet/hosts.py).
"""

from __future__ import annotations

import base64
import re
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from typing import Any

ANY = None  # any value is honoured
Schema = dict[str, Any]  # field -> ANY | Schema | [Schema] | check(value) -> error or None
Lookup = Callable[[str, str, str], dict[str, str] | None]  # (kind, namespace, name) -> data, None if absent


class Refused(Exception):
    """The pod cannot run: ``reason`` is the container-waiting reason, ``message`` names the field."""

    def __init__(self, reason: str, message: str) -> None:
        super().__init__(f"{reason}: {message}")
        self.reason, self.message = reason, message


def _one_of(*allowed: Any) -> Callable[[Any], str | None]:
    return lambda v: None if v in allowed else f"{v!r} is not honoured (allowed: {', '.join(map(repr, allowed))})"


def _empty_dir(v: Any) -> str | None:
    if unknown := sorted(set(v) - {"medium", "sizeLimit"}):
        return f"{unknown} not honoured by the process runner"
    if v.get("medium", ""):
        return f"medium {v['medium']!r} is not honoured (a folder on this machine's disk only)"
    if v.get("sizeLimit"):
        return "sizeLimit is not enforced by the process runner"
    return None


def _no_limits(v: Any) -> str | None:
    return f"limits {sorted(v)} are not enforced by the process runner" if v else None


_KEY_REF: Schema = {"name": ANY, "key": ANY, "optional": ANY}
_PROBE: Schema = {
    "httpGet": {"path": ANY, "port": ANY, "host": ANY, "scheme": _one_of("HTTP"), "httpHeaders": ANY},
    "exec": {"command": ANY},
    "tcpSocket": {"port": ANY, "host": ANY},
    "initialDelaySeconds": ANY,
    "periodSeconds": ANY,
    "timeoutSeconds": ANY,
    "successThreshold": ANY,
    "failureThreshold": ANY,
}
_SECCOMP: Schema = {"type": _one_of("RuntimeDefault", "Unconfined")}
_CONTAINER_SC: Schema = {
    "runAsUser": ANY,
    "runAsGroup": ANY,
    "runAsNonRoot": ANY,
    "readOnlyRootFilesystem": ANY,
    "allowPrivilegeEscalation": ANY,
    "privileged": _one_of(False),
    "capabilities": {"drop": _one_of(["ALL"]), "add": _one_of([], None)},
    "seccompProfile": _SECCOMP,
}
CONTAINER: Schema = {
    "name": ANY,
    "image": ANY,
    "imagePullPolicy": ANY,
    "command": ANY,
    "args": ANY,
    "workingDir": ANY,
    "env": [
        {
            "name": ANY,
            "value": ANY,
            "valueFrom": {"fieldRef": {"fieldPath": ANY, "apiVersion": ANY}, "configMapKeyRef": _KEY_REF,
                          "secretKeyRef": _KEY_REF},
        }
    ],
    "envFrom": [{"prefix": ANY, "configMapRef": {"name": ANY, "optional": ANY},
                 "secretRef": {"name": ANY, "optional": ANY}}],
    "volumeMounts": [{"name": ANY, "mountPath": ANY, "readOnly": ANY}],
    "resources": {"requests": ANY, "limits": _no_limits},
    "securityContext": _CONTAINER_SC,
    "terminationMessagePath": ANY,
    "terminationMessagePolicy": ANY,
    "ports": ANY,
    "readinessProbe": _PROBE,
    "livenessProbe": _PROBE,
    # preStop runs before SIGTERM, inside the grace period (process_runner._terminate); postStart is refused
    "lifecycle": {"preStop": {"sleep": {"seconds": ANY}, "exec": {"command": ANY}}},
    "stdin": _one_of(False),
    "stdinOnce": _one_of(False),
    "tty": _one_of(False),
}
POD: Schema = {
    "containers": [CONTAINER],
    "initContainers": [CONTAINER],
    "volumes": [{"name": ANY, "emptyDir": _empty_dir}],
    "restartPolicy": ANY,
    "terminationGracePeriodSeconds": ANY,
    "activeDeadlineSeconds": ANY,
    "securityContext": {
        "runAsUser": ANY, "runAsGroup": ANY, "runAsNonRoot": ANY, "fsGroup": ANY, "supplementalGroups": ANY,
        "seccompProfile": _SECCOMP,
    },
    # A token is mounted only through a projected volume, which is refused: false and true mean the same here.
    "automountServiceAccountToken": ANY,
    "serviceAccountName": ANY,
    "serviceAccount": ANY,
    "enableServiceLinks": _one_of(False),
    "dnsPolicy": _one_of("ClusterFirst", "Default"),
    # the pod's own hostname and the headless Service that names it (hack/kubelet/hosts.py)
    "hostname": ANY,
    "subdomain": ANY,
    # scheduling: done by the scheduler before the pod reaches this node
    "nodeName": ANY,
    "nodeSelector": ANY,
    "affinity": ANY,
    "tolerations": ANY,
    "schedulerName": ANY,
    "priority": ANY,
    "priorityClassName": ANY,
    "preemptionPolicy": ANY,
}


def check_fields(spec: Mapping[str, Any]) -> None:
    """Raise ``Refused('UnsupportedField', ...)`` naming the first field the runner cannot honour."""
    if len(spec.get("containers") or []) != 1:
        raise Refused("UnsupportedField", "spec.containers: the process runner runs exactly one container per pod")
    _walk(spec, POD, "spec")


def _walk(value: Any, schema: Any, path: str) -> None:
    if schema is ANY or value is None:
        return
    if callable(schema):
        if (error := schema(value)) is not None:
            raise Refused("UnsupportedField", f"{path}: {error}")
    elif isinstance(schema, list):
        for i, item in enumerate(value):
            _walk(item, schema[0], f"{path}[{i}]")
    elif isinstance(value, Mapping):
        for key, item in value.items():
            if key not in schema:
                raise Refused("UnsupportedField", f"{path}.{key}: not honoured by the process runner")
            _walk(item, schema[key], f"{path}.{key}")


# ---------------------------------------------------------------- environment

_VAR = re.compile(r"\$\$|\$\(([-._a-zA-Z][-._a-zA-Z0-9]*)\)")


def expand(text: str, env: Mapping[str, str]) -> str:
    """The kubelet's ``$(VAR)`` expansion: defined names are replaced, ``$$`` escapes, the rest stays."""
    return _VAR.sub(lambda m: "$" if m.group(0) == "$$" else env.get(m.group(1), m.group(0)), text)


def field_value(pod: Mapping[str, Any], path: str, where: str) -> str:
    meta, spec, status = pod["metadata"], pod["spec"], pod.get("status") or {}
    simple = {
        "metadata.name": meta["name"],
        "metadata.namespace": meta["namespace"],
        "metadata.uid": meta.get("uid", ""),
        "spec.nodeName": spec.get("nodeName", ""),
        "spec.serviceAccountName": spec.get("serviceAccountName", ""),
        "status.podIP": status.get("podIP", ""),
        "status.hostIP": status.get("hostIP", ""),
    }
    if path in simple:
        return str(simple[path])
    if m := re.fullmatch(r"metadata\.(labels|annotations)\['([^']+)'\]", path):
        return str((meta.get(m.group(1)) or {}).get(m.group(2), ""))
    raise Refused("UnsupportedField", f"{where}.fieldPath: {path!r} is not a field the process runner resolves")


def _source(lookup: Lookup, kind: str, ns: str, name: str, optional: bool, where: str) -> dict[str, str] | None:
    data = lookup(kind, ns, name)
    if data is None and not optional:
        raise Refused("CreateContainerConfigError", f'{where}: {kind.lower()} "{name}" not found')
    return data


def container_env(
    container: Mapping[str, Any], pod: Mapping[str, Any], base: Mapping[str, str], lookup: Lookup, where: str
) -> dict[str, str]:
    """``base`` (the image's environment) + envFrom + env, in the kubelet's order and with its errors."""
    ns = pod["metadata"]["namespace"]
    env = dict(base)
    for i, item in enumerate(container.get("envFrom") or []):
        at = f"{where}.envFrom[{i}]"
        for kind, key in (("ConfigMap", "configMapRef"), ("Secret", "secretRef")):
            if ref := item.get(key):
                data = _source(lookup, kind, ns, ref["name"], bool(ref.get("optional")), f"{at}.{key}")
                env.update({item.get("prefix", "") + k: v for k, v in (data or {}).items()})
    for i, item in enumerate(container.get("env") or []):
        at = f"{where}.env[{i}]"
        if "value" in item or "valueFrom" not in item:
            env[item["name"]] = expand(str(item.get("value", "")), env)
            continue
        vf = item["valueFrom"]
        if ref := vf.get("fieldRef"):
            env[item["name"]] = field_value(pod, ref["fieldPath"], f"{at}.valueFrom.fieldRef")
        for kind, key in (("ConfigMap", "configMapKeyRef"), ("Secret", "secretKeyRef")):
            if ref := vf.get(key):
                optional, field = bool(ref.get("optional")), f"{at}.valueFrom.{key}"
                data = _source(lookup, kind, ns, ref["name"], optional, field)
                if data is not None and ref["key"] in data:
                    env[item["name"]] = data[ref["key"]]
                elif data is not None and not optional:
                    raise Refused("CreateContainerConfigError", f"{field}: key {ref['key']!r} not found in "
                                  f'{kind.lower()} "{ref["name"]}"')
    return env


def decode_secret(data: Mapping[str, str] | None) -> dict[str, str]:
    return {k: base64.b64decode(v).decode("utf-8", "replace") for k, v in (data or {}).items()}


# ---------------------------------------------------------------- identity


@dataclass(frozen=True)
class Identity:
    """Who the container's process is and what it may do."""

    uid: int
    gid: int
    groups: tuple[int, ...]
    read_only_root: bool
    no_new_privs: bool
    drop_all_caps: bool
    seccomp: bool


def _image_user(user: str, where: str) -> tuple[int, int]:
    """An image config's ``User`` (``uid[:gid]``); a name could only be looked up in the image."""
    uid, _, gid = user.partition(":")
    if not (uid or "0").isdigit() or not (gid or "0").isdigit():
        raise Refused("CreateContainerConfigError", f"{where}: the image's user {user!r} is not numeric; set "
                      "securityContext.runAsUser and runAsGroup")
    return int(uid or 0), int(gid or 0)


def identity(container: Mapping[str, Any], pod: Mapping[str, Any], where: str, image_user: str = "") -> Identity:
    """The container's securityContext over the pod's, as the kubelet merges them; what they leave
    unset comes from the image's ``User`` (a pulled image's config), else root."""
    psc = pod["spec"].get("securityContext") or {}
    csc = container.get("securityContext") or {}

    def pick(key: str) -> Any:
        return csc[key] if csc.get(key) is not None else psc.get(key)

    uid, gid = pick("runAsUser"), pick("runAsGroup")
    if uid is None or gid is None:
        image_uid, image_gid = _image_user(image_user, where)
        uid, gid = image_uid if uid is None else int(uid), image_gid if gid is None else int(gid)
    uid, gid = int(uid), int(gid)
    if pick("runAsNonRoot") and uid == 0:
        raise Refused("CreateContainerConfigError", f"{where}: runAsNonRoot is set and the container would run as "
                      "root (set runAsUser)")
    groups = [gid, *(int(g) for g in psc.get("supplementalGroups") or [])]
    if psc.get("fsGroup") is not None:
        groups.append(int(psc["fsGroup"]))
    seccomp = (pick("seccompProfile") or {}).get("type") == "RuntimeDefault"
    return Identity(
        uid=uid,
        gid=gid,
        groups=tuple(dict.fromkeys(groups)),
        read_only_root=bool(csc.get("readOnlyRootFilesystem")),
        no_new_privs=csc.get("allowPrivilegeEscalation") is False,
        drop_all_caps=(csc.get("capabilities") or {}).get("drop") == ["ALL"],
        seccomp=seccomp,
    )
