"""The model server for the trainer's model files: KServe's ModelServer (Open Inference Protocol v1/v2).

``settings`` reads the container's environment, ``inputs`` turns requests into image tensors (pure),
``predictor`` is the ``kserve.Model``, ``capture`` samples traffic to a time-partitioned folder in
the background, ``guard`` bounds and normalises request bodies, ``metrics`` are its Prometheus
series, ``__main__`` wires the server (``freshness-serve``) and ``local`` runs it as a subprocess
for tests and benchmarks. Importing this package imports nothing heavy.
"""
