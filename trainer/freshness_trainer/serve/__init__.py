"""The model server for the trainer's model files: KServe's ModelServer (Open Inference Protocol v1/v2).

``settings`` reads the container's environment, ``inputs`` turns requests into image tensors (pure),
``predictor`` is the ``kserve.Model``, ``capture`` samples traffic to a time-partitioned folder in
the background, ``metrics`` are its Prometheus series and ``__main__`` wires the server
(``freshness-serve``). Importing this package imports nothing heavy.
"""
