"""Image captioning: CNN encoder + LSTM decoder with soft attention (Show, Attend and Tell).

Xu et al. 2015, "Show, Attend and Tell: Neural Image Caption Generation with Visual Attention",
soft (deterministic) attention. What we keep: an encoder that turns the image into a grid of
L = h x w annotation vectors; the initial LSTM state from the mean annotation through two
linear layers; Bahdanau (additive) attention over the L locations from the previous hidden
state; the gating scalar beta = sigmoid(f_beta(h)) on the context; the LSTM input
[embedding of the previous word, gated context]; the deep output layer
``logits = L_o(E y + L_h h + L_z z)``; and the doubly stochastic regulariser
``alpha_c * mean_i (1 - sum_t alpha_ti)^2`` added to the mean word cross-entropy.
What we changed: the encoder is a small CNN trained from scratch (no pre-trained VGG; the grid
is whatever its pooling leaves) with each location's coordinates appended to its feature
(``coords``; without them the decoder of the digit-scenes preset confused "left of" and "right
of" after naming a digit, because a convolutional feature says what, not where), the regulariser is a mean over locations rather than a sum
(so ``alpha_c`` does not scale with the grid size), and dropout sits before the output layer.

Decoding: :meth:`AttentionCaptioner.greedy` and :meth:`AttentionCaptioner.beam_search` (batched;
beams that emitted ``<end>`` stay in the beam with a frozen score). A beam that never emits
``<end>`` stops at ``max_len``; when no beam of an image has finished, the best unfinished one
is returned with ``ended = False`` instead of failing (a known crash in public implementations,
where the finished list is empty). Both return :class:`Captions` with per-word attention maps.
"""

from __future__ import annotations

from typing import NamedTuple, Sequence

import torch
import torch.nn.functional as F
from torch import Tensor, nn

from ..checks import check_int
from ..nn import LSTMCell
from .registry import register_model

__all__ = ["ConvEncoder", "SoftAttention", "AttentionCaptioner", "Captions"]


class Captions(NamedTuple):
    """Decoded captions of B images (``T <= max_len`` generated steps).

    tokens (B, T): word ids, ``<end>`` excluded, padded with ``pad_id``; lengths (B,): words per
    caption; scores (B,): summed log-probabilities of the words (and of ``<end>`` when emitted);
    ended (B,) bool: whether ``<end>`` was emitted; attention (B, T, h, w): the attention map
    over the encoder grid when each word was generated (zeros past the length).
    """

    tokens: Tensor
    lengths: Tensor
    scores: Tensor
    ended: Tensor
    attention: Tensor


class ConvEncoder(nn.Module):
    """Blocks of Conv(3x3) -> BatchNorm -> ReLU -> MaxPool(2): (B, C, H, W) -> (B, L, D), L = h*w.

    ``coords``: append each location's (row, column) in [-1, 1] to its feature (CoordConv-style),
    so a context vector tells the decoder *where* it looked, not only *what* it saw.
    """

    def __init__(self, in_channels: int, channels: Sequence[int], coords: bool = True) -> None:
        super().__init__()
        layers, c = [], in_channels
        for width in channels:
            layers += [nn.Conv2d(c, width, 3, padding=1, bias=False), nn.BatchNorm2d(width), nn.ReLU(inplace=True),
                       nn.MaxPool2d(2)]
            c = width
        self.net = nn.Sequential(*layers)
        self.coords = bool(coords)
        self.in_channels, self.out_features, self.blocks = in_channels, c + 2 * self.coords, len(channels)
        self.downsample = 2 ** len(channels)

    def forward(self, images: Tensor) -> tuple[Tensor, tuple[int, int]]:
        """images (B, C, H, W) -> (features (B, L, D), grid (h, w)), h = H // 2^blocks."""
        f = self.net(images)  # -> (B, D, h, w)
        b, _, h, w = f.shape
        if self.coords:
            rows = torch.linspace(-1, 1, h, device=f.device, dtype=f.dtype)[:, None].expand(h, w)
            cols = torch.linspace(-1, 1, w, device=f.device, dtype=f.dtype)[None, :].expand(h, w)
            f = torch.cat([f, torch.stack([rows, cols]).expand(b, 2, h, w)], 1)  # -> (B, D+2, h, w)
        return f.flatten(2).transpose(1, 2), (h, w)  # -> (B, h*w, D)


class SoftAttention(nn.Module):
    """Bahdanau attention: ``alpha = softmax_i(w . tanh(W_f f_i + W_h h))``, context = sum_i alpha_i f_i."""

    def __init__(self, feature_size: int, hidden_size: int, attention_size: int) -> None:
        super().__init__()
        self.features = nn.Linear(feature_size, attention_size)
        self.hidden = nn.Linear(hidden_size, attention_size)
        self.score = nn.Linear(attention_size, 1)

    def forward(self, projected: Tensor, features: Tensor, h: Tensor) -> tuple[Tensor, Tensor]:
        """projected = self.features(features) (B, L, A), features (B, L, D), h (B, H)
        -> (context (B, D), alpha (B, L))."""
        e = self.score(torch.tanh(projected + self.hidden(h).unsqueeze(1))).squeeze(2)  # -> (B, L)
        alpha = torch.softmax(e, dim=1)
        return torch.bmm(alpha.unsqueeze(1), features).squeeze(1), alpha  # -> (B, D), (B, L)


class AttentionCaptioner(nn.Module):
    """CNN encoder + attention LSTM decoder; owns its loss and its decoding."""

    def __init__(self, vocab_size: int, in_channels: int = 1, channels: Sequence[int] = (32, 64, 64),
                 embed_size: int = 64, hidden_size: int = 256, attention_size: int = 128, dropout: float = 0.3,
                 alpha_c: float = 1.0, coords: bool = True, pad_id: int = 0, start_id: int = 1, end_id: int = 2
                 ) -> None:
        super().__init__()
        for name, v in (("vocab_size", vocab_size), ("in_channels", in_channels), ("embed_size", embed_size),
                        ("hidden_size", hidden_size), ("attention_size", attention_size)):
            check_int(name, v)
        if isinstance(channels, (str, bytes)) or not isinstance(channels, Sequence) or not channels:
            raise ValueError(f"channels must be a non-empty list of positive ints (one per encoder block), got {channels!r}")
        channels = [check_int(f"channels[{i}]", c) for i, c in enumerate(channels)]
        if not (isinstance(dropout, (int, float)) and 0 <= dropout < 1):
            raise ValueError(f"dropout must be in [0, 1), got {dropout!r}")
        if isinstance(alpha_c, bool) or not isinstance(alpha_c, (int, float)) or alpha_c < 0:
            raise ValueError(f"alpha_c (doubly stochastic regularisation weight) must be a number >= 0, got {alpha_c!r}")
        ids = {"pad_id": pad_id, "start_id": start_id, "end_id": end_id}
        for name, v in ids.items():
            if isinstance(v, bool) or not isinstance(v, int) or not 0 <= v < vocab_size:
                raise ValueError(f"{name} must be an int in [0, vocab_size={vocab_size}), got {v!r}")
        if len(set(ids.values())) != 3:
            raise ValueError(f"pad_id, start_id and end_id must differ, got {ids}")
        self.vocab_size, self.pad_id, self.start_id, self.end_id = vocab_size, pad_id, start_id, end_id
        self.alpha_c = float(alpha_c)
        if not isinstance(coords, bool):
            raise ValueError(f"coords must be true or false, got {coords!r}")
        self.encoder = ConvEncoder(in_channels, channels, coords)
        d = self.encoder.out_features
        self.init_h = nn.Linear(d, hidden_size)
        self.init_c = nn.Linear(d, hidden_size)
        self.attention = SoftAttention(d, hidden_size, attention_size)
        self.f_beta = nn.Linear(hidden_size, d)
        self.embed = nn.Embedding(vocab_size, embed_size, padding_idx=pad_id)
        self.cell = LSTMCell(embed_size + d, hidden_size)
        self.out_h = nn.Linear(hidden_size, embed_size)
        self.out_z = nn.Linear(d, embed_size, bias=False)
        self.drop = nn.Dropout(dropout)
        self.out = nn.Linear(embed_size, vocab_size)

    # ------------------------------------------------------------------------- building blocks

    def encode(self, images: Tensor) -> tuple[Tensor, Tensor, tuple[int, int]]:
        """images (B, C, H, W) -> (features (B, L, D), projected for attention (B, L, A), grid (h, w))."""
        if not isinstance(images, Tensor) or images.dim() != 4:
            raise ValueError(f"images must be a (B, C, H, W) tensor, got "
                             f"{tuple(images.shape) if isinstance(images, Tensor) else type(images).__name__}")
        c = self.encoder.in_channels
        if images.shape[1] != c:
            raise ValueError(f"images have {images.shape[1]} channels, this model takes in_channels={c}")
        k = self.encoder.downsample
        if images.shape[2] < k or images.shape[3] < k:
            raise ValueError(f"images must be at least {k}x{k} pixels for {self.encoder.blocks} encoder blocks, "
                             f"got {images.shape[2]}x{images.shape[3]}")
        features, grid = self.encoder(images)
        return features, self.attention.features(features), grid

    def init_state(self, features: Tensor) -> tuple[Tensor, Tensor]:
        mean = features.mean(1)  # -> (B, D)
        return torch.tanh(self.init_h(mean)), torch.tanh(self.init_c(mean))  # -> 2 x (B, H)

    def step(self, words: Tensor, state: tuple[Tensor, Tensor], features: Tensor, projected: Tensor
             ) -> tuple[Tensor, tuple[Tensor, Tensor], Tensor]:
        """One decoder step: previous words (B,) -> (logits (B, V), new state, alpha (B, L))."""
        h, c = state
        context, alpha = self.attention(projected, features, h)  # -> (B, D), (B, L)
        z = torch.sigmoid(self.f_beta(h)) * context  # gated context -> (B, D)
        e = self.embed(words)  # -> (B, E)
        h, c = self.cell(torch.cat([e, z], dim=1), (h, c))  # -> 2 x (B, H)
        logits = self.out(self.drop(e + self.out_h(h) + self.out_z(z)))  # -> (B, V)
        return logits, (h, c), alpha

    # ---------------------------------------------------------------------------- training

    def forward(self, images: Tensor, tokens: Tensor, lengths: Tensor) -> tuple[Tensor, Tensor]:
        """Teacher forcing.

        Shapes: B batch, C x H x W image, T tokens per caption (``<start>`` words ``<end>``,
        padded), L = h*w encoder locations, V vocabulary. ``lengths`` (B,): valid tokens per
        caption, ``<start>`` and ``<end>`` included (>= 2).
        Returns (logits (B, T-1, V) predicting tokens[:, 1:], alpha (B, T-1, L)); steps at or past
        ``lengths - 1`` are padding (their logits and attention are zeros).
        """
        if not isinstance(tokens, Tensor) or tokens.dim() != 2 or tokens.shape[0] != images.shape[0]:
            raise ValueError(f"tokens must be (B, T) with B = {images.shape[0]} images, got "
                             f"{tuple(tokens.shape) if isinstance(tokens, Tensor) else type(tokens).__name__}")
        lengths = torch.as_tensor(lengths, device=tokens.device)
        if lengths.shape != (tokens.shape[0],) or lengths.min() < 2 or lengths.max() > tokens.shape[1]:
            raise ValueError(f"lengths must be (B,) values in [2, T={tokens.shape[1]}] (<start> and <end> count), got "
                             f"{lengths.tolist()}")
        features, projected, _ = self.encode(images)  # -> (B, L, D), (B, L, A)
        state = self.init_state(features)
        steps = int(lengths.max()) - 1
        logits, alphas = [], []
        for t in range(steps):  # padded rows compute too; their outputs are masked below
            out, state, alpha = self.step(tokens[:, t], state, features, projected)
            logits.append(out)
            alphas.append(alpha)
        valid = (torch.arange(steps, device=tokens.device)[None, :] < (lengths - 1)[:, None])  # -> (B, T-1)
        logits = torch.stack(logits, 1) * valid[..., None]  # -> (B, T-1, V)
        alphas = torch.stack(alphas, 1) * valid[..., None]  # -> (B, T-1, L)
        return logits, alphas

    def loss(self, images: Tensor, tokens: Tensor, lengths: Tensor) -> Tensor:
        """Mean cross-entropy over the valid predicted words + ``alpha_c`` * the doubly stochastic
        term ``mean_(b, i) (1 - sum_t alpha_bti)^2``."""
        logits, alphas = self(images, tokens, lengths)
        steps = logits.shape[1]
        target = tokens[:, 1:steps + 1].masked_fill(
            torch.arange(steps, device=tokens.device)[None, :] >= (torch.as_tensor(lengths, device=tokens.device) - 1)[:, None],
            -100)
        ce = F.cross_entropy(logits.reshape(-1, self.vocab_size), target.reshape(-1), ignore_index=-100)
        if self.alpha_c == 0:
            return ce
        return ce + self.alpha_c * ((1.0 - alphas.sum(1)) ** 2).mean()

    # ---------------------------------------------------------------------------- decoding

    def _log_probs(self, logits: Tensor) -> Tensor:
        """Log-softmax with ``<pad>`` and ``<start>`` never generated."""
        logits = logits.float().clone()
        logits[:, [self.pad_id, self.start_id]] = float("-inf")
        return torch.log_softmax(logits, dim=1)

    @torch.no_grad()
    def greedy(self, images: Tensor, max_len: int = 20) -> Captions:
        """The most probable word at every step, until ``<end>`` or ``max_len`` words."""
        max_len = check_int("max_len", max_len)
        features, projected, (gh, gw) = self.encode(images)
        b = features.shape[0]
        state = self.init_state(features)
        words = torch.full((b,), self.start_id, dtype=torch.long, device=features.device)
        ended = torch.zeros(b, dtype=torch.bool, device=features.device)
        lengths = torch.zeros(b, dtype=torch.long, device=features.device)
        scores = features.new_zeros(b, dtype=torch.float32)
        tokens, alphas = [], []
        for _ in range(max_len):
            logits, state, alpha = self.step(words, state, features, projected)
            logp = self._log_probs(logits)
            best, words = logp.max(1)
            scores = scores + torch.where(ended, 0.0, best)
            is_end = (words == self.end_id) & ~ended
            emits = ~ended & ~is_end
            tokens.append(torch.where(emits, words, self.pad_id))
            alphas.append(alpha * emits[:, None])
            lengths = lengths + emits.long()
            ended = ended | is_end
            if bool(ended.all()):
                break
        tokens_t = torch.stack(tokens, 1)[:, : max(int(lengths.max()), 0)]
        attention = torch.stack(alphas, 1)[:, : tokens_t.shape[1]].reshape(b, tokens_t.shape[1], gh, gw)
        return Captions(tokens_t, lengths, scores, ended, attention)

    @torch.no_grad()
    def beam_search(self, images: Tensor, beam: int = 5, max_len: int = 20) -> Captions:
        """Beam search of width ``beam`` per image (batched), ranking by summed log-probability.

        A beam that emits ``<end>`` keeps its place with a frozen score. At the end each image
        returns its best finished beam, or, when none finished within ``max_len`` words, its best
        unfinished beam (``ended`` False). ``beam=1`` is greedy decoding.
        """
        max_len, beam = check_int("max_len", max_len), check_int("beam", beam)
        features, projected, (gh, gw) = self.encode(images)
        b, n_loc = features.shape[:2]
        k, device = beam, features.device
        features = features.repeat_interleave(k, 0)  # -> (B*K, L, D)
        projected = projected.repeat_interleave(k, 0)
        state = self.init_state(features)
        words = torch.full((b * k,), self.start_id, dtype=torch.long, device=device)
        scores = torch.full((b, k), float("-inf"), device=device)
        scores[:, 0] = 0.0  # all beams start identical: expand only the first
        ended = torch.zeros(b, k, dtype=torch.bool, device=device)
        lengths = torch.zeros(b, k, dtype=torch.long, device=device)
        tokens = torch.zeros(b, k, 0, dtype=torch.long, device=device)
        alphas = torch.zeros(b, k, 0, n_loc, device=device)
        rows = torch.arange(b, device=device)[:, None]
        for _ in range(max_len):
            logits, (h, c), alpha = self.step(words, state, features, projected)
            logp = self._log_probs(logits).view(b, k, -1)  # -> (B, K, V)
            frozen = torch.full_like(logp[0, 0], float("-inf"))
            frozen[self.pad_id] = 0.0  # a finished beam only continues with <pad>, at no cost
            logp = torch.where(ended[..., None], frozen, logp)
            total = (scores[..., None] + logp).view(b, -1)  # -> (B, K*V)
            scores, flat = total.topk(k, dim=1)  # -> (B, K)
            parent, words_bk = flat // self.vocab_size, flat % self.vocab_size
            was_ended = ended.gather(1, parent)
            is_end = (words_bk == self.end_id) & ~was_ended
            emits = ~was_ended & ~is_end
            tokens = torch.cat([tokens[rows, parent], torch.where(emits, words_bk, self.pad_id)[..., None]], 2)
            alpha_bk = alpha.view(b, k, n_loc)[rows, parent] * emits[..., None]
            alphas = torch.cat([alphas[rows, parent], alpha_bk[:, :, None]], 2)
            lengths = lengths.gather(1, parent) + emits.long()
            ended = was_ended | is_end
            pick = (rows * k + parent).view(-1)
            state = (h[pick], c[pick])
            words = words_bk.view(-1)
            if bool(ended.all()):
                break
        # best finished beam per image, else the best unfinished one (never an empty result)
        rank = scores.masked_fill(~ended, float("-inf"))
        best = torch.where(ended.any(1), rank.argmax(1), scores.argmax(1))  # -> (B,)
        idx = torch.arange(b, device=device)
        length = lengths[idx, best]
        width = int(length.max()) if b else 0
        return Captions(tokens[idx, best, :width], length, scores[idx, best], ended[idx, best],
                        alphas[idx, best, :width].reshape(b, width, gh, gw))


@register_model("attention_captioner", arguments=AttentionCaptioner, task="caption")
def attention_captioner(**kwargs) -> AttentionCaptioner:
    """Show, Attend and Tell captioner: CNN grid encoder + soft-attention LSTM decoder."""
    return AttentionCaptioner(**kwargs)
