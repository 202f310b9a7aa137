"""Reading a saved run's groups quickly, straight from HDF5.

A run file is netCDF-4 written by xarray through h5netcdf (`bayes_lac.model.results.save_run`).
Reading it back through xarray's h5netcdf backend costs most of an analysis command's time:
about 0.5 s of per-variable metadata look-ups for the five groups an analysis reads, against
about 0.1 s to read the same arrays with h5py. `read_groups` reads the arrays and the few
attributes xarray writes for them directly.

It decodes only what `save_run` produces: dimensions declared in the same group, each with
its coordinate variable; floating-point fill values of NaN; booleans stored as int8 with a
``dtype = "bool"`` attribute; variable-length strings; non-index coordinates named in a
``coordinates`` attribute. Anything else (scaled or offset integers, times, units, an integer
fill value, a dimension without a coordinate variable or from a parent group) makes it return
None, and the caller reads the file through xarray instead. That every group it reads equals
xarray's reading, values, dtypes and attributes, is tested on a fitted run
(``tests/test_run_info.py``).
"""

from __future__ import annotations

from collections.abc import Collection, Sequence

import numpy as np
import xarray as xr

#: Attributes netCDF-4 and xarray write to describe storage; not part of a variable's attrs.
_STORAGE_ATTRS = frozenset(
    {"_Netcdf4Coordinates", "_Netcdf4Dimid", "DIMENSION_LIST", "CLASS", "NAME", "REFERENCE_LIST", "_NCProperties"}
)
#: Attributes that xarray decodes into the values (or names as coordinates) and removes.
_DECODED_ATTRS = frozenset({"_FillValue", "coordinates", "dtype"})
#: CF attributes that would change the values when decoded; a file using them is read by xarray.
_NOT_HANDLED = frozenset(
    {"scale_factor", "add_offset", "missing_value", "units", "calendar", "_Unsigned", "_Encoding", "compress"}
)


class _NotHandled(Exception):
    """The file uses a netCDF feature `read_groups` does not decode."""


def _attr(attrs, key: str):
    """Attribute `key` as xarray's h5netcdf backend gives it (h5netcdf's rules, then xarray's):
    fixed-length text decoded, text arrays as lists, a one-element array as its element, numpy
    scalars kept, and bytes decoded as UTF-8."""
    import h5py

    value = attrs[key]
    if isinstance(value, h5py.Empty):
        raise _NotHandled
    info = h5py.check_string_dtype(attrs.get_id(key).dtype)
    if info is not None:
        if info.length is not None and info.length > 1:
            if np.isscalar(value):
                value = value.decode(info.encoding, "surrogateescape")
            else:
                value = [b.decode(info.encoding, "surrogateescape") for b in value.flat]
        elif not np.isscalar(value):
            value = value.tolist()
    if not np.isscalar(value) and len(value) == 1:
        value = value[0]
    if isinstance(value, bytes):
        value = value.decode("utf-8")
    return value


def _user_attrs(attrs) -> dict:
    return {k: _attr(attrs, k) for k in attrs if k not in _STORAGE_ATTRS and k not in _DECODED_ATTRS}


def _values(dataset, attrs) -> np.ndarray:
    data = dataset[()]
    data = np.asarray(data)
    if data.dtype.kind == "O":
        # variable-length strings come back as bytes; xarray gives fixed-width unicode
        text = [x.decode("utf-8") if isinstance(x, bytes) else x for x in data.ravel()]
        if not all(isinstance(x, str) for x in text):
            raise _NotHandled
        return np.array(text, dtype=str).reshape(data.shape) if text else data.astype(str)
    if "dtype" in attrs:
        if _attr(attrs, "dtype") != "bool" or data.dtype != np.int8:
            raise _NotHandled
        return data.astype(bool)
    if "_FillValue" in attrs:
        fill = _attr(attrs, "_FillValue")
        if data.dtype.kind != "f" or not (np.isscalar(fill) and np.isnan(fill)):
            raise _NotHandled
    return data


def _read_group(group, drop: Collection[str]) -> xr.Dataset:
    dims: dict[int, str] = {}
    for name, item in group.items():
        if not hasattr(item, "dtype"):
            raise _NotHandled  # a nested group
        if item.attrs.get("CLASS") == b"DIMENSION_SCALE":
            if "_Netcdf4Dimid" not in item.attrs or "not a netCDF variable" in str(item.attrs.get("NAME", b"")):
                raise _NotHandled  # a dimension without a coordinate variable
            dims[int(item.attrs["_Netcdf4Dimid"])] = name
    variables: dict[str, xr.Variable] = {}
    named_coords: set[str] = set()
    for name, item in group.items():
        if name in drop:
            continue
        attrs = item.attrs
        if _NOT_HANDLED.intersection(attrs):
            raise _NotHandled
        if "_Netcdf4Coordinates" in attrs:
            ids = [int(i) for i in attrs["_Netcdf4Coordinates"]]
        elif name in dims.values():
            ids = [int(attrs["_Netcdf4Dimid"])]
        elif item.ndim == 0:
            ids = []
        else:
            raise _NotHandled
        if len(ids) != item.ndim or any(i not in dims for i in ids):
            raise _NotHandled  # a dimension declared in a parent group
        if "coordinates" in attrs:
            named_coords.update(str(_attr(attrs, "coordinates")).split())
        variables[name] = xr.Variable(tuple(dims[i] for i in ids), _values(item, attrs), _user_attrs(attrs))
    if "coordinates" in group.attrs:
        # non-index coordinates no data variable names: xarray lists them on the group
        named_coords.update(str(_attr(group.attrs, "coordinates")).split())
    coords = set(dims.values()) | named_coords
    return xr.Dataset(
        {k: v for k, v in variables.items() if k not in coords},
        coords={k: v for k, v in variables.items() if k in coords},
        attrs=_user_attrs(group.attrs),
    )


def read_groups(path, groups: Sequence[str], drop: dict[str, Collection[str]]) -> xr.DataTree | None:
    """The run in `path` with the root attrs and `groups` (those present), or None.

    ``drop[group]`` names variables of a group to leave unread. None means the file uses a
    netCDF feature this reader does not decode; read it through xarray instead.
    """
    import h5py

    try:
        with h5py.File(path, "r") as handle:
            if any(hasattr(item, "dtype") for item in handle.values()):
                raise _NotHandled  # variables in the root group
            parts = {g: _read_group(handle[g], drop.get(g, ())) for g in groups if g in handle}
            root = _user_attrs(handle.attrs)
    except _NotHandled:
        return None
    tree = xr.DataTree.from_dict(parts)
    tree.attrs.update(root)
    return tree
