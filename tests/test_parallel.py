"""run_tasks: same results, in task order, in this process, local processes and on Dask."""

from __future__ import annotations

import os

import numpy as np
import pytest

from bayes_lac.errors import InputFileError
from bayes_lac.studies.parallel import TaskError, run_tasks


def seeded_sum(task: dict) -> dict:
    """A deterministic task: a seeded draw, plus where it ran."""
    rng = np.random.default_rng(task["seed"])
    return {"seed": task["seed"], "value": float(rng.normal(size=1000).sum()), "pid": os.getpid()}


def fails_on_three(task: int) -> int:
    if task == 3:
        raise ValueError("three is not allowed")
    return task * 10


def user_error_on_two(task: int) -> int:
    if task == 2:
        raise InputFileError("priors.toml: unknown parameter 'foo'")
    return task


def pytensor_flags(task: int) -> str:
    return os.environ.get("PYTENSOR_FLAGS", "")


TASKS = [{"seed": s} for s in (5, 1, 4, 2, 3)]


def test_in_process_keeps_order():
    out = run_tasks(seeded_sum, TASKS, workers=1, progress=False)
    assert [r["seed"] for r in out] == [5, 1, 4, 2, 3]
    assert {r["pid"] for r in out} == {os.getpid()}


def test_local_processes_match_in_process_and_use_children():
    here = run_tasks(seeded_sum, TASKS, workers=1, progress=False)
    local = run_tasks(seeded_sum, TASKS, workers=2, progress=False)
    assert [r["value"] for r in local] == [r["value"] for r in here]
    assert os.getpid() not in {r["pid"] for r in local}
    # Children get the pytensor flags even if the caller's environment does not set them.
    flags = run_tasks(pytensor_flags, [0, 1], workers=2, progress=False)
    assert all("blas__ldflags=" in f for f in flags)


def test_local_failure_names_the_task():
    with pytest.raises(TaskError, match=r"task 4 of 5 \(3\).*ValueError: three is not allowed") as info:
        run_tasks(fails_on_three, [0, 1, 2, 3, 4], workers=2, progress=False)
    assert info.value.task_index == 3
    assert isinstance(info.value.__cause__, ValueError)


def test_user_error_keeps_its_class():
    with pytest.raises(InputFileError, match=r"task 3 of 3 \(2\) failed: priors.toml"):
        run_tasks(user_error_on_two, [0, 1, 2], workers=1, progress=False)


def test_empty_and_bad_arguments():
    assert run_tasks(seeded_sum, [], workers=2, progress=False) == []
    with pytest.raises(ValueError, match="workers"):
        run_tasks(seeded_sum, TASKS, workers=0, progress=False)


def test_dask_local_cluster_matches_local_processes():
    distributed = pytest.importorskip("dask.distributed")
    local = run_tasks(seeded_sum, TASKS, workers=2, progress=False)
    with distributed.LocalCluster(n_workers=2, threads_per_worker=1, processes=True, dashboard_address=None) as cluster:
        on_dask = run_tasks(seeded_sum, TASKS, scheduler=cluster, progress=False)
        by_address = run_tasks(seeded_sum, TASKS[:2], scheduler=cluster.scheduler_address, progress=False)
        with pytest.raises(TaskError, match=r"task 4 of 5 \(3\)"):
            run_tasks(fails_on_three, [0, 1, 2, 3, 4], scheduler=cluster, progress=False)
    assert [r["value"] for r in on_dask] == [r["value"] for r in local]
    assert [r["seed"] for r in on_dask] == [5, 1, 4, 2, 3]
    assert [r["value"] for r in by_address] == [r["value"] for r in local[:2]]
    assert os.getpid() not in {r["pid"] for r in on_dask}


def test_scheduler_without_dask_installed_says_which_extra_to_install(monkeypatch):
    """Dask is an optional extra: asking for a scheduler without it is a clear error, raised
    before any task runs."""
    import importlib.util

    from bayes_lac.errors import MissingDependencyError

    real_find_spec = importlib.util.find_spec

    def no_dask(name, *args, **kwargs):
        if name == "dask" or name.startswith("dask."):
            return None
        return real_find_spec(name, *args, **kwargs)

    monkeypatch.setattr(importlib.util, "find_spec", no_dask)
    ran = []
    with pytest.raises(MissingDependencyError, match=r"pip install 'bayes_lac\[dask\]'"):
        run_tasks(ran.append, [1, 2], scheduler="tcp://127.0.0.1:8786", progress=False)
    assert ran == []


# -- the suite's own scheduling ----------------------------------------------------------------


@pytest.mark.xdist_group("grouping_check")
def test_loadgroup_keeps_a_group_on_one_worker(request):
    """Modules that fit share each fit through one ``xdist_group``, run by one worker. pytest-xdist
    does that by appending the group's name to each node id; with a pytest whose node ids it
    cannot change (9.2, with xdist 3.8) it silently spreads every group over the workers, which
    then each make the same fits (pyproject's dev extra pins pytest below 9.2)."""
    if not getattr(request.config.option, "loadgroup", False):  # set by pytest-xdist on its workers
        pytest.skip("only run under `--dist loadgroup` (make test)")
    assert request.node.nodeid.endswith("@grouping_check"), request.node.nodeid
