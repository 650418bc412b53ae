"""One kit for the tests, the benchmarks and ``hack/``: what they all need to drive a real cluster.

- ``testkit.wait``: ``wait_for`` (poll until truthy, fail naming what was awaited) and ``WaitTimeout``.
- ``testkit.net``: ``free_port``, ``http_ok``.
- ``testkit.process``: ``stop_process`` (terminate, then kill) and ``log_tail``.
- ``testkit.api``: ``Api`` (JSON over urllib3 with a kubeconfig's credentials), ``Watch``, bulk create/patch.
- ``testkit.labels``: the label keys, imported from ``freshness_contract.labels`` (never copied).
- ``testkit.manifests``: fluent builders, ``ModelDeploymentBuilder("cats").interval("2s").obj()``,
  ``ServingDeploymentBuilder("cats-dogs").image(...).obj()``, and ``merge``.
- ``testkit.results``: fake step result documents, each validated by ``freshness_contract``.
- ``testkit.pods``: ``termination_patch`` and ``finish_step_pod``: end a step pod as its container
  would (kwok leaves pods labelled ``modelfreshness.io/step`` Running).

Importable from the repository root (the root is on ``PYTHONPATH`` in the Makefile and pytest).
"""
