"""Package-level contracts: the dependency direction, no print in the library, the CLI."""

import ast
import pathlib
import subprocess
import sys

import pytest

from lstmkit.cli import main, parity_report

SRC = pathlib.Path(__file__).resolve().parents[1] / "src" / "lstmkit"


def _imports(path: pathlib.Path):
    tree = ast.parse(path.read_text())
    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            yield from (a.name for a in node.names)
        elif isinstance(node, ast.ImportFrom):
            if node.level:  # relative: resolve against the package path
                parts = path.relative_to(SRC.parent).with_suffix("").parts[: -node.level]
                yield ".".join(parts + ((node.module,) if node.module else ()))
            elif node.module:
                yield node.module


def test_nn_depends_on_torch_and_numpy_only():
    allowed_third_party = {"torch", "numpy"}
    for path in (SRC / "nn").rglob("*.py"):
        for mod in _imports(path):
            root = mod.split(".")[0]
            if root == "lstmkit":  # itself, or the leaf argument checks (which import nothing from lstmkit)
                assert mod.startswith("lstmkit.nn") or mod == "lstmkit.checks", \
                    f"{path.name} imports {mod}: lstmkit.nn must not import above itself"
            elif root not in sys.stdlib_module_names:
                assert root in allowed_third_party, f"{path.name} imports {mod}"


# What each part of the package may import from lstmkit: nn <- models <- data/eval <- tasks <- export <- bench <- cli/sklearn.
# checks (argument checks) and boxcox (the transform data and eval share) are leaf modules any part may use.
LEAVES = {"checks", "boxcox", "checkpoint"}
ALLOWED = {
    "nn": {"nn", "checks"},
    "models": {"nn", "models", "checks"},
    "data": {"nn", "data", "checks", "boxcox"},
    "eval": {"eval", "checks", "boxcox", "checkpoint"},
    "tasks": {"nn", "models", "data", "eval", "tasks", "__init__"} | LEAVES,
    "checkpoint": set(),
    "checks": set(),
    "boxcox": set(),
    "runtime": set(),
    "export": {"nn", "models", "data", "tasks", "export", "__init__"} | LEAVES,
    "bench": {"nn", "models", "data", "eval", "tasks", "export", "runtime", "bench", "__init__"} | LEAVES,
    "explain": {"nn", "models", "data", "eval", "tasks", "explain"} | LEAVES,  # tasks name it as "module:function"
}


def test_dependencies_point_one_way():
    for path in SRC.rglob("*.py"):
        part = path.relative_to(SRC).parts[0].removesuffix(".py")
        if part not in ALLOWED:
            continue
        for mod in _imports(path):
            if mod == "lstmkit":
                mod = "lstmkit.__init__"
            if mod.startswith("lstmkit."):
                target = mod.split(".")[1]
                assert target in ALLOWED[part] | {part}, f"{path.relative_to(SRC)} imports {mod}"


def test_no_print_in_library_code():
    for path in SRC.rglob("*.py"):
        if path.name in ("cli.py", "cli_runs.py", "__main__.py"):  # the command line decides what the user sees
            continue
        for node in ast.walk(ast.parse(path.read_text())):
            if isinstance(node, ast.Call) and getattr(node.func, "id", None) == "print":
                pytest.fail(f"print() in {path.relative_to(SRC)}:{node.lineno}")


def test_parity_report_is_at_rounding_error():
    report = parity_report()
    assert len(report) == 6
    assert max(report.values()) <= 1e-10, report


def test_cli_parity_and_version(capsys):
    assert main(["parity"]) == 0
    assert "fused: gradients" in capsys.readouterr().out
    with pytest.raises(SystemExit) as e:
        main(["--version"])
    assert e.value.code == 0


def test_python_dash_m_entry_point():
    r = subprocess.run([sys.executable, "-m", "lstmkit", "--help"], capture_output=True, text=True, timeout=120)
    assert r.returncode == 0 and "demo" in r.stdout


def test_unknown_command_is_a_usage_error(capsys):
    with pytest.raises(SystemExit) as e:
        main(["trian"])
    assert e.value.code == 2
    assert "invalid choice: 'trian'" in capsys.readouterr().err


def test_compiled_sources_and_bench_bars_ship_as_package_data():
    import fnmatch
    import tomllib

    root = pathlib.Path(__file__).resolve().parents[1]
    patterns = tomllib.loads((root / "pyproject.toml").read_text())["tool"]["setuptools"]["package-data"]["lstmkit"]
    package = root / "src" / "lstmkit"
    for name in ("nn/_stream_kernel.c", "nn/_fused_recurrence.cpp", "nn/_fused_recurrence_packed.cpp",
                 "nn/_scan_kernel.c", "nn/_fast_exp.c", "bench/speed_bars.json"):
        assert (package / name).exists(), name
        assert any(fnmatch.fnmatch(name, p) for p in patterns), f"{name} is not package data"
