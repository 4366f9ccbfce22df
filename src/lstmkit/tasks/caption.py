"""Image captioning end to end (Show, Attend and Tell): config -> data -> model -> training -> BLEU.

``train_captioner(config, out_dir)`` is what ``lstmkit train`` runs for ``task: caption``:

1. data: generated digit scenes (:func:`lstmkit.data.captions.caption_scenes`; test scenes from
   test glyphs only) or a Flickr8k-layout folder (:func:`lstmkit.data.captions.load_flickr8k`;
   its official train/test split files when present, else a carved test split);
2. a validation split carved from the training images (seed ``train.seed``); the caption
   vocabulary is fit on the remaining training captions only;
3. training with :func:`lstmkit.tasks.trainer.fit` (teacher forcing; each epoch draws one of the
   reference captions of every image at random), best weights by validation loss; the history
   also holds the greedy validation BLEU-4 of every epoch;
4. BLEU-1..4 (sacrebleu's corpus BLEU against all references, on the 0-1 scale: sacrebleu's
   score / 100) of greedy and beam decoding on validation and test, the exact-match rate (a
   caption equal to one of its references), two baselines on the same test images (the most
   frequent training caption for every image; the caption of the nearest training image in
   pixel space), example captions, and one attention PNG per test example showing where the
   model looked for each word (:func:`lstmkit.eval.vision_report.caption_report`).

The run lifecycle (:func:`lstmkit.tasks.lifecycle.run_task`) writes the run directory; ``model.json``
holds the architecture, vocabulary and image size (everything :func:`load_captioner` needs).
``lstmkit evaluate DIR`` re-scores the test images (:func:`lstmkit.tasks.lifecycle.evaluate_run`).
"""

from __future__ import annotations

import logging
import os
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Literal

import numpy as np
import torch
from torch import nn

from ..checks import check_int
from ..data.captions import CaptionBatches, CaptionVocab, load_caption_data
from ..data.images import read_image, resize
from ..data.splits import random_split
from ..data.text import tokenize
from ..eval.captions import RETRIEVAL_BASELINES, bleu_scores, exact_match, retrieval_baselines
from ..eval.vision_report import caption_report, plot_attention
from .config import check_task, model_section, path_field, to_plain
from .registry import Prediction, Task, Tuning, register_task
from .lifecycle import Run, Scores, Steps, run_task
from .runs import load_model, model_spec
from .trainer import TrainConfig

__all__ = ["CaptionDataConfig", "CaptionEvalConfig", "CaptionConfig", "Captioner", "train_captioner",
           "load_captioner", "caption_image", "caption_command", "write_attention_png"]

log = logging.getLogger(__name__)

TASK = "caption"


@dataclass
class CaptionDataConfig:
    """Digit scenes (``source: scenes``) or a Flickr8k-layout folder (``source: flickr8k``)."""

    source: Literal["scenes", "flickr8k"] = "scenes"
    n_train: int = 6000  # scenes: training scenes (validation is carved from them)
    n_test: int = 1000  # scenes: test scenes, from test glyphs
    seed: int = 0  # scenes: the generator seed (test scenes use seed + 1); flickr8k: the carved test split
    canvas: list[int] = field(default_factory=lambda: [40, 56])  # scenes: (H, W)
    glyph_size: int = 16
    max_digits: int = 3
    mnist: str | None = path_field()  # scenes: an MNIST IDX folder for the glyphs (default: scikit-learn digits)
    directory: str | None = path_field()  # flickr8k: the folder
    image_size: list[int] = field(default_factory=lambda: [64, 64])  # flickr8k: (H, W) after resizing
    channels: int = 3  # flickr8k
    limit: int | None = None  # flickr8k: at most this many images per split
    test_fraction: float = 0.2  # flickr8k without split files
    min_freq: int = 1  # vocabulary: words seen fewer times in training captions become <unk>

    def __post_init__(self) -> None:
        if self.source not in ("scenes", "flickr8k"):
            raise ValueError(f"data.source must be 'scenes' or 'flickr8k', got {self.source!r}")
        for name in ("n_train", "n_test", "glyph_size", "min_freq"):
            check_int(f"data.{name}", getattr(self, name))
        for name in ("canvas", "image_size"):
            v = getattr(self, name)
            if not (isinstance(v, (list, tuple)) and len(v) == 2 and all(isinstance(x, int) and x > 0 for x in v)):
                raise ValueError(f"data.{name} must be [height, width] in pixels, got {v!r}")
        if self.source == "flickr8k" and self.directory is None:
            raise ValueError("data.source flickr8k needs data.directory (the folder with Flickr8k.token.txt)")
        if self.source == "scenes" and self.directory is not None:
            raise ValueError("data.directory applies to source flickr8k; scenes are generated")
        if not (isinstance(self.test_fraction, float) and 0 < self.test_fraction < 1):
            raise ValueError(f"data.test_fraction must be in (0, 1), got {self.test_fraction!r}")


@dataclass
class CaptionEvalConfig:
    beam: int = 5
    max_len: int = 20  # words per generated caption
    examples: int = 8  # example captions in the report
    attention_images: int = 4  # test images with an attention PNG

    def __post_init__(self) -> None:
        for name in ("beam", "max_len"):
            check_int(f"evaluate.{name}", getattr(self, name))
        for name in ("examples", "attention_images"):
            check_int(f"evaluate.{name}", getattr(self, name), minimum=0)


@dataclass
class CaptionConfig:
    data: CaptionDataConfig = field(default_factory=CaptionDataConfig)
    model: dict[str, Any] = field(default_factory=lambda: {"name": "attention_captioner"})
    train: TrainConfig = field(default_factory=TrainConfig)
    evaluate: CaptionEvalConfig = field(default_factory=CaptionEvalConfig)
    task: Literal["caption"] = "caption"

    def __post_init__(self) -> None:
        check_task(self, TASK)
        model_section("model", self.model)
        if self.train.monitor != "val_loss":
            raise ValueError(f"train.monitor must be 'val_loss' for captioning (the history also has val_bleu4), "
                             f"got {self.train.monitor!r}")


# --------------------------------------------------------------------------------- captioner


@dataclass
class Captioner:
    """A trained captioner with its vocabulary and the image size it was trained on."""

    model: nn.Module
    vocab: CaptionVocab
    size: tuple[int, int]  # (H, W)
    channels: int
    max_len: int = 20
    batch_size: int = 256

    @torch.no_grad()
    def decode(self, images: np.ndarray, beam: int = 1) -> tuple[list[str], list[np.ndarray], list[list[str]]]:
        """(captions, attention maps (T_i, h, w) per caption, words per caption) for ``(N, C, H, W)``
        images; ``beam=1``: greedy decoding, else beam search of that width."""
        images = np.asarray(images, dtype=np.float32)
        if images.ndim != 4 or images.shape[1:] != (self.channels, *self.size):
            raise ValueError(f"images must be (N, {self.channels}, {self.size[0]}, {self.size[1]}), got {images.shape}")
        device = next(self.model.parameters()).device
        self.model.eval()
        captions, maps, words = [], [], []
        for start in range(0, len(images), self.batch_size):
            x = torch.from_numpy(images[start:start + self.batch_size]).to(device)
            out = (self.model.greedy(x, self.max_len) if beam == 1
                   else self.model.beam_search(x, beam=beam, max_len=self.max_len))
            for tokens, n, att in zip(out.tokens.cpu().numpy(), out.lengths.tolist(), out.attention.cpu().numpy()):
                w = [self.vocab.tokens[int(t)] for t in tokens[:n]]
                words.append(w)
                captions.append(" ".join(w))
                maps.append(att[:n])
        return captions, maps, words

    def description(self) -> dict:
        """What ``model.json`` records beside the weights (:func:`load_captioner` reads it back)."""
        return {"vocab": self.vocab.to_dict(), "image": {"size": list(self.size), "channels": self.channels},
                "max_len": self.max_len}


def load_captioner(directory: str | os.PathLike, device: str = "cpu") -> Captioner:
    """A captioner from a run directory (safetensors + JSON; nothing is unpickled)."""
    return _captioner(*load_model(directory, "caption", device), directory)


def _captioner(model: nn.Module, meta: dict, directory: str | os.PathLike) -> Captioner:
    try:
        vocab = CaptionVocab.from_dict(meta["vocab"])
        size, channels = tuple(int(v) for v in meta["image"]["size"]), int(meta["image"]["channels"])
        max_len = int(meta.get("max_len", 20))
    except (KeyError, TypeError, ValueError) as e:
        raise ValueError(f"{Path(directory)}/model.json: the vocabulary or image description is malformed ({e})") from None
    if len(vocab) != model.vocab_size:
        raise ValueError(f"{Path(directory)}/model.json: {len(vocab)} vocabulary tokens but the model has "
                         f"vocab_size={model.vocab_size}")
    return Captioner(model, vocab, size, channels, max_len)


def caption_image(directory: str | os.PathLike, image_path: str | os.PathLike, beam: int = 5
                  ) -> tuple[str, np.ndarray]:
    """(caption, attention (T, h, w): one map over the encoder grid per word) for one image file,
    resized to the size the model was trained on. What ``lstmkit caption DIR IMAGE`` runs."""
    _, caption, attention, _ = _caption_file(directory, image_path, beam)
    return caption, attention


def _caption_file(directory, image_path, beam: int) -> tuple[np.ndarray, str, np.ndarray, list[str]]:
    """(the image (C, H, W) float32 in [0, 1] at the model's size, its caption, attention, words)."""
    cap = load_captioner(directory)
    a = read_image(image_path, cap.channels)
    a = a[..., None] if a.ndim == 2 else a
    if a.shape[:2] != cap.size:
        a = resize(a[None], cap.size)[0]
    image = np.ascontiguousarray(a.transpose(2, 0, 1))
    captions, maps, words = cap.decode(image[None], beam=beam)
    return image, captions[0], maps[0], words[0]


def write_attention_png(path: str | os.PathLike, directory: str | os.PathLike, image_path: str | os.PathLike,
                        beam: int = 5) -> str:
    """Caption ``image_path`` with the model in ``directory`` and write its per-word attention PNG
    to ``path``; returns the caption (``lstmkit caption DIR IMAGE --attention PNG``)."""
    image, caption, attention, words = _caption_file(directory, image_path, beam)
    plot_attention(path, image, words, attention, title=caption)
    return caption


def caption_command(directory: str | os.PathLike, image_path: str | os.PathLike, beam: int = 5,
                    attention: str | os.PathLike | None = None) -> str:
    """``lstmkit caption DIR IMAGE [--beam 5] [--attention PNG]``: the caption of ``image_path``
    (beam search of width ``beam``; 1 is greedy), and its per-word attention PNG when asked."""
    if attention is not None:
        return write_attention_png(attention, directory, image_path, beam)
    return caption_image(directory, image_path, beam)[0]


# -------------------------------------------------------------------------------- training


def _score_one(cap: Captioner, images: np.ndarray, refs: list, beam: int) -> tuple[dict, list[str]]:
    hyps, _, _ = cap.decode(images, beam=beam)
    return {**bleu_scores(hyps, refs, tokenize), "exact": exact_match(hyps, refs, tokenize)}, hyps


@dataclass
class _Data:
    train: tuple[np.ndarray, list]  # (images, reference lists)
    val: tuple[np.ndarray, list]
    test: tuple[np.ndarray, list]
    vocab: CaptionVocab
    captioner: Captioner | None = None  # the model being trained, with the vocabulary and image size


def _prepare(config: CaptionConfig) -> _Data:
    """(train, val, test), each (images, reference lists); val is carved from the training images."""
    (x_all, refs_all), test = load_caption_data(config.data)
    tr, va = random_split(len(refs_all), config.train.val_fraction, config.train.seed)
    train, val = (x_all[tr], [refs_all[i] for i in tr]), (x_all[va], [refs_all[i] for i in va])
    vocab = CaptionVocab.fit(train[1], min_freq=config.data.min_freq)
    log.info(f"captions: {len(train[1])} train / {len(val[1])} val / {len(test[1])} test images, {len(vocab)} tokens")
    return _Data(train, val, test, vocab)


def _train(run: Run, data: _Data) -> None:
    (x_tr, refs_tr), (x_va, refs_va), vocab, tc = data.train, data.val, data.vocab, run.train
    enc = lambda refs: [[vocab.encode(r) for r in rs] for rs in refs]  # noqa: E731
    name, kwargs = model_spec(run.config.model, vocab_size=len(vocab), in_channels=int(x_tr.shape[1]),
                              pad_id=vocab.pad_id, start_id=vocab.start_id, end_id=vocab.end_id)
    model = run.build(name, kwargs)
    cap = Captioner(model, vocab, tuple(int(v) for v in x_tr.shape[2:]), int(x_tr.shape[1]), run.config.evaluate.max_len)

    def evaluate(m: nn.Module, batches) -> dict:
        total, count = 0.0, 0
        for images, tokens, lengths in batches:
            total += m.loss(images, tokens, lengths).item() * len(tokens)
            count += len(tokens)
        hyps, _, _ = cap.decode(x_va, beam=1)
        return {"loss": total / count, "bleu4": bleu_scores(hyps, refs_va, tokenize)["bleu4"]}

    run.fit("model", model, {"name": name, **kwargs},
            CaptionBatches(x_tr, enc(refs_tr), tc.batch_size, vocab.pad_id, tc.seed).batches,
            CaptionBatches(x_va, enc(refs_va), 256, vocab.pad_id).fixed(256), lambda m, b: m.loss(*b), evaluate,
            meta={**cap.description(), "train_seed": tc.seed})
    model.eval()
    data.captioner = cap
    for label in RETRIEVAL_BASELINES:  # retrievals: no network, no training
        run.add(label)


def _score(run: Run, data: _Data, part: str) -> Scores:
    cap, beam = data.captioner, run.config.evaluate.beam
    if part == "val":
        (x_va, refs_va) = data.val
        return Scores({"loss": run.model.result.best["loss"], "greedy": _score_one(cap, x_va, refs_va, 1)[0],
                       "beam": _score_one(cap, x_va, refs_va, beam)[0]})
    (x_tr, refs_tr), (x_test, refs_test) = data.train, data.test
    greedy, greedy_hyps = _score_one(cap, x_test, refs_test, 1)
    beamed, beam_hyps = _score_one(cap, x_test, refs_test, beam)
    return Scores({"greedy": greedy, "beam": beamed, "n": len(refs_test)},
                  retrieval_baselines(x_tr, refs_tr, x_test, refs_test, tokenize), (greedy_hyps, beam_hyps))


def _metrics(run: Run, data: _Data, scores: dict) -> dict:
    ev, m, refs_test = run.config.evaluate, run.model, data.test[1]
    greedy_hyps, beam_hyps = scores["test"].outputs
    examples = [{"index": i, "greedy": greedy_hyps[i], "beam": beam_hyps[i], "references": refs_test[i]}
                for i in range(min(ev.examples, len(refs_test)))]
    return {"baselines": scores["test"].baselines, "bleu_scale": "0-1 (sacrebleu corpus BLEU / 100)", "beam": ev.beam,
            "cpu_seconds": round(run.cpu_seconds(), 3),
            **m.fit_fields(), "seed": run.train.seed, "device": m.device,
            "parameters": m.params, "vocab_size": len(data.vocab),
            "n_train": len(data.train[1]), "n_val": len(data.val[1]), "n_test": len(refs_test), "examples": examples}


def _report(run: Run, data: _Data, metrics: dict, scores: dict):
    ev, x_test, attention_files = run.config.evaluate, data.test[0], []
    if ev.attention_images:
        _, maps, words = data.captioner.decode(x_test[: ev.attention_images], beam=ev.beam)
        for i, (m, w) in enumerate(zip(maps, words)):
            attention_files.append(f"attention_{i}.png")
            plot_attention(run.out / attention_files[-1], x_test[i], w, m, title=" ".join(w))
    return caption_report(run.out, config=to_plain(run.config), metrics=metrics, history=run.model.history,
                          attention_files=attention_files)


def _restore(run: Run, data: _Data) -> None:  # lstmkit evaluate: the saved model with its vocabulary
    data.captioner = _captioner(run.model.model, run.model.meta, run.out)


STEPS = Steps(TASK, _prepare, _train, _score, _metrics, _report, restore=_restore)


def train_captioner(config: CaptionConfig, out_dir: str | os.PathLike, resume: bool = False,
                    score_test: bool = True) -> dict:
    """Run one captioning experiment and write its run directory; returns metrics.json
    (:func:`lstmkit.tasks.lifecycle.run_task`; ``resume``: continue the interrupted run there)."""
    return run_task(STEPS, config, out_dir, resume, score_test)


def _predict(run: str | os.PathLike, image: str | os.PathLike, options: dict) -> Prediction:
    beam, attention = options.get("beam") or 5, options.get("attention")
    text = caption_command(run, image, beam, attention)
    return Prediction(None, {"caption": text, **({"attention": attention} if attention else {})})


register_task(Task(
    "caption", "image captioning: Show, Attend and Tell against retrieval baselines", CaptionConfig,
    train_captioner, _predict, "an image", predict_options=("beam", "attention"),
    steps=STEPS,
    multi_process="averages its loss over caption tokens, not over samples",
    tune=Tuning("val_greedy.bleu4", {"val_greedy.bleu4": "maximize", "val_beam.bleu4": "maximize",
                                     "val_loss": "minimize"}, {
        "train.lr": {"type": "float", "low": 5.0e-4, "high": 5.0e-3, "log": True},
        "model.hidden_size": {"type": "categorical", "choices": [128, 256, 512]},
        "model.attention_size": {"type": "categorical", "choices": [64, 128, 256]},
        "model.dropout": {"type": "float", "low": 0.0, "high": 0.5},
        "train.batch_size": {"type": "categorical", "choices": [32, 64, 128]}})))
