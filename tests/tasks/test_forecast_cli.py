"""`lstmkit train` / `lstmkit forecast` on a user CSV as docs/forecast.md shows it (the example is
read from the page and run as written, with tiny epochs), the log the CLI prints, and error advice
that names the option the way the user sets it."""

import contextlib
import csv
import io
import re
import shlex
from pathlib import Path

import numpy as np
import pytest

from lstmkit.cli import main
from lstmkit.tasks.forecast import load_forecaster, read_forecast_input

DOC = Path(__file__).resolve().parents[2] / "docs" / "forecast.md"
TINY = ["--set", "train.epochs=1", "--set", "model.hidden_size=4", "--set", "evaluate.samples=20"]


def _example() -> dict[str, list[str]]:
    """The fenced blocks of the page's user-CSV section, by language: csv (the head of sales.csv,
    then recent.csv's end), yaml (sales.yaml) and sh (the commands)."""
    section = DOC.read_text().split("## Your own CSV, end to end", 1)[1].split("\n## ", 1)[0]
    blocks: dict[str, list[str]] = {}
    for lang, body in re.findall(r"```(\w+)\n(.*?)```", section, re.S):
        blocks.setdefault(lang, []).append(body)
    assert sorted(blocks) == ["csv", "sh", "yaml"] and len(blocks["csv"]) == 2, "the doc example changed shape"
    return blocks


def _rows(text: str) -> tuple[list[str], list[list[str]]]:
    rows = list(csv.reader(io.StringIO(text)))
    return rows[0], rows[1:]


def _write(path: Path, header: list[str], rows: list[list[str]]) -> Path:
    with open(path, "w", newline="") as f:
        csv.writer(f).writerows([header, *rows])
    return path


def _sales_rows(head: list[list[str]], last: list[str]) -> list[list[str]]:
    """The doc's first rows, generated days in between, the doc's last history row (daily, weekly
    pattern, promo effect, temperature rising into summer)."""
    first, end = np.datetime64(head[-1][0]), np.datetime64(last[0])
    days = np.arange(first + 1, end)
    rng = np.random.default_rng(0)
    i = np.arange(len(days))
    promo = (rng.random(len(days)) < 0.25).astype(int)
    temp = 3 + 21 * i / len(days) + rng.standard_normal(len(days))
    sales = 100 + 8 * np.sin(2 * np.pi * i / 7) + 0.1 * i + 10 * promo + 2 * rng.standard_normal(len(days))
    middle = [[str(d), f"{s:.2f}", f"{t:.1f}", str(p)] for d, s, t, p in zip(days, sales, temp, promo)]
    return [*head, *middle, last]


@pytest.fixture(scope="module")
def doc_run(tmp_path_factory):
    """The doc's files and commands, run in a fresh directory; (directory, {command: (rc, stdout, stderr)})."""
    root = tmp_path_factory.mktemp("doc")
    blocks = _example()
    header, head = _rows(blocks["csv"][0])
    recent_header, recent = _rows(blocks["csv"][1])
    assert recent_header == header
    history_end = max(i for i, r in enumerate(recent) if r[1])
    sales = _sales_rows(head, recent[history_end])
    _write(root / "sales.csv", header, sales)
    _write(root / "recent.csv", header, [*sales[:-1], *recent[history_end:]])
    (root / "sales.yaml").write_text(blocks["yaml"][0])
    results = {}
    with contextlib.chdir(root):
        for line in blocks["sh"][0].strip().splitlines():
            argv = shlex.split(line)
            assert argv[0] == "lstmkit"
            argv = argv[1:] + (TINY if argv[1] == "train" else [])
            out, err = io.StringIO(), io.StringIO()
            with contextlib.redirect_stdout(out), contextlib.redirect_stderr(err):
                rc = main(argv)
            results[argv[0]] = (rc, out.getvalue(), err.getvalue())
    return root, results


def test_the_user_csv_example_of_the_docs_works_as_written(doc_run):
    root, results = doc_run
    for command in ("train", "forecast"):
        assert results[command][0] == 0, results[command][2]
    fc = load_forecaster(root / "runs" / "sales")
    assert (fc.targets, fc.past, fc.future, fc.horizon) == (("sales",), ("temperature",), ("promo",), 7)
    assert fc.calendar == ("dayofweek", "dayofyear")
    with open(root / "next-week.csv") as f:
        rows = list(csv.DictReader(f))
    assert [r["time"] for r in rows] == [f"2023-07-{d}" for d in range(20, 27)]
    assert all(r["target"] == "sales" and float(r["lower"]) <= float(r["forecast"]) <= float(r["upper"])
               for r in rows)


def test_cli_train_does_not_log_the_malloc_tuning(doc_run):
    rc, _, err = doc_run[1]["train"]
    assert rc == 0 and "member 1/1" in err  # info lines are shown (no -q) ...
    assert "malloc tuned" not in err  # ... but the allocator setting is a debug detail


def test_gap_advice_names_the_option_where_it_is_set(doc_run, tmp_path, capsys):
    root, _ = doc_run
    with open(root / "recent.csv") as f:
        rows = list(csv.reader(f))
    rows[50][1] = ""  # a missing sales value in the history
    holes = _write(tmp_path / "holes.csv", rows[0], rows[1:])
    # the command line: the flag
    assert main(["forecast", str(root / "runs" / "sales"), "--horizon", "7", "--input", str(holes)]) == 2
    err = capsys.readouterr().err
    assert "1 missing values (first at row 49); pass --gaps interpolate to fill them linearly" in err
    assert "gaps='interpolate'" not in err
    assert main(["-q", "forecast", str(root / "runs" / "sales"), "--horizon", "7", "--input", str(holes),
                 "--gaps", "interpolate"]) == 0
    # a config: the key
    _write(tmp_path / "sales.csv", rows[0], [r for r in rows[1:] if r[1] or r[2]])
    (tmp_path / "sales.yaml").write_text((root / "sales.yaml").read_text().replace("sales.csv", str(tmp_path / "sales.csv")))
    assert main(["-q", "train", str(tmp_path / "sales.yaml"), "--out", str(tmp_path / "r")]) == 2
    err = capsys.readouterr().err
    assert "1 missing values (first at row 49); set data.gaps: interpolate to fill them linearly" in err
    assert not (tmp_path / "r").exists()
    # Python: the keyword
    with pytest.raises(ValueError, match=r"first at row 49\); pass gaps='interpolate' to fill them linearly"):
        read_forecast_input(holes, load_forecaster(root / "runs" / "sales"), "date")
