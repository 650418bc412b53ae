"""The server's Prometheus series (``modelfreshness_serving_*``, docs/contracts.md).

They live in prometheus_client's default registry, which KServe's ``/metrics`` endpoint exports
beside its own ``request_*_seconds`` histograms.
"""

from __future__ import annotations

from prometheus_client import Counter, Gauge, Histogram

PREFIX = "modelfreshness_serving_"

PREDICTIONS = Counter(PREFIX + "predictions_total", "Predictions made, by predicted class.", ["model", "class"])
CONFIDENCE = Histogram(
    PREFIX + "confidence", "Probability of the predicted class, per prediction.", ["model"],
    buckets=(0.3, 0.4, 0.5, 0.6, 0.7, 0.8, 0.9, 0.95, 0.99, 1.0),
)
REQUEST_SECONDS = Histogram(
    PREFIX + "request_duration_seconds", "Time from a decoded request to its response body, by outcome.",
    ["model", "outcome"],
    buckets=(0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0),
)
REQUESTS = Counter(PREFIX + "requests_total", "Inference requests, by outcome (ok, bad_request, error).",
                   ["model", "outcome"])
MODEL_READY = Gauge(PREFIX + "model_ready", "1 once the model loaded and answered a warm-up prediction.", ["model"])
CAPTURED = Counter(PREFIX + "captured_samples_total", "Samples written to the capture location.", ["model"])
DROPPED = Counter(
    PREFIX + "capture_dropped_samples_total",
    "Samples chosen for capture but not written: queue_full (the writer lags) or write_error (the sink failed).",
    ["model", "reason"],
)
QUEUE = Gauge(PREFIX + "capture_queue_samples", "Samples waiting in the capture queue.", ["model"])
