"""The CLI's commands on saved runs and searches: ``predict`` and ``evaluate`` for every task (and
the friendly names ``forecast``, ``segment``, ``sample``, ``upscale``, ``predict-frames``,
``caption``, ``classify-clip`` over the same path), ``backtest`` (forecasting runs), ``tasks``,
``tune``, and the parser of ``export``. Each command reads the run's task from the run and asks the
task registry (:mod:`lstmkit.tasks.registry`) what to do; nothing here knows a task by name beyond
the friendly commands' own. ``explain`` asks the run's task for its explainer likewise."""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path

__all__ = ["add_run_parsers", "add_tune_parser", "add_export_parser", "FORMATS"]

FORMATS = ("auto", "npz", "csv", "ts", "idx", "text", "long")  # lstmkit.tasks.classify.Format (a test keeps them equal)


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
    options = _options(args)
    _check_options(task, options, (*task.evaluate_options, "output", "data"), _EVALUATE_DEFAULTS, "evaluate")
    text = json.dumps(task.rescore(args.run, args.data, options), indent=1, default=str)
    if args.output:
        from .checkpoint import atomic_write_bytes

        atomic_write_bytes(args.output, text.encode())
    print(text)
    return 0


def _cmd_backtest(args: argparse.Namespace) -> int:
    from .tasks.forecast_backtest import backtest_run, default_output

    result = backtest_run(args.run, args.start, args.horizon, args.stride, args.input, args.out_dir,
                          args.retrain_every, args.gaps)
    out = args.out_dir or default_output(args.run, args.start, args.horizon)
    print(f"wrote backtest.csv, backtest.json and report.md to {out} ({result['origins']} origins)", file=sys.stderr)
    print(json.dumps({"model": result["model"], "baselines": result["baselines"]}, indent=1))
    return 0


def _cmd_explain(args: argparse.Namespace) -> int:
    """``lstmkit explain RUN [INPUT]``: the run's task explains one sample (and summarises the input)."""
    from .tasks.registry import task_of_run

    task = task_of_run(args.run)
    result = task.explainer()(args.run, args.input, _options(args))
    out = Path(args.out or Path(args.run) / "explain")
    check = result["faithfulness"]
    print(f"wrote {', '.join(result['files'])} to {out}", file=sys.stderr)
    print(json.dumps({"index": result["index"], "target": result["target"], "baseline": result["baseline"],
                      "convergence_delta": result["integrated_gradients"]["convergence_delta"],
                      "faithfulness": {k: check[k] for k in ("auc_top", "auc_random", "passed")},
                      "faithfulness_dataset": check["dataset"]}, indent=1, default=str))
    return 0


def _cmd_tasks(args: argparse.Namespace) -> int:
    from .tasks.registry import list_tasks

    rows = [("task", "resume", "evaluate", "--devices", "export", "explain", "predict reads", "what")]
    for t in list_tasks():
        s = t.supports()
        rows.append((t.name, *("yes" if s[k] else "no" for k in ("resume", "evaluate", "multi-process", "export",
                                                                  "explain")),
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


def add_run_parsers(sub, column) -> None:
    """``evaluate``, ``predict``, ``forecast``, ``backtest`` and ``tasks``, then the friendly prediction commands."""
    p = sub.add_parser("evaluate", help="re-score a run on its test data (or, for classification, other labelled data)")
    p.add_argument("run", help="run directory (the task is read from it)")
    p.add_argument("--data", help="classify: a dataset name (its test split) or a labelled file; default: the run's "
                                  "test data")
    p.add_argument("--labels", help="IDX label file for IDX images")
    p.add_argument("--format", default="auto", choices=FORMATS)
    p.add_argument("--label-column", type=column, help="CSV label column (default: the first column; text: 'label')")
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
    p.add_argument("--label-column", type=column, help="classify: a label column to skip in a CSV input (default: "
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

    p = sub.add_parser("backtest", help="rolling-origin forecasts of a forecasting run over a window of its series "
                                        "(or a new one), scored like its test part against its baselines")
    p.add_argument("run", help="run directory of a forecasting run")
    p.add_argument("--input", help="CSV series with the model's columns (default: the run's own series)")
    p.add_argument("--start", required=True, help="first origin: a time like 1958-01, or an int step")
    p.add_argument("--horizon", type=int, required=True, help="steps ahead (at most the trained horizon)")
    p.add_argument("--stride", type=int, help="steps between origins (default: the horizon)")
    p.add_argument("--output", dest="out_dir", metavar="DIR",
                   help="a new or empty directory (default: RUN/backtest-<start>-h<H>)")
    p.add_argument("--retrain-every", type=int, metavar="K", help="train the run's recipe again on the history before every K-th origin (default: the saved model "
                        "for every origin)")
    p.add_argument("--gaps", default="error", choices=("error", "interpolate"), help="missing values in --input")
    p.set_defaults(func=_cmd_backtest)

    p = sub.add_parser("explain", help="why did the model predict that: LSTM gates and cell states, Integrated "
                                        "Gradients attributions with a deletion faithfulness check, unit "
                                        "saturation (classification and forecasting runs; docs/explain.md)")
    p.add_argument("run", help="run directory (the task is read from it)")
    p.add_argument("input", nargs="?", default="test", help="classify: a series file, or 'test' (the run's test "
                                                            "split, the default); forecast: a CSV history, or "
                                                            "'test' (the run's own series)")
    p.add_argument("--index", type=int, default=0, help="the sample (series) of INPUT to explain (default 0)")
    p.add_argument("--out", help="output directory (default RUN/explain)")
    p.add_argument("--format", default="auto", choices=FORMATS, help="classify: INPUT's format")
    p.add_argument("--label-column", type=column, help="classify: a label column to skip in a CSV input")
    _add_read_options(p)
    p.add_argument("--gaps", default="error", choices=("error", "interpolate"), help="forecast: missing values")
    p.add_argument("--unit-samples", type=int, default=512,
                   help="samples the per-unit summaries read, evenly spaced over INPUT (default 512)")
    p.add_argument("--faithfulness-samples", type=int, default=32,
                   help="samples the dataset-level faithfulness summary explains, evenly spaced over INPUT "
                        "(default 32)")
    p.add_argument("--n-steps", type=int, default=64, help="Integrated Gradients quadrature points (default 64)")
    p.add_argument("--draws", type=int, default=10, help="random deletion orders averaged (default 10)")
    p.add_argument("--seed", type=int, default=0, help="seed of the random deletion orders")
    p.set_defaults(func=_cmd_explain)

    p = sub.add_parser("tasks", help="list the tasks: what each trains, what predict reads, what it supports")
    p.set_defaults(func=_cmd_tasks)
    _add_vision_parsers(sub)


def add_tune_parser(subparsers) -> argparse.ArgumentParser:
    """Add ``tune CONFIG --trials N [--storage URL] [--study-name NAME] [--workers K] [--out DIR]
    [--seed S] [--set KEY=VALUE]`` to a CLI's subparsers."""
    p = subparsers.add_parser("tune", help="Optuna hyperparameter search on the validation split; resumable; "
                                           "writes trials, a report and best.yaml")
    p.add_argument("config", help="tune YAML (base run, search ranges, metric, pruner) or a preset such as tune/digits; "
                                  "or a training config or preset (forecast/sunspots), searched with its task's "
                                  "objective and default ranges (docs/tune.md)")
    p.add_argument("--trials", type=int, required=True, help="trials to run now (added to the study's earlier ones)")
    p.add_argument("--storage", help="Optuna storage URL, e.g. sqlite:///study.db (default sqlite:///OUT/study.db)")
    p.add_argument("--study-name", help="study name (default: the config file's name)")
    p.add_argument("--workers", type=int, default=1, help="processes sharing the trials, one thread each (default 1; "
                                                          "classification studies only)")
    p.add_argument("--out", help="output directory (default runs/tune/<study name>)")
    p.add_argument("--seed", type=int, help="TPE sampler seed (default: the config's seed, else 0)")
    p.add_argument("--set", action="append", metavar="KEY=VALUE", help="override of the base run, e.g. "
                                                                        "--set train.epochs=20 (repeatable)")
    p.set_defaults(func=_run_tune)
    return p


def add_export_parser(subparsers) -> argparse.ArgumentParser:
    """Add ``export RUN [--format onnx] [--output FILE] [--opset N] [--[no-]preprocessing]`` to a
    CLI's subparsers."""
    from .export.onnx import DEFAULT_OPSET, MAX_OPSET, MIN_OPSET
    from .export.onnx import FORMATS as EXPORT_FORMATS

    p = subparsers.add_parser("export", help="export a run's model to ONNX (dynamic batch and time axes)")
    p.add_argument("run", help="run directory (classification or forecasting)")
    p.add_argument("--format", default="onnx", choices=EXPORT_FORMATS)
    p.add_argument("--output", help="model file (default: RUN/model.onnx); its description is written to FILE.json")
    p.add_argument("--opset", type=int, help=f"ONNX opset, {MIN_OPSET}..{MAX_OPSET} (default {DEFAULT_OPSET})")
    p.add_argument("--preprocessing", action=argparse.BooleanOptionalAction, default=None,
                   help="the graph standardises its inputs, which are raw series (the default for series "
                        "classifiers; an error for forecasters and text classifiers, whose graphs take transformed "
                        "inputs or token ids); --no-preprocessing: the graph takes standardised series")
    p.set_defaults(func=_run_export)
    return p




def _run_tune(args: argparse.Namespace) -> int:
    """``lstmkit tune``: runs the search (:func:`lstmkit.tasks.tune.run_tune`), writes the outputs,
    prints a JSON summary on stdout."""
    import logging

    from .tasks.tune import WorkerError, load_tune_config, run_tune
    from .tasks.tune_config import require_optuna

    optuna = require_optuna()
    config = load_tune_config(args.config, args.set or [], args.seed)
    name = args.study_name or Path(args.config).stem
    out = Path(args.out) if args.out else Path("runs") / "tune" / name
    optuna.logging.set_verbosity(optuna.logging.WARNING)  # trials are logged by lstmkit, one line each
    try:
        summary = run_tune(config, out, args.trials, args.storage, name, args.workers)
    except WorkerError as e:
        logging.getLogger("lstmkit.tasks.tune").error(f"lstmkit tune: {e}; the outputs in {out} cover the trials "
                                                      "that finished")
        return 1
    sys.stdout.write(json.dumps(summary, indent=1) + "\n")
    return 0


def _run_export(args: argparse.Namespace) -> int:
    from .export.onnx import run_export_command

    return run_export_command(args)
