"""The dev kubelet's parts (hack/process_runner.py runs pods with them; dev-only, docs/architecture.md §5).

``podspec``: which pod-spec fields the runner honours (anything else fails the pod, naming the
field), the container's environment from the API, its identity. ``sandbox``: the per-pod mount
namespace (private emptyDirs, read-only root) and the drop to the pod's UID, run as a small script
between fork and exec. ``probes``: readiness and liveness probes.
"""
