"""freshness_trainer: drift, training, evaluation and publishing code run by the operator's Jobs.

Importing this package (and ``freshness_trainer.contract``) must not import torch: the operator
image installs the package without the ``trainer`` extra to read step results.
"""
