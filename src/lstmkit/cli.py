"""Command line: ``lstmkit train | evaluate | predict | forecast | tune | bench | export | datasets |
models | demo | parity``.

A thin layer over configs and run directories; the library below it only logs, the CLI
decides what the user sees (log lines on stderr, results on stdout or in files).

Run directory contract (every pipeline): ``config.yaml`` (resolved), ``model.safetensors`` +
``model.json``, ``metrics.json`` shaped ``{"val": {...}, "test": {...}, "train_seconds": s,
"epochs": n, ...}``, ``report.md`` and its plots.
"""

from __future__ import annotations

import argparse
import json
import logging
import sys
import time
from importlib import resources
from pathlib import Path

import torch
from torch import nn

from . import __version__
from .nn import LSTM
from .cli_runs import add_export_parser, add_run_parsers, add_tune_parser
from .runtime import malloc_tuning_wanted, tune_malloc

PRESETS = resources.files("lstmkit") / "configs"


def parity_report(seed: int = 0) -> dict[str, float]:
    """Max |difference| between lstmkit and torch.nn.LSTM (float64) on a stacked bidirectional
    LSTM with projection: outputs, states and every gradient, on the fused and recurrence
    paths, plus padded-with-lengths against each sequence run alone."""
    torch.manual_seed(seed)
    ref = nn.LSTM(5, 16, num_layers=2, bidirectional=True, proj_size=8, dtype=torch.float64)
    x = torch.randn(12, 4, 5, dtype=torch.float64, requires_grad=True)
    report: dict[str, float] = {}
    out_r, (h_r, c_r) = ref(x)
    loss_r = out_r.pow(2).sum() + h_r.sum() + c_r.sum()
    g_r = torch.autograd.grad(loss_r, [x, *ref.parameters()])
    for impl in ("auto", "loop"):
        ours = LSTM(5, 16, num_layers=2, bidirectional=True, proj_size=8, dtype=torch.float64, implementation=impl)
        ours.load_state_dict(ref.state_dict())
        out, (h, c) = ours(x)
        g = torch.autograd.grad(out.pow(2).sum() + h.sum() + c.sum(), [x, *ours.parameters()])
        name = "fused" if impl == "auto" else "recurrence"
        report[f"{name}: output, h_n, c_n"] = max((out - out_r).abs().max().item(), (h - h_r).abs().max().item(),
                                                  (c - c_r).abs().max().item())
        report[f"{name}: gradients"] = max((a - b).abs().max().item() for a, b in zip(g, g_r))
        lengths = [12, 5, 9, 1]
        padded, (hp, _) = ours(x, lengths=lengths)
        err = 0.0
        for b, n in enumerate(lengths):
            alone, (ha, _) = ours(x[:n, b : b + 1])
            err = max(err, (padded[:n, b : b + 1] - alone).abs().max().item(), (hp[:, b] - ha[:, 0]).abs().max().item())
        report[f"{name}: padded with lengths vs alone"] = err
    return report


def _cmd_parity(args: argparse.Namespace) -> int:
    report = parity_report(args.seed)
    for k, v in report.items():
        print(f"{k:45s} {v:.2e}")
    return 0 if max(report.values()) <= 1e-10 else 1


# ------------------------------------------------------------------------------ train etc.


def _task(name: object):
    """The registered task ``name`` (:mod:`lstmkit.tasks.registry`)."""
    from .tasks.registry import get_task

    return get_task(name)


def resolve_config(path: str, overrides: list[str]) -> tuple[object, str]:
    """(config dataclass, task) from a YAML file (or a packaged preset such as classify/digits)
    plus ``key=value`` overrides."""
    from .tasks.config import apply_overrides, build, drop_replaced, load_yaml

    file = Path(path)
    if not file.is_file():
        preset = PRESETS.joinpath(*f"{path.removesuffix('.yaml')}.yaml".split("/"))
        if not preset.is_file():
            raise FileNotFoundError(f"config {path} does not exist (nor is it a packaged preset such as classify/digits)")
        file = Path(str(preset))
    original = load_yaml(file)
    data = apply_overrides(original, overrides)
    task = _task(data.get("task", "classify"))
    data = drop_replaced(task.config, data, original, overrides, where=path)  # e.g. data.path over a preset's name
    return build(task.config, data), task.name


def _default_out(config_path: str, seed: int) -> Path:
    return Path("runs") / f"{Path(config_path).stem}-seed{seed}-{time.strftime('%Y%m%d-%H%M%S')}"


def _check_out(out: Path, overwrite: bool = False) -> None:
    """The overwrite rule (:func:`lstmkit.tasks.runs.claim_run_dir`), checked once: by the launcher
    and by rank 0 of a distributed run, never by the other ranks (rank 0 is writing there)."""
    import os

    from .tasks.runs import claim_run_dir

    if os.environ.get("RANK", "0") == "0":
        claim_run_dir(out, overwrite)


def _resume(args: argparse.Namespace) -> int:
    """``lstmkit train --resume DIR``: continue an interrupted run with its saved config, in one process."""
    if args.resume is None:
        raise ValueError("train needs a config (a YAML file or a preset such as classify/digits), or --resume DIR")
    if args.config is not None or args.set or args.out or args.devices != 1 or args.overwrite or args.init_from \
            or args.freeze:
        raise ValueError("--resume DIR continues with DIR/config.yaml in one process: pass no config, --set, --out, "
                         "--overwrite, --devices, --init-from or --freeze")
    from .tasks.lifecycle import resume_run

    with _interruptible(Path(args.resume)):
        metrics = resume_run(args.resume)
    print(json.dumps({"run": args.resume, "test": metrics["test"], "val": metrics["val"],
                      "train_seconds": metrics["train_seconds"], "epochs": metrics["epochs"]}, indent=1))
    return 0


class Interrupted(KeyboardInterrupt):
    """SIGTERM, raised in the main thread as Ctrl-C (SIGINT) raises KeyboardInterrupt."""


def _raise_interrupted(signum, frame) -> None:
    raise Interrupted()


class _interruptible:
    """Turn SIGTERM into :class:`Interrupted` while a run trains; on Ctrl-C or SIGTERM, say so and how
    to continue (``lstmkit train --resume DIR`` when a checkpoint exists), and exit with 128 + the
    signal's number as a shell does."""

    def __init__(self, out: Path) -> None:
        self.out = out

    def __enter__(self):
        import signal
        import threading

        self.previous = None
        if threading.current_thread() is threading.main_thread():
            self.previous = signal.signal(signal.SIGTERM, _raise_interrupted)
        return self

    def __exit__(self, kind, error, tb) -> bool:
        import signal

        from .tasks.runs import interrupted

        if self.previous is not None:
            signal.signal(signal.SIGTERM, self.previous)
        if kind is None or not issubclass(kind, KeyboardInterrupt):
            return False
        name, code = ("SIGTERM", 128 + signal.SIGTERM) if issubclass(kind, Interrupted) else ("Ctrl-C", 128 + signal.SIGINT)
        if interrupted(self.out):
            advice = f"continue it with:\n  lstmkit train --resume {self.out}"
        else:
            advice = "it had written no checkpoint yet, so there is nothing to resume: train it again"
        print(f"lstmkit train: interrupted ({name}); {advice}", file=sys.stderr)
        raise SystemExit(code)


def _run_task(task: str, config, out: Path) -> dict:
    """Run the task; if it fails before leaving anything resumable, remove the directories this
    call created (nothing is left half-written)."""
    import shutil

    created = [p for p in (out, *out.parents) if not p.exists()]
    try:
        with _interruptible(out):
            return _task(task).train(config, out)
    except BaseException:
        from .tasks.runs import interrupted

        if created and not interrupted(out):
            shutil.rmtree(created[-1], ignore_errors=True)
        raise


def _column(value: str) -> str | int:
    return int(value) if value.isdigit() else value


def _cmd_train(args: argparse.Namespace) -> int:
    from .tasks import distributed

    if args.resume is not None or args.config is None:
        return _resume(args)
    config, task = resolve_config(args.config, args.set or [])
    config = _with_transfer(config, args.init_from, args.freeze)
    if args.devices < 1:
        raise ValueError(f"--devices must be >= 1, got {args.devices}")
    parallel = args.devices > 1 or distributed.under_launcher()
    reason = _task(task).multi_process
    if parallel and reason is not None:
        raise ValueError(f"--devices N does not apply to {task!r} runs: it {reason} (see `lstmkit tasks`)")
    out = Path(args.out) if args.out else _default_out(args.config, config.train.seed)
    _check_out(out, args.overwrite)
    if args.devices > 1 and not distributed.under_launcher():
        # torchrun re-executes this command line in each worker; --out is fixed now so all agree
        return distributed.launch([*_without_option(args.argv, "--out"), "--out", str(out)], args.devices)
    if malloc_tuning_wanted(not args.no_malloc_tuning) and tune_malloc():
        logging.getLogger(__name__).debug("malloc tuned: freed memory stays in the process (--no-malloc-tuning to "
                                          "keep glibc's defaults)")
    rank = distributed.init_from_env(config.train.device, args.strategy)[0] if parallel else 0
    if rank != 0:  # every rank trains; only rank 0 keeps its run directory
        import tempfile

        with tempfile.TemporaryDirectory() as scratch:
            _task(task).train(config, Path(scratch) / "run")
        return 0
    metrics = _run_task(task, config, out)
    print(json.dumps({"run": str(out), **{k: metrics[k] for k in ("test", "val", "train_seconds", "epochs")
                                          if k in metrics}}, indent=1))
    return 0


def _with_transfer(config, init_from: str | None, freeze: list[str] | None):
    """The config with ``--init-from RUN`` (path made absolute, its weights' SHA-256 recorded) and
    ``--freeze PATTERN``s in its ``train`` section (:mod:`lstmkit.tasks.transfer`)."""
    import dataclasses

    if init_from is None and not freeze:
        return config
    from .tasks.transfer import source_hash

    changes = {}
    if init_from is not None:
        changes.update(init_from=str(Path(init_from).resolve()), init_sha256=source_hash(init_from))
    if freeze:
        changes["freeze"] = [*config.train.freeze, *freeze]
    return dataclasses.replace(config, train=dataclasses.replace(config.train, **changes))


def _without_option(argv: list[str], name: str) -> list[str]:
    """argv without ``name VALUE`` / ``name=VALUE``."""
    out, skip = [], False
    for a in argv:
        if skip:
            skip = False
        elif a == name:
            skip = True
        elif not a.startswith(name + "="):
            out.append(a)
    return out


def _cmd_datasets(args: argparse.Namespace) -> int:
    from .data import list_datasets
    from .data.datasets import _ALIASES, aeon_shipped

    print("registered:", ", ".join(list_datasets()))
    print("aliases:", ", ".join(f"{k} (ucr:{v})" for k, v in sorted(_ALIASES.items())))
    try:
        print("UCR/UEA shipped with aeon (offline, as ucr:NAME):", ", ".join(aeon_shipped()))
    except ImportError:
        print("UCR/UEA: install aeon (pip install 'lstmkit[data]') for ucr:NAME datasets")
    print("any other UCR/UEA name: ucr:NAME with data.download=true (needs network)")
    return 0


def _cmd_models(args: argparse.Namespace) -> int:
    from .models import list_models
    from .models.registry import describe_model, model_task

    if args.task is not None:
        _task(args.task)  # an unknown task names the close ones
    for name in list_models(args.task):
        print(f"{name:22s} {model_task(name) or '-':9s} {describe_model(name)}")
    return 0


def _cmd_demo(args: argparse.Namespace) -> int:
    print(f"lstmkit {__version__} · torch {torch.__version__} · {torch.get_num_threads()} thread(s)")
    print("\n1. Parity with torch.nn.LSTM (float64, 2 layers, bidirectional, proj_size=8): max |difference|")
    report = parity_report(args.seed)
    for k, v in report.items():
        print(f"   {k:45s} {v:.2e}")
    print("\n2. Digits (scikit-learn, 8 rows of 8 pixels): the classify/digits preset, end to end")
    config, task = resolve_config("classify/digits", [f"train.seed={args.seed}", *(args.set or [])])
    out = Path(args.out)
    _check_out(out, args.overwrite)
    t0 = time.perf_counter()
    metrics = _task(task).train(config, out)
    test = metrics["test"]
    print(f"   test accuracy {100 * test['accuracy']:.2f}%, macro-F1 {100 * test['macro_f1']:.2f}% "
          f"({metrics['n_test']} test samples), {metrics['epochs']} epochs, {time.perf_counter() - t0:.0f} s")
    print(f"   report: {out / 'report.md'}")
    ok = max(report.values()) <= 1e-10 and test["accuracy"] > 0.9
    print("\n" + ("OK" if ok else "FAILED: parity above 1e-10 or the digits model did not learn"))
    return 0 if ok else 1


def _add_bench_parsers(sub) -> None:
    from .bench import commands
    from .bench.compare import add_compare_arguments, run_compare_command
    from .bench.images import add_images_arguments, run_images_command
    from .bench.latency import add_latency_arguments, run_latency_command
    from .bench.longrange import add_longrange_arguments, run_longrange_command

    bench = sub.add_parser("bench", help="speed, scaling, architecture comparison, streaming latency and image layers; "
                                         "tables, JSON, CSV, plots and report.md in an output directory")
    kinds = bench.add_subparsers(dest="bench", required=True)
    for name, help_, add, run in (
            ("speed", "per-layer time, GFLOP/s and fraction of the measured GEMM peak over a (T, B, D, H) grid",
             commands.add_speed_arguments, commands.run_speed_command),
            ("scaling", "time and memory against T, H, layers and batch, with fitted exponents",
             commands.add_scaling_arguments, commands.run_scaling_command),
            ("compare", "train LSTM, GRU, RNN, TCN and Transformer at matched parameter counts on a task",
             add_compare_arguments, run_compare_command),
            ("latency", "per-step streaming latency at batch 1: nn.LSTM, nn.LSTMCell, onnxruntime, lstmkit",
             add_latency_arguments, run_latency_command),
            ("images", "time per image against image size for ReNet, Row LSTM, Diagonal BiLSTM, ConvLSTM and a conv",
             add_images_arguments, run_images_command),
            ("longrange", "train LSTM, sLSTM, mLSTM, minLSTM on the adding problem or copy task at growing T under a "
                          "time cap: solved or not, time per epoch, time to solve, memory",
             add_longrange_arguments, run_longrange_command)):
        p = kinds.add_parser(name, help=help_)
        add(p)
        p.set_defaults(func=run)


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="lstmkit", description="LSTMs that are practical, correct and fast.")
    parser.add_argument("--version", action="version", version=f"lstmkit {__version__}")
    parser.add_argument("-q", "--quiet", action="store_true", help="only warnings on stderr")
    sub = parser.add_subparsers(dest="command", required=True)

    p = sub.add_parser("train", help="train from a YAML config; writes a run directory")
    p.add_argument("config", nargs="?", help="YAML file, or a packaged preset such as classify/digits")
    p.add_argument("--set", action="append", metavar="KEY=VALUE", help="override, e.g. --set train.lr=0.003 (repeatable)")
    p.add_argument("--out", help="run directory (default runs/<config>-seed<seed>-<time>); one that holds a run "
                                 "is refused unless --overwrite")
    p.add_argument("--overwrite", action="store_true",
                   help="delete the run already in --out (finished or interrupted) and train a new one there")
    p.add_argument("--resume", metavar="DIR", help="continue the interrupted run in DIR from its last checkpoint, "
                                                    "with the config.yaml it saved (any task; no config "
                                                    "argument)")
    p.add_argument("--no-malloc-tuning", action="store_true",
                   help="keep glibc's default allocator settings (see lstmkit.runtime; also LSTMKIT_MALLOC_TUNING=0)")
    p.add_argument("--devices", type=int, default=1,
                   help="data-parallel worker processes on this machine, launched through torchrun (the tasks "
                        "`lstmkit tasks` marks)")
    p.add_argument("--strategy", default="ddp", choices=("ddp",),
                   help="distributed strategy: ddp (DistributedDataParallel; gloo on CPU, NCCL on GPU)")
    p.add_argument("--init-from", metavar="RUN", help="start from the weights of the run RUN whose names and shapes "
                                                       "match (transfer learning; lists loaded, skipped and new)")
    p.add_argument("--freeze", action="append", metavar="PATTERN",
                   help="freeze the parameters whose names match this fnmatch pattern, e.g. 'encoder.*' (repeatable)")
    p.set_defaults(func=_cmd_train)

    p = sub.add_parser("datasets", help="list the datasets available by name")
    p.set_defaults(func=_cmd_datasets)
    p = sub.add_parser("models", help="list the registered models and the task each serves")
    p.add_argument("--task", help="only the models of this task (see `lstmkit tasks`)")
    p.set_defaults(func=_cmd_models)

    p = sub.add_parser("demo", help="parity with torch.nn.LSTM, then the digits run with its report")
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--out", default="runs/demo")
    p.add_argument("--overwrite", action="store_true", help="replace an earlier demo run in --out")
    p.add_argument("--set", action="append", metavar="KEY=VALUE")
    p.set_defaults(func=_cmd_demo)
    add_run_parsers(sub, _column)
    _add_bench_parsers(sub)
    add_tune_parser(sub)
    add_export_parser(sub)

    p = sub.add_parser("parity", help="print max differences from torch.nn.LSTM (float64)")
    p.add_argument("--seed", type=int, default=0)
    p.set_defaults(func=_cmd_parity)
    return parser


def _check_outputs(args: argparse.Namespace) -> None:
    """A file the command will write (``--output``, ``--attention``) must go into an existing
    directory and not be one: checked before any work, naming the user's path."""
    for flag in ("output", "attention"):
        value = getattr(args, flag, None)
        if not value:
            continue
        path = Path(value)
        if path.is_dir():
            raise ValueError(f"--{flag} {value} is a directory; give a file path")
        if not path.parent.is_dir():
            raise FileNotFoundError(f"--{flag} {value}: directory {path.parent} does not exist; create it first")


def _add_quiet_everywhere(parser: argparse.ArgumentParser) -> None:
    """``-q`` after the subcommand too (``lstmkit train -q ...``), at every level of subcommands;
    SUPPRESS keeps a subparser from resetting a ``-q`` given before the subcommand."""
    for action in parser._actions:
        if isinstance(action, argparse._SubParsersAction):
            for sub in action.choices.values():
                if "-q" not in sub._option_string_actions:
                    sub.add_argument("-q", "--quiet", action="store_true", default=argparse.SUPPRESS,
                                     help="only warnings on stderr")
                _add_quiet_everywhere(sub)


def main(argv: list[str] | None = None) -> int:
    argv = list(sys.argv[1:] if argv is None else argv)
    parser = build_parser()
    _add_quiet_everywhere(parser)
    args = parser.parse_args(argv)
    args.argv = argv
    handler = logging.StreamHandler(sys.stderr)
    handler.setFormatter(logging.Formatter("%(message)s"))
    root = logging.getLogger("lstmkit")
    root.handlers[:] = [handler]
    root.setLevel(logging.WARNING if args.quiet else logging.INFO)
    root.propagate = False
    try:
        _check_outputs(args)
        return args.func(args)
    except (ValueError, TypeError, FileNotFoundError, ImportError, FloatingPointError) as e:
        print(f"lstmkit {args.command}: error: {e}", file=sys.stderr)
        return 2


if __name__ == "__main__":
    sys.exit(main())
