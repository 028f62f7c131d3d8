"""`--strategy`: one process, the GPUs of one host, or workers on several machines.

    strategy = build("multi_worker")      # MultiWorkerMirroredStrategy from $TF_CONFIG
    if is_chief(strategy): ...            # only the chief writes run folders and results
    exists = chief_decides(strategy, path.exists())   # every worker takes the chief's branch
    barrier(strategy)                     # every worker waits for the chief's writes

Across machines every worker runs the same program, and every collective (a training step,
`barrier`, `chief_decides`) must be reached by all of them in the same order. Decisions
taken from files the chief writes (a finished row, a pre-trained CNN) therefore go through
`chief_decides`, so that no worker takes another branch because it looked a moment later.
With no strategy, or one process (`mirrored`), these helpers do nothing and cost nothing.
"""

from __future__ import annotations

import json
import os
from typing import Any

from lrcn_tf.errors import UserError

STRATEGIES = ("none", "mirrored", "multi_worker")


class ClusterError(UserError):
    """TF_CONFIG is missing or does not describe this worker's cluster."""


def cluster_from_env(environ: dict[str, str] | None = None) -> dict[str, Any]:
    """TF_CONFIG, parsed and checked: {"cluster": {type: [host:port, ...]}, "task": {...}}.

    Raises:
      ClusterError: one line saying what is missing or malformed.
    """
    environ = os.environ if environ is None else environ
    raw = environ.get("TF_CONFIG")
    where = "--strategy multi_worker: TF_CONFIG"
    example = (
        'e.g. TF_CONFIG=\'{"cluster": {"worker": ["host1:2222", "host2:2222"]}, '
        '"task": {"type": "worker", "index": 0}}\''
    )
    if not raw or not raw.strip():
        raise ClusterError(
            f"{where} is not set: give every worker the cluster and its task, {example}"
        )
    try:
        spec = json.loads(raw)
    except ValueError as e:
        raise ClusterError(f"{where} is not JSON ({e}): {example}") from None
    if not isinstance(spec, dict):
        raise ClusterError(f"{where} must be a JSON object, {example}")
    cluster, task = spec.get("cluster"), spec.get("task")
    if not isinstance(cluster, dict) or not cluster:
        raise ClusterError(f'{where} has no "cluster" (task type -> [host:port, ...]), {example}')
    for kind, hosts in cluster.items():
        if kind not in ("chief", "worker", "evaluator", "ps"):
            raise ClusterError(f'{where}: unknown task type "{kind}" in "cluster"')
        if kind in ("evaluator", "ps"):
            raise ClusterError(
                f'{where}: task type "{kind}" is not used by --strategy multi_worker'
            )
        if (
            not isinstance(hosts, list)
            or not hosts
            or not all(isinstance(h, str) and ":" in h for h in hosts)
        ):
            raise ClusterError(f'{where}: cluster "{kind}" must be a list of "host:port"')
    if len(cluster.get("chief", [])) > 1:
        raise ClusterError(f'{where}: at most one "chief"')
    if not isinstance(task, dict) or "type" not in task or "index" not in task:
        raise ClusterError(f'{where} has no "task" ({{"type": ..., "index": ...}}), {example}')
    kind, index = task["type"], task["index"]
    if kind not in cluster:
        raise ClusterError(
            f'{where}: task type "{kind}" is not in "cluster" ({", ".join(cluster)})'
        )
    if not isinstance(index, int) or isinstance(index, bool) or not 0 <= index < len(cluster[kind]):
        raise ClusterError(
            f'{where}: task index {index!r} is not one of the {len(cluster[kind])} "{kind}" hosts'
        )
    return spec


def chief_of(spec: dict[str, Any]) -> bool:
    """Whether TF_CONFIG's task is the chief: the "chief" task, or worker 0 when there is none."""
    task = spec["task"]
    if "chief" in spec["cluster"]:
        return task["type"] == "chief"
    return task["type"] == "worker" and task["index"] == 0


def build(name: str):
    """The tf.distribute strategy of `--strategy name`; None for `none`.

    `multi_worker` must be built before TensorFlow runs anything else in the process (it
    sets up the collectives), so entry points build it first.
    """
    if name not in STRATEGIES:
        raise UserError(f"--strategy {name}: choose from {', '.join(STRATEGIES)}")
    if name == "none":
        return None
    if name == "multi_worker":
        cluster_from_env()  # one clear line before TensorFlow reads it
    import tensorflow as tf

    from lrcn_tf import runtime

    if name == "mirrored":
        return tf.distribute.MirroredStrategy()
    strategy = tf.distribute.MultiWorkerMirroredStrategy()
    runtime.set_chief(is_chief(strategy))  # run folders: the chief writes, the others read
    return strategy


def scope(strategy):
    """`strategy.scope()` (models and optimizers are built in it), or a no-op context."""
    import contextlib

    return strategy.scope() if strategy is not None else contextlib.nullcontext()


def is_multi_worker(strategy) -> bool:
    return strategy is not None and getattr(strategy.extended, "_num_workers", 1) > 1


def is_chief(strategy) -> bool:
    """Whether this process writes checkpoints, run folders and results (always, unless it is
    a non-chief worker of a multi-worker strategy)."""
    if strategy is None:
        return True
    return bool(getattr(strategy.extended, "should_checkpoint", True))


def worker_index(strategy) -> int:
    """This worker's number in the cluster (0 for one process)."""
    if not is_multi_worker(strategy):
        return 0
    return int(getattr(strategy.extended, "_id_in_cluster", 0))


_ALL_SUM: dict[int, Any] = {}  # id(strategy) -> its compiled all-sum (traced once)


def _all_sum(strategy, value: float) -> float:
    """The sum of `value` over every replica of every worker (a collective)."""
    import tensorflow as tf

    step = _ALL_SUM.get(id(strategy))
    if step is None:

        @tf.function
        def step(x):
            per_replica = strategy.run(tf.identity, args=(x,))
            return strategy.reduce(tf.distribute.ReduceOp.SUM, per_replica, axis=None)

        _ALL_SUM[id(strategy)] = step
    local = strategy.num_replicas_in_sync // max(1, getattr(strategy.extended, "_num_workers", 1))
    return float(step(tf.constant(value / local, tf.float32)))


def barrier(strategy) -> None:
    """Every worker waits here until all have arrived (e.g. after the chief wrote a file the
    others read next). Nothing for one process."""
    if is_multi_worker(strategy):
        _all_sum(strategy, 0.0)


def chief_decides(strategy, flag: bool) -> bool:
    """The chief's `flag`, on every worker (a collective; one process: `flag` itself)."""
    if not is_multi_worker(strategy):
        return flag
    return _all_sum(strategy, 1.0 if (flag and is_chief(strategy)) else 0.0) > 0.5
