"""The command line never shows a traceback: bad values give one line and exit 2, unexpected
errors one line with a hint and exit 1, and --debug shows the traceback.

The defect (issue #16): `--ci-prob 0|1|1.5|nan`, `--seed -1`, `--workers 0`, an output under a
file, a latin-1 or directory prior file gave tracebacks.
"""

from __future__ import annotations

from pathlib import Path

import pytest

from bayes_lac.cli import main

PROJECT = Path(__file__).resolve().parents[1]
EDGE_OF_CARE = str(PROJECT / "models" / "interventions" / "edge_of_care.toml")

#: Every subcommand with bad values for its options; RUN, FILE and OUT are filled in per test.
BAD_ARGUMENTS: dict[str, list[str]] = {
    "decompose --ci-prob 0": ["decompose", "RUN", "--from", "2010", "--to", "2020", "--ci-prob", "0", "--out", "OUT"],
    "decompose --ci-prob 1": ["decompose", "RUN", "--from", "2010", "--to", "2020", "--ci-prob", "1", "--out", "OUT"],
    "decompose --ci-prob 1.5": [
        "decompose",
        "RUN",
        "--from",
        "2010",
        "--to",
        "2020",
        "--ci-prob",
        "1.5",
        "--out",
        "OUT",
    ],
    "decompose --ci-prob nan": [
        "decompose",
        "RUN",
        "--from",
        "2010",
        "--to",
        "2020",
        "--ci-prob",
        "nan",
        "--out",
        "OUT",
    ],
    "decompose --ci-prob inf": [
        "decompose",
        "RUN",
        "--from",
        "2010",
        "--to",
        "2020",
        "--ci-prob",
        "inf",
        "--out",
        "OUT",
    ],
    "decompose --from 17": ["decompose", "RUN", "--from", "17", "--to", "2020", "--out", "OUT"],
    "decompose --to 2020.5": ["decompose", "RUN", "--from", "2010", "--to", "2020.5", "--out", "OUT"],
    "forecast --horizon 0": ["forecast", "RUN", "--horizon", "0", "--out", "OUT"],
    "forecast --horizon 21": ["forecast", "RUN", "--horizon", "21", "--out", "OUT"],
    "forecast --seed -1": ["forecast", "RUN", "--seed", "-1", "--out", "OUT"],
    "forecast --uasc-rate nan": ["forecast", "RUN", "--uasc-rate", "nan", "--out", "OUT"],
    "forecast --uasc-rate -0.1": ["forecast", "RUN", "--uasc-rate", "-0.1", "--out", "OUT"],
    "forecast --ci-prob abc": ["forecast", "RUN", "--ci-prob", "abc", "--out", "OUT"],
    "costs --horizon x": ["costs", "RUN", "--horizon", "x", "--out", "OUT"],
    "costs --inflation nan": ["costs", "RUN", "--inflation", "nan", "--out", "OUT"],
    "costs --budget -5": ["costs", "RUN", "--budget", "-5", "--out", "OUT"],
    "costs --ci-prob 0": ["costs", "RUN", "--ci-prob", "0", "--out", "OUT"],
    "costs --seed 1e3": ["costs", "RUN", "--seed", "1e3", "--out", "OUT"],
    "fit --seed -1": ["fit", "--seed", "-1", "--out", "OUT"],
    "fit --draws 0": ["fit", "--draws", "0", "--out", "OUT"],
    "fit --chains -2": ["fit", "--chains", "-2", "--out", "OUT"],
    "fit --until 99": ["fit", "--until", "99", "--out", "OUT"],
    "fit --sampler stan": ["fit", "--sampler", "stan", "--out", "OUT"],
    "fit --max-treedepth 0": ["fit", "--max-treedepth", "0", "--out", "OUT"],
    "fit --max-treedepth 16": ["fit", "--max-treedepth", "16", "--out", "OUT"],
    "backtest --max-treedepth x": ["backtest", "--max-treedepth", "x", "--out", "OUT"],
    "intervention --draws 0": ["intervention", EDGE_OF_CARE, "--draws", "0", "--out", "OUT"],
    "intervention --draws 10**9": ["intervention", EDGE_OF_CARE, "--draws", "1000000000", "--out", "OUT"],
    "intervention --draws 1": ["intervention", EDGE_OF_CARE, "--draws", "1", "--out", "OUT"],
    "intervention --ci-prob 1": ["intervention", EDGE_OF_CARE, "--ci-prob", "1", "--out", "OUT"],
    "intervention --seed -1": ["intervention", EDGE_OF_CARE, "--seed", "-1", "--out", "OUT"],
    "intervention --scenario worst": ["intervention", EDGE_OF_CARE, "--scenario", "worst", "--out", "OUT"],
    "sensitivity --workers 0": ["sensitivity", "RUN", "--workers", "0", "--out", "OUT"],
    "backtest --workers 0": ["backtest", "--workers", "0", "--out", "OUT"],
    "backtest --origins 14-22": ["backtest", "--origins", "14-22", "--out", "OUT"],
    "backtest --horizons 0-3": ["backtest", "--horizons", "0-3", "--out", "OUT"],
    "backtest --draws 0": ["backtest", "--draws", "0", "--out", "OUT"],
    "backtest --la unknown": ["backtest", "--la", "E09999999", "--out", "OUT"],
    "backtest --neighbours 2019": ["backtest", "--neighbours", "2019", "--out", "OUT"],
    "report --seed -1": ["report", "--seed", "-1", "--out", "OUT.html"],
    "report --until 20x": ["report", "--until", "20x", "--out", "OUT.html"],
    "report --workers": ["report", "--workers", "2"],
    "compare --out missing value": ["compare", "--out"],
    "data build --out under a file": ["data", "build", "--out", "FILE/panel.csv"],
    "data check (no file)": ["data", "check"],
    "no command": [],
    "unknown command": ["explode"],
    "decompose (no run)": ["decompose"],
    # outputs under a regular file, one per command that writes
    "fit --out under a file": ["fit", "--out", "FILE/run.nc"],
    "decompose --out under a file": ["decompose", "RUN", "--from", "2010", "--to", "2020", "--out", "FILE/d.csv"],
    "forecast --out under a file": ["forecast", "RUN", "--out", "FILE/f.csv"],
    "costs --out under a file": ["costs", "RUN", "--out", "FILE/c.csv"],
    "intervention --out under a file": ["intervention", EDGE_OF_CARE, "--out", "FILE/i.csv"],
    "sensitivity --out under a file": ["sensitivity", "RUN", "--out", "FILE/s.csv"],
    "backtest --out under a file": ["backtest", "--out", "FILE/b.csv"],
    "compare --out under a file": ["compare", "--out", "FILE/charts"],
    "report --out under a file": ["report", "--out", "FILE/r.html"],
    "report --out not html": ["report", "--out", "OUT.pdf"],
    # the latent model's fit takes neither the default model's priors nor its tree-depth cap
    "fit --model latent --priors": ["fit", "--model", "latent", "--priors", "weak", "--out", "OUT.nc"],
    "fit --model latent --max-treedepth": ["fit", "--model", "latent", "--max-treedepth", "8", "--out", "OUT.nc"],
    "forecast --uasc-path unknown": ["forecast", "RUN", "--uasc-path", "drift", "--out", "OUT.csv"],
}


@pytest.mark.parametrize("argv", list(BAD_ARGUMENTS.values()), ids=list(BAD_ARGUMENTS))
def test_bad_value_gives_one_line_and_exit_2(argv, tmp_path, capsys, monkeypatch):
    import bayes_lac.model.fit as fit

    # nothing here may reach a model fit
    monkeypatch.setattr(fit.LACModel, "fit", lambda *a, **k: pytest.fail("a bad argument reached the fit"))
    import bayes_lac.model.latent_fit as latent_fit

    monkeypatch.setattr(
        latent_fit.LatentFitter, "fit", lambda *a, **k: pytest.fail("a bad argument reached the latent fit")
    )
    blocker = tmp_path / "a_file"
    blocker.write_text("a regular file")
    filled = [
        a.replace("RUN", str(tmp_path / "missing_run.nc"))
        .replace("FILE", str(blocker))
        .replace("OUT", str(tmp_path / "out"))
        for a in argv
    ]
    assert main(filled) == 2
    captured = capsys.readouterr()
    lines = captured.err.strip().splitlines()
    assert len(lines) == 1, captured.err
    assert "Traceback" not in captured.err
    assert lines[0].startswith("bayes-lac")
    assert "error" in lines[0]


@pytest.mark.parametrize("value", ["0", "1", "1.5", "nan", "-0.2", "inf"])
def test_ci_prob_outside_0_1_is_refused_when_parsed(value, capsys):
    code = main(["forecast", "run.nc", "--ci-prob", value, "--out", "f.csv"])
    err = capsys.readouterr().err
    assert code == 2 and "--ci-prob" in err
    assert "strictly between 0 and 1" in err or "finite" in err


def test_help_and_version_exit_0(capsys):
    assert main(["--version"]) == 0
    assert "bayes-lac" in capsys.readouterr().out
    assert main(["report", "--help"]) == 0
    assert "--overwrite" in capsys.readouterr().out


def test_unexpected_error_is_one_line_with_a_hint(monkeypatch, capsys, tmp_path):
    import bayes_lac.cli.commands as commands

    def broken(args):
        raise ZeroDivisionError("float division by zero")

    monkeypatch.setattr(commands, "intervention_command", broken)
    argv = ["intervention", EDGE_OF_CARE, "--out", str(tmp_path / "x.csv")]
    assert main(argv) == 1
    err = capsys.readouterr().err
    lines = err.strip().splitlines()
    assert len(lines) == 1 and "Traceback" not in err
    assert "unexpected error: ZeroDivisionError: float division by zero" in lines[0]
    assert "--debug" in lines[0]

    # --debug, before or after the command, shows the traceback
    for debug_argv in (["--debug", *argv], [*argv, "--debug"]):
        assert main(debug_argv) == 1
        err = capsys.readouterr().err
        assert "Traceback (most recent call last)" in err and "ZeroDivisionError" in err


def test_user_error_message_is_one_line(monkeypatch, capsys, tmp_path):
    """A BayesLacError whose message spans lines is printed on one line."""
    import bayes_lac.cli.commands as commands
    from bayes_lac.errors import InputFileError

    def failing(args):
        raise InputFileError("first line\nsecond line\n  third")

    monkeypatch.setattr(commands, "intervention_command", failing)
    assert main(["intervention", EDGE_OF_CARE, "--out", str(tmp_path / "x.csv")]) == 2
    assert capsys.readouterr().err == "bayes-lac intervention: error: first line second line third\n"


def test_interrupt_exits_130_in_one_line(monkeypatch, capsys, tmp_path):
    import bayes_lac.cli.commands as commands

    def interrupted(args):
        raise KeyboardInterrupt

    monkeypatch.setattr(commands, "intervention_command", interrupted)
    assert main(["intervention", EDGE_OF_CARE, "--out", str(tmp_path / "x.csv")]) == 130
    assert len(capsys.readouterr().err.strip().splitlines()) == 1


@pytest.mark.parametrize("kind", ["latin-1", "directory"])
def test_unreadable_prior_file_gives_one_line(kind, tmp_path, capsys, monkeypatch):
    """The defect: a latin-1 or directory prior file (--priors) gave a traceback."""
    import bayes_lac.model.fit as fit

    monkeypatch.setattr(fit.LACModel, "fit", lambda *a, **k: pytest.fail("a bad prior file reached the fit"))
    priors = tmp_path / "my_priors.toml"
    if kind == "latin-1":
        priors.write_bytes('base = "default"\n# Méthode\n[intercept]\nsd = 1.0\n'.encode("latin-1"))
    else:
        priors.mkdir()
    code = main(["fit", "--model", "default", "--priors", str(priors), "--out", str(tmp_path / "run.nc")])
    err = capsys.readouterr().err
    lines = err.strip().splitlines()
    assert code == 2 and len(lines) == 1 and "Traceback" not in err
    assert str(priors) in lines[0]
    if kind == "latin-1":
        assert "line 2" in lines[0] and "0xE9" in lines[0] and "UTF-8" in lines[0]
    else:
        assert "is a folder" in lines[0]
    assert not (tmp_path / "run.nc").exists()


@pytest.mark.parametrize(
    ("argv", "expected"),
    [
        # the latent model, the report's default, takes neither the 0.2 model's priors nor its tree cap
        (["report", "--priors", "weak", "--out", "OUT.html"], "add --model default"),
        (["report", "--max-treedepth", "8", "--out", "OUT.html"], "add --model default"),
        # with a saved run every fit setting is refused, the model and comparison set included
        (["report", "--run", "RUN", "--model", "latent", "--out", "OUT.html"], "--model set(s) how to fit"),
        (["report", "--run", "RUN", "--neighbours", "2021", "--out", "OUT.html"], "--neighbours set(s)"),
        (["report", "--run", "RUN", "--seed", "0", "--out", "OUT.html"], "--seed set(s)"),
        (["report", "--all", "--run", "RUN", "--draws", "50"], "--draws set(s)"),
        # the latent model's backtest records nutpie and no tree cap in its configuration
        (["backtest", "--max-treedepth", "8", "--out", "OUT.csv"], "(add --model default)"),
    ],
    ids=[
        "priors",
        "max-treedepth",
        "run+model",
        "run+neighbours",
        "run+seed0",
        "all+draws",
        "backtest-max-treedepth",
    ],
)
def test_settings_the_latent_default_does_not_take_are_refused_before_any_work(
    argv, expected, tmp_path, capsys, monkeypatch
):
    import bayes_lac.model.fit as fit
    import bayes_lac.model.latent_fit as latent_fit

    monkeypatch.setattr(fit.LACModel, "fit", lambda *a, **k: pytest.fail("reached the fit"))
    monkeypatch.setattr(latent_fit.LatentFitter, "fit", lambda *a, **k: pytest.fail("reached the latent fit"))
    filled = [a.replace("RUN", str(tmp_path / "run.nc")).replace("OUT", str(tmp_path / "out")) for a in argv]
    assert main(filled) == 2
    err = capsys.readouterr().err
    assert len(err.strip().splitlines()) == 1 and expected in err, err
    assert list(tmp_path.iterdir()) == []
