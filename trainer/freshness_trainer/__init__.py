"""freshness_trainer: drift, training, evaluation and publishing code run by the operator's Jobs.

The result documents and the step options it shares with the operator live in
``freshness_contract``, which neither side owns. Importing this package must not import torch:
heavy imports happen inside the commands.

Importing it sets ``OMP_WAIT_POLICY=PASSIVE`` unless the environment already names a policy, before
any command loads torch's OpenMP runtime (which reads it once, at load). By default an idle OpenMP
thread spins for a while before it sleeps; a trainer whose threads share cores with another process
(two candidates on one node, a drift check beside the server, a CPU quota) then burns the CPU the
other needs, and passive threads cost a little when a stage has its cores alone (both measured in
benchmarks/README.md, "Training beside another process"). A ModelDeployment
whose steps have their nodes to themselves can set ``OMP_WAIT_POLICY=ACTIVE`` in ``spec.env``.
"""

import os

os.environ.setdefault("OMP_WAIT_POLICY", "PASSIVE")
