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
from .runtime import malloc_tuning_wanted, tune_malloc

PRESETS = resources.files("lstmkit") / "configs"
FORMATS = ("auto", "npz", "csv", "ts", "idx", "text", "long")  # lstmkit.tasks.classify.Format (a test keeps them equal)


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
    if args.config is not None or args.set or args.out or args.devices != 1 or args.overwrite:
        raise ValueError("--resume DIR continues with DIR/config.yaml in one process: pass no config, --set, --out, "
                         "--overwrite or --devices")
    from .tasks.config import build
    from .tasks.runs import saved_config

    saved = saved_config(args.resume)  # raises for a run that does not resume, and says why
    task = _task(saved.get("task", "classify"))
    with _interruptible(Path(args.resume)):
        metrics = task.train(build(task.config, saved), Path(args.resume), resume=True)
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


def _options(args: argparse.Namespace) -> dict:
    return {k: v for k, v in vars(args).items() if k not in ("func", "argv", "command", "run", "quiet")}


def _check_options(task, given: dict, allowed: tuple[str, ...], defaults: dict, command: str) -> None:
    """An option the run's task does not read, given on the command line, is an error naming it."""
    for name, value in given.items():
        if name in defaults and value != defaults[name] and name not in allowed:
            flag = "--" + name.replace("_", "-")
            raise ValueError(f"{flag} does not apply to {task.name!r} runs (`lstmkit {command}` reads "
                             f"{', '.join('--' + a.replace('_', '-') for a in allowed) or 'no options'} for them)")


def _emit(text: str, output: str | None, what: str) -> int:
    """Write a command's result to --output (atomically) or stdout."""
    if output:
        from .checkpoint import atomic_write_bytes

        atomic_write_bytes(output, text.encode())
        print(f"wrote {what} to {output}", file=sys.stderr)
    else:
        sys.stdout.write(text)
    return 0


def _predict(args: argparse.Namespace, input: str | None, expect: tuple[str, ...] | None = None) -> int:
    """Every prediction command: the run's task (from the run itself) predicts from ``input``."""
    from .tasks.registry import task_of_run

    task = task_of_run(args.run)
    if expect is not None and task.name not in expect:
        raise ValueError(f"{args.run} holds a {task.name!r} model; `lstmkit {args.command}` needs a "
                         f"{' or '.join(expect)} run (`lstmkit predict RUN INPUT` takes any run)")
    options = _options(args)
    if args.command == "predict":
        _check_options(task, options, (*task.predict_options, "output"), _PREDICT_DEFAULTS, "predict")
    if input is None and task.input_required:
        raise ValueError(f"a {task.name!r} run predicts from INPUT: {task.predict_input}")
    result = task.predict(args.run, input, options)
    if result.text is not None:
        return _emit(result.text, args.output, result.what)
    print(json.dumps(result.summary, indent=1))
    return 0


def _cmd_predict(args: argparse.Namespace) -> int:
    return _predict(args, args.input)


def _cmd_evaluate(args: argparse.Namespace) -> int:
    from .tasks.registry import task_of_run

    task = task_of_run(args.run)
    if task.evaluate is None:
        raise ValueError(f"`lstmkit evaluate` does not re-score {task.name!r} runs yet; their test scores are in "
                         f"{Path(args.run) / 'metrics.json'}")
    options = _options(args)
    _check_options(task, options, (*task.evaluate_options, "output", "data"), _EVALUATE_DEFAULTS, "evaluate")
    text = json.dumps(task.evaluate(args.run, args.data, options), indent=1, default=str)
    if args.output:
        from .checkpoint import atomic_write_bytes

        atomic_write_bytes(args.output, text.encode())
    print(text)
    return 0


def _cmd_tasks(args: argparse.Namespace) -> int:
    from .tasks.registry import list_tasks

    rows = [("task", "resume", "evaluate", "--devices", "export", "predict reads", "what")]
    for t in list_tasks():
        s = t.supports()
        rows.append((t.name, *("yes" if s[k] else "no" for k in ("resume", "evaluate", "multi-process", "export")),
                     t.predict_input, t.summary))
    widths = [max(len(r[i]) for r in rows) for i in range(len(rows[0]) - 1)]
    for r in rows:
        print("  ".join(c.ljust(w) for c, w in zip(r, widths)) + "  " + r[-1])
    return 0


def _cmd_forecast(args: argparse.Namespace) -> int:
    return _predict(args, args.input, ("forecast",))


def _cmd_segment(args: argparse.Namespace) -> int:
    return _predict(args, args.image, ("segment",))


def _cmd_sample(args: argparse.Namespace) -> int:
    return _predict(args, None, ("generate",))


def _cmd_upscale(args: argparse.Namespace) -> int:
    return _predict(args, args.image, ("superres",))


def _cmd_predict_frames(args: argparse.Namespace) -> int:
    return _predict(args, args.clip, ("video",))


def _cmd_caption(args: argparse.Namespace) -> int:
    return _predict(args, args.image, ("caption",))


def _cmd_classify_clip(args: argparse.Namespace) -> int:
    return _predict(args, args.input, ("action", "volume"))


def _add_vision_parsers(sub) -> None:
    p = sub.add_parser("segment", help="label every pixel of an image with a segmentation run's model")
    p.add_argument("run", help="run directory of a segment run")
    p.add_argument("image", help="an image file of the size and channels the model was trained on")
    p.add_argument("--output", help="colourised label map PNG (default: next to IMAGE, NAME.segment.png)")
    p.set_defaults(func=_cmd_segment)
    p = sub.add_parser("sample", help="draw images from a generation run's model into a grid PNG")
    p.add_argument("run", help="run directory of a generate run")
    p.add_argument("--n", type=int, default=64, help="number of samples (default 64)")
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--output", help="grid PNG (default RUN/samples-seedS.png)")
    p.set_defaults(func=_cmd_sample)
    p = sub.add_parser("upscale", help="super-resolve an image with a superres run's model")
    p.add_argument("run", help="run directory of a superres run")
    p.add_argument("image", help="an image file")
    p.add_argument("--scale", type=int, required=True, help="the factor the model was trained for (2 or 4)")
    p.add_argument("--output", help="PNG (default: next to IMAGE, NAME.xS.png)")
    p.set_defaults(func=_cmd_upscale)
    p = sub.add_parser("predict-frames", help="predict the next frames of a clip with a video run's model")
    p.add_argument("run", help="run directory of a video run")
    p.add_argument("clip", help="a .npy clip (T, H, W) of the run's input length and frame size")
    p.add_argument("--output", help=".npy frames or a .png strip (default: next to CLIP)")
    p.set_defaults(func=_cmd_predict_frames)
    p = sub.add_parser("caption", help="caption an image with a caption run's model")
    p.add_argument("run", help="run directory of a caption run")
    p.add_argument("image", help="an image file")
    p.add_argument("--beam", type=int, default=5, help="beam width (1: greedy; default 5)")
    p.add_argument("--attention", metavar="PNG", help="also write the attention map of every word here")
    p.set_defaults(func=_cmd_caption)
    p = sub.add_parser("classify-clip", help="classify clips (action runs) or volumes (volume runs) in a .npy")
    p.add_argument("run", help="run directory of an action or volume run")
    p.add_argument("input", help=".npy: one clip (T, S, S) or many (N, T, 1, S, S); one volume (D, H, W) or many")
    p.add_argument("--output", help="write the JSON here (default: stdout)")
    p.set_defaults(func=_cmd_classify_clip)


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
             add_images_arguments, run_images_command)):
        p = kinds.add_parser(name, help=help_)
        add(p)
        p.set_defaults(func=run)


_PREDICT_DEFAULTS = {"format": "auto", "label_column": None, "text_column": "text", "layout": None, "id_column": None,
                     "time_column": None, "horizon": None, "gaps": "error", "scale": None, "n": None, "seed": None,
                     "beam": None, "attention": None}  # the predict parser's defaults (a test keeps them equal)
_EVALUATE_DEFAULTS = {"format": "auto", "label_column": None, "labels": None, "layout": None, "id_column": None,
                      "time_column": None}


def _add_read_options(p: argparse.ArgumentParser) -> None:
    p.add_argument("--layout", choices=("ntd", "ndt"), help=".npz X as (n, T, D) or (n, D, T) (aeon/sktime); "
                                                              "default: the run's data.layout")
    p.add_argument("--id-column", help="long CSV (--format long): the series id column (default: the run's)")
    p.add_argument("--time-column", help="long CSV: sort each series' rows by this column (default: the run's)")


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
                   help="data-parallel worker processes on this machine, launched through torchrun (classify)")
    p.add_argument("--strategy", default="ddp", choices=("ddp",),
                   help="distributed strategy: ddp (DistributedDataParallel; gloo on CPU, NCCL on GPU)")
    p.set_defaults(func=_cmd_train)

    p = sub.add_parser("evaluate", help="re-score a run on its test data (or, for classification, other labelled data)")
    p.add_argument("run", help="run directory (the task is read from it)")
    p.add_argument("--data", help="classify: a dataset name (its test split) or a labelled file; default: the run's "
                                  "test data")
    p.add_argument("--labels", help="IDX label file for IDX images")
    p.add_argument("--format", default="auto", choices=FORMATS)
    p.add_argument("--label-column", type=_column, help="CSV label column (default: the first column; text: 'label')")
    _add_read_options(p)
    p.add_argument("--output", help="write the JSON result here too")
    p.set_defaults(func=_cmd_evaluate)

    p = sub.add_parser("predict", help="predict with any run from the input its task reads (`lstmkit tasks`)")
    p.add_argument("run", help="run directory (the task is read from it)")
    p.add_argument("input", nargs="?", help="what the run's task reads: a series file (classify), a CSV history "
                                            "(forecast, optional), an image, a clip or volume .npy; none for generate")
    p.add_argument("--output", help="classify, forecast, action, volume: CSV (default) or .json, default stdout; "
                                    "image tasks: the file to write (default: next to INPUT)")
    p.add_argument("--format", default="auto", choices=FORMATS, help="classify")
    p.add_argument("--label-column", type=_column, help="classify: a label column to skip in a CSV input (default: "
                                                        "none; every column is data)")
    p.add_argument("--text-column", default="text", help="classify (text runs)")
    _add_read_options(p)
    p.add_argument("--horizon", type=int, help="forecast: steps to forecast (default: the trained horizon)")
    p.add_argument("--gaps", default="error", choices=("error", "interpolate"), help="forecast: missing values in INPUT")
    p.add_argument("--scale", type=int, help="superres: the factor the model was trained for")
    p.add_argument("--n", type=int, help="generate: number of samples (default 64)")
    p.add_argument("--seed", type=int, help="generate: sampling seed (default 0)")
    p.add_argument("--beam", type=int, help="caption: beam width (default 5)")
    p.add_argument("--attention", metavar="PNG", help="caption: also write the attention map of every word here")
    p.set_defaults(func=_cmd_predict)

    p = sub.add_parser("forecast", help="forecast the steps after a history with a trained forecaster")
    p.add_argument("run", help="run directory of a forecasting run")
    p.add_argument("--horizon", type=int, required=True, help="steps to forecast (at most the trained horizon)")
    p.add_argument("--input", help="CSV history with the model's columns (trailing rows: future covariates); "
                                   "default: the run's own series, to their end")
    p.add_argument("--gaps", default="error", choices=("error", "interpolate"), help="missing values in --input")
    p.add_argument("--output", help="CSV (default) or .json; default: stdout")
    p.set_defaults(func=_cmd_forecast)

    p = sub.add_parser("tasks", help="list the tasks: what each trains, what predict reads, what it supports")
    p.set_defaults(func=_cmd_tasks)
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
    _add_vision_parsers(sub)
    _add_bench_parsers(sub)
    from .export.onnx import add_export_parser
    from .tasks.tune import add_tune_parser

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
