"""Installing the package: the wheel carries its data, and the command line runs anywhere.

The slow test builds a wheel from the sources, installs it (not editable) into a fresh virtual
environment and runs ``python -m bayes_lac`` from an unrelated folder. The environment reuses
the dependencies already installed beside the running interpreter through a ``.pth`` line
(added after the install, so pip never sees another bayes_lac), and no PYTHONPATH, so the only
bayes_lac it can import is the installed one.
"""

import os
import re
import shutil
import site
import subprocess
import sys
import tomllib
import zipfile
from pathlib import Path

import pandas as pd
import pytest

from bayes_lac import __version__, cli, config
from bayes_lac.config import THURROCK_CODE

REPO = Path(__file__).resolve().parents[1]
#: What the build reads; anything else in the checkout (runs, reports, .venv) stays out.
BUILD_INPUTS = ("pyproject.toml", "README.md", "LICENSE", "bayes_lac", "data", "models")
#: Folders of the repository that travel inside the package, and where.
BUNDLED_FOLDERS = {"data": "bayes_lac/_bundled/data", "models": "bayes_lac/_bundled/models"}


def _run(cmd, cwd, env, timeout=300):
    result = subprocess.run(cmd, cwd=cwd, env=env, capture_output=True, text=True, timeout=timeout, check=False)
    assert result.returncode == 0, (
        f"{' '.join(map(str, cmd))} exited {result.returncode}:\n{result.stdout}\n{result.stderr}"
    )
    return result


def _clean_env() -> dict[str, str]:
    """The test's environment without anything that would point Python at the checkout."""
    env = {k: v for k, v in os.environ.items() if k not in ("PYTHONPATH", "PYTHONHOME", "VIRTUAL_ENV")}
    env["PIP_NO_INPUT"] = "1"
    return env


def _copy_sources(dest: Path) -> Path:
    """Copy what the build reads into `dest`, so building writes nothing into the checkout."""
    dest.mkdir()
    for name in BUILD_INPUTS:
        path = REPO / name
        if path.is_dir():
            shutil.copytree(path, dest / name, ignore=shutil.ignore_patterns("__pycache__", "*.pyc", ".*"))
        else:
            shutil.copy2(path, dest / name)
    return dest


def _fresh_venv(folder: Path, env) -> tuple[Path, Path]:
    """A new virtual environment without pip: its python and its site-packages."""
    _run([sys.executable, "-m", "venv", "--without-pip", str(folder)], cwd=folder.parent, env=env)
    python = folder / ("Scripts/python.exe" if os.name == "nt" else "bin/python")
    code = "import sysconfig; print(sysconfig.get_paths()['purelib'])"
    purelib = _run([str(python), "-c", code], cwd=folder.parent, env=env).stdout.strip()
    return python, Path(purelib)


def _reuse_dependencies(purelib: Path) -> None:
    """Make the running environment's packages importable in a fresh one, as plain path lines.

    Plain lines do not process the .pth files there (among them the editable install of the
    checkout), so that install is invisible to the fresh environment.
    """
    lines = "\n".join(site.getsitepackages()) + "\n"
    (purelib / "_bayes_lac_test_dependencies.pth").write_text(lines, encoding="utf-8")


def _repository_files(folder: str) -> set[str]:
    """Files of a repository folder that must ship, as posix paths relative to the folder."""
    root = REPO / folder
    return {
        p.relative_to(root).as_posix()
        for p in root.rglob("*")
        if p.is_file() and "__pycache__" not in p.parts and not p.name.startswith(".")
    }


# --- fast: the packaging configuration and the checkout -------------------------------------


def test_pyproject_lists_every_subpackage_and_bundled_folder():
    """A sub-package or bundled folder missing from [tool.setuptools] would leave the wheel."""
    with open(REPO / "pyproject.toml", "rb") as fh:
        tool = tomllib.load(fh)["tool"]["setuptools"]
    listed = set(tool["packages"])
    code = {
        ".".join(p.parent.relative_to(REPO).parts)
        for p in (REPO / "bayes_lac").rglob("__init__.py")
        if "__pycache__" not in p.parts
    }
    assert code <= listed, f"sub-packages missing from pyproject.toml: {sorted(code - listed)}"
    bundled = {"bayes_lac._bundled.data"} | {
        f"bayes_lac._bundled.models.{p.name}" for p in (REPO / "models").iterdir() if p.is_dir()
    }
    assert bundled <= listed, f"bundled folders missing from pyproject.toml: {sorted(bundled - listed)}"
    assert tool["package-dir"] == {"bayes_lac._bundled.data": "data", "bayes_lac._bundled.models": "models"}
    assert "bayes_lac.report.templates" in listed


def test_checkout_uses_the_repository_data_and_models():
    assert config.IN_CHECKOUT
    assert config.DATA_DIR == REPO / "data"
    assert config.PRIORS_DIR == REPO / "models" / "priors"
    assert config.bundled_name(config.BUNDLED_PANEL) == "data/panel.csv"


@pytest.mark.parametrize("given, missing", [(["--source", "nowhere"], "--out"), (["--out", "panel.csv"], "--source")])
def test_data_build_without_out_or_source_is_refused_when_installed(monkeypatch, capsys, tmp_path, given, missing):
    """Installed from a wheel there is no repository data/ to rewrite and no official files
    beside a checkout: --out and --source must be given."""
    monkeypatch.setattr(config, "IN_CHECKOUT", False)
    monkeypatch.chdir(tmp_path)
    assert cli.main(["data", "build", *given]) == 2
    err = capsys.readouterr().err.strip()
    assert len(err.splitlines()) == 1
    assert f"{missing} is required when bayes_lac is installed from a wheel" in err
    assert list(tmp_path.iterdir()) == []


def test_python_dash_m_bayes_lac_is_the_command_line(tmp_path):
    env = {k: v for k, v in os.environ.items() if k != "PYTHONPATH"} | {"PYTHONPATH": str(REPO)}
    result = _run([sys.executable, "-m", "bayes_lac", "--version"], cwd=tmp_path, env=env, timeout=60)
    assert result.stdout.strip() == f"bayes-lac {__version__}"
    bad = subprocess.run(
        [sys.executable, "-m", "bayes_lac", "intervention", "no_such_case", "--out", str(tmp_path / "x.csv")],
        cwd=tmp_path,
        env=env,
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )
    assert bad.returncode == 2
    assert bad.stderr.strip().splitlines() == [bad.stderr.strip()]
    assert "no_such_case: no such intervention file" in bad.stderr


# --- slow: build the wheel, install it in a fresh environment, run it ------------------------


@pytest.mark.slow
@pytest.mark.install
def test_wheel_installed_in_a_fresh_venv_carries_its_data_and_runs_anywhere(tmp_path):
    src = _copy_sources(tmp_path / "src")
    env = _clean_env()

    # Build: no index, no isolation (the running environment has setuptools), no network.
    dist = tmp_path / "dist"
    _run(
        [
            sys.executable,
            "-m",
            "pip",
            "wheel",
            "--no-deps",
            "--no-build-isolation",
            "--no-index",
            "--quiet",
            "-w",
            str(dist),
            str(src),
        ],
        cwd=tmp_path,
        env=env,
    )
    (wheel,) = dist.glob("bayes_lac-*.whl")
    with zipfile.ZipFile(wheel) as zf:
        names = set(zf.namelist())
    for folder, inside in BUNDLED_FOLDERS.items():
        shipped = {n.removeprefix(inside + "/") for n in names if n.startswith(inside + "/")}
        missing = _repository_files(folder) - shipped
        assert not missing, f"{folder}/ files missing from the wheel: {sorted(missing)}"
    assert "bayes_lac/report/templates/report.html" in names
    assert "bayes_lac/__main__.py" in names

    # A fresh environment; the wheel installed normally, without its dependencies, which are
    # made visible only afterwards so that pip never sees another bayes_lac.
    python, purelib = _fresh_venv(tmp_path / "venv", env)
    _run(
        [
            sys.executable,
            "-m",
            "pip",
            "--python",
            str(python),
            "install",
            "--no-deps",
            "--no-index",
            "--quiet",
            str(wheel),
        ],
        cwd=tmp_path,
        env=env,
    )
    _reuse_dependencies(purelib)

    work = tmp_path / "elsewhere"
    work.mkdir()
    code = (
        "import bayes_lac, bayes_lac.config as c; print(bayes_lac.__file__); print(c.IN_CHECKOUT); "
        "print(c.BUNDLED_PANEL); print(c.PRIORS_DIR); print(c.bundled_name(c.DATA_README))"
    )
    where = _run([str(python), "-c", code], cwd=work, env=env).stdout.splitlines()
    installed = purelib.resolve() / "bayes_lac"
    assert Path(where[0]).resolve() == installed / "__init__.py", where
    assert where[1] == "False"
    assert Path(where[2]).resolve() == installed / "_bundled" / "data" / "panel.csv"
    assert Path(where[3]).resolve() == installed / "_bundled" / "models" / "priors"
    assert where[4] == "data/README.md"  # as the report's model card names it
    assert REPO.as_posix() not in " ".join(where)

    # compare: reads the bundled panel and neighbour lists.
    out = tmp_path / "out"
    result = _run(
        [str(python), "-m", "bayes_lac", "compare", "--la", THURROCK_CODE, "--out", str(out)], cwd=work, env=env
    )
    assert "Statistical neighbours (DfE 2021 model)" in result.stdout
    table = pd.read_csv(out / f"{THURROCK_CODE}_comparison.csv", dtype={"la_code": str})
    thurrock = table[(table["la_code"] == THURROCK_CODE) & (table["measure"] == "looked_after")]
    assert thurrock.set_index("year").at[2017, "count"] == 333
    assert table["la_code"].nunique() >= 11  # Thurrock, ten neighbours (and England)
    assert (out / f"{THURROCK_CODE}_comparison.png").stat().st_size > 10_000

    # The model built from the bundled panel and the bundled default prior set (sampling is
    # the same code in a checkout and a wheel, and is tested by the suite's shared fit).
    code = (
        "from bayes_lac import load_panel, LACModel; from bayes_lac.model.priors import load_priors; "
        f"m = LACModel('{THURROCK_CODE}'); model = m.build(load_panel()); "
        "print(sorted(model.named_vars)[:3]); print(load_priors('default')['dispersion']['cv_scale']['looked_after']); "
        "print(len(m.data_.la))"
    )
    built = _run([str(python), "-c", code], cwd=work, env=env, timeout=300).stdout.splitlines()
    assert built[0].startswith("["), built
    default_priors = tomllib.loads((REPO / "models" / "priors" / "default.toml").read_text())
    assert float(built[1]) == default_priors["dispersion"]["cv_scale"]
    assert int(built[2]) == 11  # Thurrock and its ten DfE statistical neighbours


@pytest.mark.slow
@pytest.mark.install
def test_editable_install_reads_data_and_models_from_the_checkout(tmp_path):
    """`make` installs with `pip install -e .`: the mapped folders must not break that."""
    src = _copy_sources(tmp_path / "checkout")
    env = _clean_env()
    python, purelib = _fresh_venv(tmp_path / "venv", env)
    # The build runs in the fresh environment and needs setuptools from the running one.
    # pip sees the running environment's bayes_lac and leaves it alone (outside this venv).
    _reuse_dependencies(purelib)
    _run(
        [
            sys.executable,
            "-m",
            "pip",
            "--python",
            str(python),
            "install",
            "--no-deps",
            "--no-index",
            "--no-build-isolation",
            "--quiet",
            "-e",
            str(src),
        ],
        cwd=tmp_path,
        env=env,
    )
    work = tmp_path / "elsewhere"
    work.mkdir()
    code = (
        "import bayes_lac, bayes_lac.config as c; from bayes_lac.report import board; "
        "print(bayes_lac.__file__); print(c.IN_CHECKOUT); print(c.BUNDLED_PANEL); "
        "print(c.INTERVENTIONS_DIR); print(board.TEMPLATE_DIR)"
    )
    lines = _run([str(python), "-c", code], cwd=work, env=env).stdout.splitlines()
    assert [Path(x).resolve() for x in lines[:1] + lines[2:]] == [
        src.resolve() / "bayes_lac" / "__init__.py",
        src.resolve() / "data" / "panel.csv",
        src.resolve() / "models" / "interventions",
        src.resolve() / "bayes_lac" / "report" / "templates",
    ]
    assert lines[1] == "True"


def test_conda_environment_matches_the_package_and_the_readme():
    """The Windows/Anaconda route: its Python satisfies requires-python, it installs this
    package, and the README activates the environment it creates."""
    text = (REPO / "environment.yml").read_text(encoding="utf-8")
    with open(REPO / "pyproject.toml", "rb") as fh:
        requires = tomllib.load(fh)["project"]["requires-python"]
    (python,) = re.findall(r"^\s*-\s*python=(\d+\.\d+)\s*$", text, flags=re.MULTILINE)
    (minimum,) = re.findall(r">=\s*(\d+\.\d+)", requires)
    assert tuple(map(int, python.split("."))) >= tuple(map(int, minimum.split(".")))
    assert re.search(r"^\s*-\s*-e \.\[dev\]\s*$", text, flags=re.MULTILINE)
    (name,) = re.findall(r"^name:\s*(\S+)\s*$", text, flags=re.MULTILINE)
    readme = (REPO / "README.md").read_text(encoding="utf-8")
    assert "conda env create -f environment.yml" in readme
    assert f"conda activate {name}" in readme
    assert f"bayes-lac report --la {THURROCK_CODE} --out reports\\thurrock.html --xlsx" in readme
