"""freshness_operator: the kopf operator that keeps ModelDeployments' models fresh.

Layers, checked by ``.importlinter``: ``core`` decides (pure), ``builders`` turn decisions into
manifests (pure), ``kube`` is the only module that talks to the Kubernetes API, ``reconcile`` and
``handlers`` wire them together.
"""

GROUP = "modelfreshness.io"
VERSION = "v1alpha1"
PLURAL = "modeldeployments"
KIND = "ModelDeployment"
