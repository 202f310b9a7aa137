"""Run independent model fits in parallel: local processes by default, a Dask cluster on request.

Prior-sensitivity refits and backtest origins are independent fits of the same model, so they
are a plain map of one top-level function over a list of tasks. `run_tasks` does that map and
nothing more: no queueing, retries or scheduling of its own.

* Local (default): a ``concurrent.futures.ProcessPoolExecutor`` whose workers are started with
  the ``"spawn"`` method. PyMC/pytensor hold compiled functions, threads and file locks that do
  not survive ``fork``, so children start from a fresh interpreter.
* Dask: given a scheduler address (``tcp://host:8786``), the tasks go to that cluster through
  ``dask.distributed.Client``; the cluster's workers must have ``bayes_lac`` installed.

What a new process costs
------------------------
Every worker process imports PyMC and compiles the model's log-density and gradient again:
in-memory compiled functions cannot be shared between processes. Measured on the project's
2-core machine while other work was running (so roughly): starting two spawned workers and
importing PyMC in them, about 4.5 s; compiling a model, 10-15 s when pytensor's on-disk cache
(``~/.pytensor``, shared by all processes of the user) already holds the same graph, but
30-45 s for a graph it has not seen. The model's data are constants of its graph, so every
new data set (each backtest origin, each simulated panel) is a graph not seen before, and
compiling costs about as much as sampling a small model. A local pool reuses its worker
processes, so the import is paid once per worker and the compilation once per task. For a
handful of small fits, ``workers=1`` (run in this process, no new interpreter) is often as
fast. ``bench/bench_backtest.py`` times one backtest origin in this process and in a worker.

Scripts
-------
Spawned workers import the calling script's main module again, so a script (not a notebook
or the ``bayes-lac`` command) that calls `run_tasks` with local processes must do so inside
``if __name__ == "__main__":``.
"""

from __future__ import annotations

import copy
import multiprocessing
import os
from collections.abc import Callable, Sequence
from concurrent.futures import ProcessPoolExecutor, as_completed
from concurrent.futures.process import BrokenProcessPool

from tqdm.auto import tqdm

from bayes_lac.errors import BayesLacError, MissingDependencyError

#: Environment every worker gets unless the caller's environment already sets it: no BLAS
#: link attempt (the machines have no BLAS development libraries; the warning is harmless),
#: and no interactive matplotlib back-end.
CHILD_ENVIRONMENT: dict[str, str] = {
    "PYTENSOR_FLAGS": "blas__ldflags=",
    "MPLBACKEND": "Agg",
}

#: Start method for local worker processes; see the module docstring for why not "fork".
START_METHOD = "spawn"


class TaskError(RuntimeError):
    """A task failed in a worker for a reason that is not a user error.

    ``task_index`` is the position of the failed task in the list given to `run_tasks` and
    ``task`` the task itself; the original exception is chained as ``__cause__``.
    """

    def __init__(self, message: str, task_index: int, task):
        super().__init__(message)
        self.task_index = task_index
        self.task = task


def child_environment() -> dict[str, str]:
    """Environment variables workers need: `CHILD_ENVIRONMENT` overridden by this process's values."""
    return {key: os.environ.get(key, value) for key, value in CHILD_ENVIRONMENT.items()}


def _initialise_worker(environment: dict[str, str]) -> None:
    # Runs in each new worker before any task (and so before pytensor is imported there).
    os.environ.update(environment)


def _describe(task, limit: int = 200) -> str:
    text = repr(task)
    return text if len(text) <= limit else text[: limit - 3] + "..."


def _reraise(err: BaseException, index: int, task, n_tasks: int):
    where = f"task {index + 1} of {n_tasks} ({_describe(task)})"
    if isinstance(err, BayesLacError):
        # A user error keeps its class (and attributes), so the CLI still prints it as one
        # clear message, now naming the task.
        named = copy.copy(err)
        named.args = (f"{where} failed: {err}",)
        raise named from err
    hint = ""
    if isinstance(err, BrokenProcessPool):
        hint = (
            " (a worker process died: out of memory, killed, or a script that calls run_tasks "
            'outside an `if __name__ == "__main__":` block, which spawned workers re-run)'
        )
    raise TaskError(f"{where} failed: {type(err).__name__}: {err}{hint}", index, task) from err


def run_tasks(
    function: Callable,
    tasks: Sequence,
    workers: int = 2,
    scheduler=None,
    progress: bool = True,
    description: str = "tasks",
) -> list:
    """Call ``function(task)`` for every task, in parallel, and return the results in task order.

    Parameters
    ----------
    function
        A top-level (importable, picklable) function of one argument.
    tasks
        The arguments, one per call; each must be picklable (plain values, dicts, DataFrames).
    workers
        Local worker processes (ignored when `scheduler` is given). ``1`` runs the tasks one
        after another in this process: no new interpreter, no re-import or re-compilation.
    scheduler
        ``None`` for local processes; a Dask scheduler address such as ``"tcp://host:8786"``;
        or a running ``dask.distributed`` cluster object (anything with a
        ``scheduler_address``), which is how the tests pass a ``LocalCluster``.
    progress
        Show a tqdm progress bar of completed tasks.
    description
        Label of the progress bar.

    Returns
    -------
    list
        ``function(task)`` for each task, in the order of `tasks`.

    Raises
    ------
    BayesLacError
        (the task's own class) if a task raised a user error; the message names the task.
    TaskError
        if a task raised any other exception; the message names the task and the original is
        chained. Tasks not yet started are cancelled (running ones finish first): a failure is
        never skipped silently.
    """
    tasks = list(tasks)
    if not callable(function):
        raise TypeError(f"function must be callable, got {function!r}")
    if scheduler is not None:
        require_dask()
    if scheduler is None and workers < 1:
        raise ValueError(f"workers must be at least 1, got {workers}")
    if not tasks:
        return []
    bar = tqdm(total=len(tasks), desc=description, disable=not progress, unit="task")
    try:
        if scheduler is not None:
            return _run_dask(function, tasks, scheduler, bar)
        if workers == 1:
            return _run_here(function, tasks, bar)
        return _run_local(function, tasks, workers, bar)
    finally:
        bar.close()


def _run_here(function, tasks, bar) -> list:
    results = []
    for index, task in enumerate(tasks):
        try:
            results.append(function(task))
        except (KeyboardInterrupt, SystemExit):
            raise
        except BaseException as err:  # noqa: BLE001 - never swallowed: re-raised at once, naming the task
            _reraise(err, index, task, len(tasks))
        bar.update(1)
    return results


def _run_local(function, tasks, workers, bar) -> list:
    context = multiprocessing.get_context(START_METHOD)
    results: list = [None] * len(tasks)
    with ProcessPoolExecutor(
        max_workers=min(workers, len(tasks)),
        mp_context=context,
        initializer=_initialise_worker,
        initargs=(child_environment(),),
    ) as pool:
        futures = {pool.submit(function, task): index for index, task in enumerate(tasks)}
        try:
            for future in as_completed(futures):
                index = futures[future]
                error = future.exception()
                if error is not None:
                    _reraise(error, index, tasks[index], len(tasks))
                results[index] = future.result()
                bar.update(1)
        except BaseException:
            pool.shutdown(wait=True, cancel_futures=True)
            raise
    return results


def require_dask() -> None:
    """Raise `MissingDependencyError` unless ``dask.distributed`` can be imported.

    Dask is an optional extra (``pip install 'bayes_lac[dask]'``): only a scheduler
    (``--scheduler``) needs it; local processes do not.
    """
    import importlib.util

    try:
        found = importlib.util.find_spec("dask.distributed") is not None
    except ModuleNotFoundError:  # no dask at all
        found = False
    if not found:
        raise MissingDependencyError(
            "a Dask scheduler (--scheduler) needs Dask's distributed scheduler, which is not installed: "
            "pip install 'bayes_lac[dask]', or leave out --scheduler to use local processes"
        )


def _run_dask(function, tasks, scheduler, bar) -> list:
    from dask.distributed import Client
    from dask.distributed import as_completed as dask_as_completed

    address = getattr(scheduler, "scheduler_address", scheduler)
    if not isinstance(address, str):
        raise TypeError(f"scheduler must be an address string or a Dask cluster, got {scheduler!r}")
    try:
        client = Client(address, timeout="30s")
    except OSError as err:
        raise BayesLacError(
            f"could not reach the Dask scheduler at {address!r} ({err}); start one with "
            "`dask scheduler` and workers with `dask worker ADDRESS`, or omit --scheduler "
            "to use local processes"
        ) from err
    with client:
        # Workers may not have imported pytensor yet; set its flags before any task runs.
        client.run(_initialise_worker, child_environment())
        # pure=False: identical tasks (e.g. two refits with the same seed) still both run.
        futures = client.map(function, tasks, pure=False)
        index_of = {future.key: index for index, future in enumerate(futures)}
        results: list = [None] * len(tasks)
        try:
            for future in dask_as_completed(futures):
                index = index_of[future.key]
                if future.status == "error":
                    _reraise(future.exception(), index, tasks[index], len(tasks))
                results[index] = future.result()
                bar.update(1)
        except BaseException:
            client.cancel(futures)
            raise
    return results
