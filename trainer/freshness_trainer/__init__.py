"""freshness_trainer: drift, training, evaluation and publishing code run by the operator's Jobs.

The result documents and the step options it shares with the operator live in
``freshness_contract``, which neither side owns. Importing this package must not import torch:
heavy imports happen inside the commands.
"""
