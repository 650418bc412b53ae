"""The dev kubelet's parts (hack/process_runner.py runs pods with them; dev-only, docs/architecture.md §5).

``podspec``: which pod-spec fields the runner honours (anything else fails the pod, naming the
field), the container's environment from the API, its identity. ``sandbox``: the per-container
mount namespace (private emptyDirs, own /dev, read-only root) and the drop to the pod's UID, run as
a small script between fork and exec. ``volumes``: the emptyDirs and the mount plan. ``network``: a
network namespace and IP per pod. ``probes``: readiness and liveness. ``image``: what stands in for
the image. ``node`` and ``status``: what the runner reports to the API.
"""
