"""Runs are read straight from HDF5 (`bayes_lac.model.runfile`), and that reading equals xarray's.

The direct reader exists for speed (an analysis command's time went mostly to xarray's per-variable
metadata look-ups). Its whole contract is that it returns what xarray's h5netcdf backend returns,
or declines: these tests compare the two readings of a toy run, of a fitted run, and of files using
netCDF features the reader leaves to xarray.
"""

from __future__ import annotations

import h5py
import numpy as np
import pytest
import xarray as xr

from bayes_lac.model.diagnostics import gate_digest
from bayes_lac.model.results import ANALYSIS_GROUPS, GATE_SAMPLE_STATS, _read, load_run, save_run
from bayes_lac.model.runfile import read_groups
from tests.conftest import make_toy_results


def _through_xarray(path, groups=None) -> xr.DataTree:
    """The run in `path` read by xarray's h5netcdf backend: every group, or the root attrs,
    `groups` and of ``sample_stats`` only what the gate reads."""
    if groups is None:
        with xr.open_datatree(path, engine="h5netcdf") as tree:
            return tree.load()
    with h5py.File(path, "r") as handle:
        unread = [k for k in handle["sample_stats"] if k not in GATE_SAMPLE_STATS]
        present = [g for g in groups if g in handle]
    parts = {}
    for group in present:
        drop = unread if group == "sample_stats" else None
        with xr.open_dataset(path, engine="h5netcdf", group=group, drop_variables=drop) as ds:
            parts[group] = ds.load()
    tree = xr.DataTree.from_dict(parts)
    with xr.open_dataset(path, engine="h5netcdf") as root:
        tree.attrs.update(root.attrs)
    return tree


def _typed(attrs) -> dict:
    """Attributes with their types: 1.0 and np.float64(1.0), or a list and an array, differ."""
    return {k: (type(v).__name__, repr(v)) for k, v in attrs.items()}


def assert_same_run(direct: xr.DataTree, reference: xr.DataTree) -> None:
    """Two readings of a run are the same: groups, root attrs, and in every group the same
    variables, coordinates, values, attributes (with their types) and dtypes."""
    assert set(direct.children) == set(reference.children)
    assert _typed(direct.attrs) == _typed(reference.attrs)
    for group in reference.children:
        a, b = direct[group].to_dataset(inherit=False), reference[group].to_dataset(inherit=False)
        xr.testing.assert_identical(a, b)
        assert set(a.coords) == set(b.coords), group
        assert {k: a[k].dtype for k in a.variables} == {k: b[k].dtype for k in b.variables}, group
        assert _typed(a.attrs) == _typed(b.attrs), group
        for name in b.variables:
            assert _typed(a[name].attrs) == _typed(b[name].attrs), (group, name)


def _toy_run(tmp_path, edit=None, hdf5_edit=None) -> str:
    """A toy run saved to `tmp_path`; `edit` changes the run before saving, `hdf5_edit` the
    saved file's HDF5 attributes after (as another netCDF writer could have written them)."""
    run = make_toy_results()
    # what a real run holds besides the toy's: a sampler statistic the gate does not read, a
    # pointwise log-likelihood, a blank (NaN) observed cell and text labels
    stats = run["sample_stats"].to_dataset()
    run["sample_stats"] = xr.DataTree(stats.assign(step_size=(("chain", "draw"), np.full((2, 500), 0.1))))
    run["log_likelihood"] = xr.DataTree(
        xr.Dataset({"modelled_count": (("chain", "draw", "obs"), np.zeros((2, 500, 4)))})
    )
    obs = run["observed_data"].to_dataset()
    obs["modelled_count"][0, 0, 0] = np.nan
    run["observed_data"] = xr.DataTree(obs)
    # attributes of the kinds a sampler writes: a list of text, a float, an int, a one-element array
    post = run["posterior"].to_dataset()
    post.attrs.update(sample_dims=["chain", "draw"], sampling_time=12.5, tuning_steps=500, one=np.array([3.0]))
    post["intercept"].attrs.update(label="the intercept", scale=np.float32(2.0))
    run["posterior"] = xr.DataTree(post)
    # a coordinate no data variable of its group uses (xarray names it on the group)
    ref = run["reference"].to_dataset()
    codes = [str(c) for c in obs["la"].values]
    run["reference"] = xr.DataTree(ref.assign_coords(la=codes, la_label=("la", [f"Area {c}" for c in codes])))
    if edit is not None:
        edit(run)
    path = tmp_path / "run.nc"
    save_run(run, path)
    if hdf5_edit is not None:
        with h5py.File(path, "r+") as handle:
            hdf5_edit(handle)
    return str(path)


def test_direct_reading_of_a_toy_run_equals_xarrays(tmp_path):
    path = _toy_run(tmp_path)
    assert read_groups(path, list(ANALYSIS_GROUPS), {}) is not None  # not a fall-back
    direct = _read(path, None)
    assert_same_run(direct, _through_xarray(path))
    assert_same_run(_read(path, list(ANALYSIS_GROUPS)), _through_xarray(path, list(ANALYSIS_GROUPS)))
    # what the comparison rests on: booleans, text and blanks come back as such
    assert direct["sample_stats"]["diverging"].dtype == bool
    assert direct["posterior"]["la"].dtype.kind == "U" and direct["constant_data"]["la_name"].dtype.kind == "U"
    assert np.isnan(direct["observed_data"]["modelled_count"][0, 0, 0])
    assert "la_label" in direct["reference"].coords and direct["posterior"].attrs["sample_dims"] == ["chain", "draw"]


def _scaled(handle):
    handle["posterior/intercept"].attrs["scale_factor"] = 2.0


def _integer_fill(handle):
    handle["posterior/chain"].attrs["_FillValue"] = np.int64(-9)


def _times(handle):
    handle["posterior/year_sigma"].attrs["units"] = "days since 2000-01-01"


@pytest.mark.parametrize("hdf5_edit", [_scaled, _integer_fill, _times], ids=["scaled", "integer-fill", "times"])
def test_a_feature_the_direct_reader_does_not_decode_is_left_to_xarray(tmp_path, hdf5_edit):
    path = _toy_run(tmp_path, hdf5_edit=hdf5_edit)
    assert read_groups(path, list(ANALYSIS_GROUPS), {}) is None
    groups = list(ANALYSIS_GROUPS)
    assert_same_run(_read(path, None), _through_xarray(path))
    assert_same_run(_read(path, groups), _through_xarray(path, groups))


def test_a_dimension_without_a_coordinate_variable_is_left_to_xarray(tmp_path):
    def no_coordinate(run):
        ref = run["reference"].to_dataset()
        ref["counts"] = (("slot",), np.arange(3.0))  # "slot" has no coordinate variable
        run["reference"] = xr.DataTree(ref)

    path = _toy_run(tmp_path, no_coordinate)
    assert read_groups(path, ["reference"], {}) is None
    back = load_run(path)
    assert back["reference"]["counts"].dims == ("slot",)
    assert_same_run(_read(path, None), _through_xarray(path))


@pytest.mark.slow  # reads the suite's shared fit
def test_direct_reading_of_a_fitted_run_equals_xarrays(thurrock_run_path):
    groups = list(ANALYSIS_GROUPS)
    assert read_groups(thurrock_run_path, groups, {}) is not None  # not a fall-back
    assert_same_run(_read(thurrock_run_path, None), _through_xarray(thurrock_run_path))
    assert_same_run(_read(thurrock_run_path, groups), _through_xarray(thurrock_run_path, groups))
    # the digest recorded at fit time matches the run read back (a fitted run loads without
    # recomputing its gate: tests/test_run_info.py)
    for read in (_read(thurrock_run_path, None), _read(thurrock_run_path, groups)):
        assert read.attrs["gate_digest"] == gate_digest(read)
