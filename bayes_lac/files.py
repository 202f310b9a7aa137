"""Writing output files safely: atomically, never over an input, text kept as text.

Every file the package writes (CSV, PNG, HTML, PDF, XLSX, a run's netCDF, a built panel)
goes through this module:

* **Atomic.** The content goes to a hidden temporary file in the destination folder
  (``.bayes_lac-XXXXXXXX.<name>``) that is renamed over the destination only once it is
  complete. A reader, a second writer or an interrupted run therefore sees either the old
  file or the new one, never a part of one; an interrupted write removes its temporary file
  (a process killed outright may leave one behind, hidden by its leading dot).
* **Checked before any work.** `prepare_outputs` refuses an output that is also an input
  (``forecast run.nc --out run.nc``), a folder, or a path under a regular file, and creates
  missing folders, so a command fails in its first second rather than after a fit.
* **Text stays text.** A spreadsheet runs a cell that starts with ``=``, ``+``, ``-`` or
  ``@`` (or a tab or carriage return) as a formula. `write_csv` writes such a TEXT field with
  a leading single quote (``'=HYPERLINK(...)``), the convention spreadsheets use for "this is
  text"; numbers, negative ones included, are written unchanged, and so is text that is a
  plain number (``"-5"``), which a spreadsheet reads as that number. (The workbook writer in
  ``bayes_lac.report.board`` marks such cells as strings instead.)

This is a base module: it imports nothing from the package but `config` and `errors`.
"""

from __future__ import annotations

import os
import re
import tempfile
import unicodedata
from collections.abc import Iterator, Mapping
from contextlib import ExitStack, contextmanager
from pathlib import Path

from bayes_lac.errors import OutputFileError

#: Start of the name of every temporary file this module makes (hidden on Unix).
TEMP_PREFIX = ".bayes_lac-"

#: First characters that make a spreadsheet read a text cell as a formula (OWASP's list).
FORMULA_TRIGGERS: tuple[str, ...] = ("=", "+", "-", "@", "\t", "\r")

#: Text that is a plain decimal number: a spreadsheet reads it as that number, not a formula.
_PLAIN_NUMBER = re.compile(r"[+-]?(\d+(\.\d*)?|\.\d+)([eE][+-]?\d+)?")


# --------------------------------------------------------------------------------------------
# Atomic writes
# --------------------------------------------------------------------------------------------


def _default_mode() -> int:
    """Permission bits a newly created file gets (0o666 less the umask), read without a race."""
    try:
        with open("/proc/self/status", encoding="ascii") as fh:
            for line in fh:
                if line.startswith("Umask:"):
                    return 0o666 & ~int(line.split()[1], 8)
    except OSError:
        pass
    # No /proc (macOS, Windows): the umask can only be read by setting it; do so once.
    mask = os.umask(0o022)
    os.umask(mask)
    return 0o666 & ~mask


def _temp_beside(path: Path) -> Path:
    # The temporary name ends with the destination's whole name, so writers that read the
    # format from the suffix (matplotlib, pandas' compression, ExcelWriter) behave the same.
    fd, name = tempfile.mkstemp(prefix=TEMP_PREFIX, suffix="." + path.name, dir=path.parent)
    os.close(fd)
    return Path(name)


def _finish(temp: Path, path: Path) -> None:
    """Flush `temp` to disk, give it ordinary permissions and rename it over `path`."""
    with open(temp, "rb+") as fh:
        os.fsync(fh.fileno())
    mode = path.stat().st_mode & 0o777 if path.is_file() else _default_mode()
    os.chmod(temp, mode)
    try:
        os.replace(temp, path)
    except PermissionError as err:
        # On Windows a file open in Excel cannot be replaced.
        raise OutputFileError(
            f"cannot replace {path}: {err.strerror or err}; if it is open in another program "
            "(Excel, a PDF viewer), close it and run again"
        ) from None


@contextmanager
def atomic_path(path: str | os.PathLike) -> Iterator[Path]:
    """A temporary path to write `path`'s new content to; renamed into place on success.

    Parameters
    ----------
    path
        The destination file. Its folder must exist (see `prepare_outputs`).

    Yields
    ------
    pathlib.Path
        An empty file in the same folder, whose name ends with ``path``'s name. Write it
        completely inside the ``with`` block (by path, with any library).

    Notes
    -----
    If the block raises (``KeyboardInterrupt`` included), the temporary file is removed and
    `path` is left as it was. The rename is atomic on POSIX and on Windows (``os.replace``).
    """
    path = Path(path)
    temp = _temp_beside(path)
    try:
        yield temp
        _finish(temp, path)
    except BaseException:
        temp.unlink(missing_ok=True)
        raise


@contextmanager
def atomic_paths(*paths: str | os.PathLike) -> Iterator[list[Path]]:
    """Temporary paths for several files that belong together (a report and its workbook).

    All are renamed into place only when every one is written; if the block raises, none is.
    """
    paths = tuple(Path(p) for p in paths)
    temps: list[Path] = []
    try:
        for path in paths:
            temps.append(_temp_beside(path))
        yield list(temps)
        for temp, path in zip(temps, paths):
            _finish(temp, path)
    except BaseException:
        for temp in temps:
            temp.unlink(missing_ok=True)
        raise


def write_bytes(path: str | os.PathLike, data: bytes) -> Path:
    """Write `data` to `path` atomically. Returns the path."""
    path = Path(path)
    with atomic_path(path) as temp:
        temp.write_bytes(data)
    return path


def write_text(path: str | os.PathLike, text: str, encoding: str = "utf-8") -> Path:
    """Write `text` to `path` atomically (UTF-8 by default, line ends as given). Returns the path."""
    return write_bytes(path, text.encode(encoding))


def write_files(contents: Mapping[str | os.PathLike, bytes]) -> list[Path]:
    """Write several files atomically as a group: all of them are replaced, or none."""
    paths = [Path(p) for p in contents]
    with ExitStack() as stack:
        temps = stack.enter_context(atomic_paths(*paths))
        for temp, data in zip(temps, contents.values()):
            temp.write_bytes(data)
    return paths


# --------------------------------------------------------------------------------------------
# Text that a spreadsheet would run as a formula
# --------------------------------------------------------------------------------------------


def is_formula_like(value: object) -> bool:
    """Whether `value` is text a spreadsheet would read as a formula.

    True for a ``str`` starting with one of `FORMULA_TRIGGERS`, unless it is a plain decimal
    number such as ``"-12.5"`` (which a spreadsheet reads as that number).
    """
    return isinstance(value, str) and value.startswith(FORMULA_TRIGGERS) and _PLAIN_NUMBER.fullmatch(value) is None


def text_safe(value: object) -> object:
    """`value` with a leading single quote if it is formula-like text, else unchanged."""
    return "'" + value if is_formula_like(value) else value


def csv_safe_frame(frame):
    """A copy of a DataFrame whose formula-like text (cells and column names) is quoted.

    Only text is changed: numeric, boolean and date columns are returned as they are, and in
    a column of mixed values only the ``str`` ones are looked at.
    """
    import pandas as pd

    out = frame.copy()
    for col in out.columns:
        series = out[col]
        if (
            pd.api.types.is_numeric_dtype(series)
            or pd.api.types.is_bool_dtype(series)
            or pd.api.types.is_datetime64_any_dtype(series)
        ):
            continue
        if isinstance(series.dtype, pd.CategoricalDtype):
            series = series.astype(object)
        out[col] = series.map(text_safe)
    out.columns = [text_safe(c) for c in out.columns]
    return out


def write_csv(frame, path: str | os.PathLike, *, index: bool = False, **to_csv) -> Path:
    """Write a DataFrame as CSV, atomically, with formula-like text quoted (see `csv_safe_frame`).

    Parameters
    ----------
    frame
        The table.
    path
        Destination; ``.gz`` and other compression suffixes work as in ``DataFrame.to_csv``.
    index
        Write the index as well (default False).
    **to_csv
        Other arguments of ``DataFrame.to_csv``.
    """
    import csv

    path = Path(path)
    safe = csv_safe_frame(frame if not index else frame.reset_index())
    if "quoting" not in to_csv and _holds_carriage_return(safe):
        # Python's csv writer (3.12) leaves a bare carriage return in a field unquoted when lines
        # end in "\n", and a reader then splits the row there: quote every text field instead.
        to_csv["quoting"] = csv.QUOTE_NONNUMERIC
    with atomic_path(path) as temp:
        safe.to_csv(temp, index=False, **to_csv)
    return path


def _holds_carriage_return(frame) -> bool:
    texts = [c for c in frame.columns if isinstance(c, str)]
    for col in frame.columns:
        texts.extend(v for v in frame[col].tolist() if isinstance(v, str))
    return any("\r" in t for t in texts)


# --------------------------------------------------------------------------------------------
# Checking output paths before any work
# --------------------------------------------------------------------------------------------


def same_file(a: str | os.PathLike, b: str | os.PathLike) -> bool:
    """Whether two paths name the same file (through links, `..` and case on Windows/macOS)."""
    a, b = Path(a), Path(b)
    try:
        if a.exists() and b.exists():
            return os.path.samefile(a, b)
    except OSError:
        pass
    return os.path.normcase(str(a.resolve())) == os.path.normcase(str(b.resolve()))


def _existing_ancestor(path: Path) -> Path:
    """The nearest of `path`'s folders (itself excluded) that exists on disk."""
    for parent in path.absolute().parents:
        if parent.exists():
            return parent
    return Path(path.absolute().anchor)


def _check_folder(label: str, folder: Path) -> None:
    if folder.exists():
        if not folder.is_dir():
            raise OutputFileError(f"{label} {folder}: {folder} is a file, not a folder")
        return
    base = _existing_ancestor(folder)
    if not base.is_dir():
        raise OutputFileError(f"{label} {folder}: cannot create the folder because {base} is a file, not a folder")


def _create_folder(label: str, folder: Path) -> None:
    try:
        folder.mkdir(parents=True, exist_ok=True)
    except OSError as err:
        raise OutputFileError(f"{label}: cannot create the folder {folder}: {err.strerror or err}") from None
    if not os.access(folder, os.W_OK):
        raise OutputFileError(f"{label}: the folder {folder} is not writable")


def prepare_outputs(
    outputs: Mapping[str, str | os.PathLike | None],
    inputs: Mapping[str, str | os.PathLike | None] | None = None,
    *,
    folders: Mapping[str, str | os.PathLike | None] | None = None,
) -> None:
    """Check every output path of a command and create its folder, before any work is done.

    Parameters
    ----------
    outputs
        Files the command will write, keyed by how to name each in a message (e.g.
        ``"--out"``, ``"the summary (from --out)"``). None values are skipped.
    inputs
        Files the command reads, keyed the same way (e.g. ``"the run file"``, ``"--panel"``).
        None values (an option not given) are skipped.
    folders
        Folders the command writes into (e.g. ``compare --out DIR``).

    Raises
    ------
    OutputFileError
        An output is also an input or another output, is an existing folder, lies under a
        regular file, or its folder cannot be created or written to.
    """
    outs = {k: Path(v) for k, v in outputs.items() if v is not None}
    ins = {k: Path(v) for k, v in (inputs or {}).items() if v is not None}
    dirs = {k: Path(v) for k, v in (folders or {}).items() if v is not None}
    for label, path in outs.items():
        if path.is_dir():
            raise OutputFileError(f"{label} {path} is a folder; expected a file name")
        _check_folder(label, path.parent if str(path.parent) else Path("."))
        for in_label, source in ins.items():
            if source.is_file() and same_file(path, source):
                raise OutputFileError(
                    f"{label} {path} is the same file as {in_label} ({source}); writing it would "
                    f"destroy the input: choose another name for {label}"
                )
    seen: dict[str, str] = {}
    for label, path in outs.items():
        key = os.path.normcase(str(path.resolve()))
        if key in seen:
            raise OutputFileError(f"{label} {path} is also {seen[key]}: give the outputs different names")
        seen[key] = label
    for label, folder in dirs.items():
        _check_folder(label, folder)
    for label, path in outs.items():
        _create_folder(label, path.parent if str(path.parent) else Path("."))
    for label, folder in dirs.items():
        _create_folder(label, folder)


# --------------------------------------------------------------------------------------------
# Names of output files
# --------------------------------------------------------------------------------------------


def file_slug(name: str, fallback: str = "report") -> str:
    """A file-name stem from an authority's name: ``"Bristol, City of"`` -> ``bristol-city-of``.

    Lower-case ASCII letters, digits and single hyphens only (accents dropped), so the name
    is the same on every operating system; `fallback` (slugified too) if nothing is left.
    """
    ascii_text = unicodedata.normalize("NFKD", str(name)).encode("ascii", "ignore").decode("ascii")
    slug = re.sub(r"[^a-z0-9]+", "-", ascii_text.lower()).strip("-")
    if slug:
        return slug[:80].rstrip("-")
    return file_slug(fallback, "report") if fallback != name else "report"
