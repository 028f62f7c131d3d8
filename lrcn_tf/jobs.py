"""Tasks that depend on each other, run in a pool of worker processes (`--jobs N`).

    tasks = [
        Task("sf", run_row, (sf_cfg, data, workdir)),
        Task("fc6", run_row, (fc6_cfg, data, workdir), {"init": Result("sf")}),  # sf's result
        Task("flow", run_row, (flow_cfg, data, workdir)),
    ]
    for key, value in run(tasks, workers=2):  # as each task finishes
        ...

A task starts once every task it depends on has finished: those whose `Result` it takes as an
argument and those named in `after` (an order only). Of the tasks ready to start, the earliest
in the list goes first, and at most `workers` run at once. What a task computes depends only
on its arguments (every row seeds itself), so the results are those of running the tasks one
after another in list order, in any order that respects the dependencies.

The workers are fresh interpreters (the 'spawn' start method: TensorFlow is not fork-safe),
started once and reused; they keep TensorFlow's default thread settings, since another
thread count rounds differently. They show no tqdm bars (two processes' bars garble one
terminal): the caller prints a line per finished task. They ignore Ctrl-C, which the
whole process group receives: the parent stops them; and they die with the parent, so a
killed run leaves no worker writing a run folder that a rerun resumes. The first task that
raises stops the others, and its exception is raised in the parent (a `UserError` stays one
`error:` line).
"""

from __future__ import annotations

import contextlib
import dataclasses
import multiprocessing
import os
import signal
import sys
import threading
from collections.abc import Callable, Hashable, Iterator, Mapping, Sequence
from concurrent.futures import FIRST_COMPLETED, Future, ProcessPoolExecutor, wait
from concurrent.futures.process import BrokenProcessPool
from typing import Any


@dataclasses.dataclass(frozen=True)
class Result:
    """In a task's arguments: the value the task with this key returned."""

    key: Hashable


@dataclasses.dataclass(frozen=True)
class Task:
    """`fn(*args, **kwargs)` in a worker, once the tasks it depends on have finished.

    Attributes:
      key: names the task (unique; what `run` yields it under).
      fn: a module-level function (workers import it by name).
      args, kwargs: its arguments, picklable; a `Result(key)` among them is replaced by that
        task's value (and makes this task wait for it).
      after: keys of other tasks that must finish first (an order only).
    """

    key: Hashable
    fn: Callable[..., Any]
    args: tuple = ()
    kwargs: Mapping[str, Any] = dataclasses.field(default_factory=dict)
    after: tuple = ()

    @property
    def needs(self) -> set:
        """The keys of the tasks this one waits for."""
        given = [*self.args, *self.kwargs.values()]
        return {a.key for a in given if isinstance(a, Result)} | set(self.after)


def check(tasks: Sequence[Task]) -> None:
    """Raises ValueError for a repeated key, an unknown dependency or a cycle."""
    keys = [t.key for t in tasks]
    if len(set(keys)) != len(keys):
        raise ValueError(f"tasks: a key appears twice in {keys}")
    for t in tasks:
        unknown = t.needs - set(keys)
        if unknown:
            raise ValueError(f"task {t.key!r} waits for unknown tasks {sorted(map(str, unknown))}")
    finished: set = set()
    while len(finished) < len(tasks):
        free = [t.key for t in tasks if t.key not in finished and t.needs <= finished]
        if not free:
            raise ValueError(f"tasks wait for each other in a cycle: {set(keys) - finished}")
        finished.update(free)


def ready(tasks: Sequence[Task], finished: Mapping | set, started: set) -> list[Task]:
    """The tasks not started whose dependencies have all finished, in list order."""
    return [t for t in tasks if t.key not in started and all(k in finished for k in t.needs)]


def can_overlap(tasks: Sequence[Task]) -> bool:
    """Whether two of the tasks could run at once (neither waits, even indirectly, for the
    other): if not, a pool cannot be faster than running them in order."""
    by_key = {t.key: t for t in tasks}
    before: dict = {}  # key -> every key it waits for, directly or not
    for t in tasks:
        todo, seen = list(t.needs), set()
        while todo:
            k = todo.pop()
            if k not in seen:
                seen.add(k)
                todo.extend(by_key[k].needs)
        before[t.key] = seen
    keys = list(by_key)
    return any(
        a not in before[b] and b not in before[a] for i, a in enumerate(keys) for b in keys[i + 1 :]
    )


def run(
    tasks: Sequence[Task],
    workers: int,
    *,
    initializer: Callable[..., None] | None = None,
    initargs: tuple = (),
) -> Iterator[tuple[Hashable, Any]]:
    """Runs the tasks in `workers` processes; yields (key, value) as each one finishes.

    Args:
      tasks: in the order they should start when several are ready.
      workers: processes (at least 1; each task runs in a worker process even then).
      initializer: called with `initargs` in each worker before its first task (module
        level, like `fn`), e.g. to set the Keras dtype policy the parent uses.

    Raises:
      The first exception a task raised, after the other workers were stopped; RuntimeError
      when a worker process died (killed by the system, e.g. out of memory).
    """
    check(tasks)
    if workers < 1:
        raise ValueError(f"workers must be at least 1, got {workers}")
    results: dict = {}
    started: set = set()
    running: dict[Future, Task] = {}
    order = {t.key: i for i, t in enumerate(tasks)}
    with _no_progress_bars():
        pool = ProcessPoolExecutor(
            workers,
            mp_context=multiprocessing.get_context("spawn"),
            initializer=_start_worker,
            initargs=(os.getpid(), initializer, initargs),
        )
        try:
            while len(results) < len(tasks):
                for task in ready(tasks, results, started)[: workers - len(running)]:
                    args, kwargs = _resolved(task, results)
                    running[pool.submit(task.fn, *args, **kwargs)] = task
                    started.add(task.key)
                finished, _ = wait(running, return_when=FIRST_COMPLETED)
                for future in sorted(finished, key=lambda f: order[running[f].key]):
                    task = running.pop(future)
                    try:
                        results[task.key] = future.result()  # raises what the task raised
                    except BrokenProcessPool:
                        raise RuntimeError(
                            f"a worker process ended while running {task.key!r} (killed by the "
                            "system, out of memory?); run again to resume, or with --jobs 1"
                        ) from None
                    yield task.key, results[task.key]
            pool.shutdown(wait=True)
        finally:
            _stop(pool)


def _resolved(task: Task, results: Mapping) -> tuple[tuple, dict]:
    def value(a):
        return results[a.key] if isinstance(a, Result) else a

    return tuple(map(value, task.args)), {k: value(v) for k, v in task.kwargs.items()}


@contextlib.contextmanager
def _no_progress_bars():
    """Workers inherit the environment when they start (on demand, up to the end of `run`),
    and tqdm reads TQDM_DISABLE when it is imported; the parent's tqdm is imported already."""
    old = os.environ.get("TQDM_DISABLE")
    os.environ["TQDM_DISABLE"] = "1"
    try:
        yield
    finally:
        if old is None:
            os.environ.pop("TQDM_DISABLE", None)
        else:
            os.environ["TQDM_DISABLE"] = old


def _stop(pool: ProcessPoolExecutor) -> None:
    """Ends the workers now (after an error or Ctrl-C: a task still running is abandoned,
    as a killed run is, and resumes from its checkpoint next time)."""
    processes = list((getattr(pool, "_processes", None) or {}).values())
    for p in processes:
        if p.is_alive():
            p.kill()
    for p in processes:
        p.join()
    pool.shutdown(wait=True, cancel_futures=True)  # its queues' semaphores are released


def _start_worker(parent: int, initializer, initargs) -> None:
    signal.signal(signal.SIGINT, signal.SIG_IGN)  # Ctrl-C: the parent stops the workers
    _die_with(parent)
    # tqdm's default lock is a multiprocessing one (a named semaphore, which a worker killed
    # by `_stop` leaves behind); the workers draw no bars, a thread lock is enough.
    from tqdm import tqdm

    tqdm.set_lock(threading.RLock())
    if initializer is not None:
        initializer(*initargs)


def _die_with(parent: int) -> None:
    """Makes this process exit when `parent` does (even when it is killed)."""
    if sys.platform.startswith("linux"):
        import ctypes

        pr_set_pdeathsig = 1
        ctypes.CDLL(None).prctl(pr_set_pdeathsig, signal.SIGKILL)
        if os.getppid() != parent:  # it died before prctl
            os._exit(1)
        return

    def watch():
        while os.getppid() == parent:
            threading.Event().wait(0.5)
        os._exit(1)

    threading.Thread(target=watch, daemon=True, name="die-with-parent").start()
