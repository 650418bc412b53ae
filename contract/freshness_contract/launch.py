"""How a training pod learns that it is one of several: the environment of a multi-process candidate.

The operator sets these on every pod of a candidate with ``spec.training.nodes`` > 1 or
``gpusPerNode`` > 1 (``freshness_operator.builders``); the trainer's train stage reads them and
starts ``torchrun`` (``freshness_trainer.distributed``). Absent or ``NNODES`` = ``NPROC_PER_NODE``
= 1: one process, as before. Pure; docs/contracts.md lists them.
"""

from __future__ import annotations

NNODES = "FRESHNESS_NNODES"
"""Pods in the group (the Indexed Job's completions)."""
NPROC_PER_NODE = "FRESHNESS_NPROC_PER_NODE"
"""Processes per pod (its GPUs; 1 on the CPU)."""
NODE_RANK = "FRESHNESS_NODE_RANK"
"""This pod's completion index (0 .. NNODES-1); index 0 hosts the rendezvous and writes the results."""
NODE_ADDR = "FRESHNESS_NODE_ADDR"
"""This pod's own DNS name, ``<job>-<index>.<service>``: its address in the rendezvous."""
RDZV_ID = "FRESHNESS_RDZV_ID"
"""The rendezvous id (the Job's name): only pods of one candidate meet."""
MASTER_ADDR = "MASTER_ADDR"
"""Index 0's DNS name, ``<job>-0.<service>``: where the c10d rendezvous is hosted."""
MASTER_PORT = "MASTER_PORT"
RDZV_PORT = 29400
"""torchrun's default c10d rendezvous port."""
COMPLETION_INDEX_ANNOTATION = "batch.kubernetes.io/job-completion-index"
"""Set by the Job controller on each pod of an Indexed Job."""
