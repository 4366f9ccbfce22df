"""Shared test helpers: torch twins, gradients, and an autograd reference loop."""

from __future__ import annotations

import torch
from torch import nn

from lstmkit.nn import LSTM, lstm_cell_step, reverse_padded

TOL = 1e-10


def twins(*args, variants=None, **kwargs):
    """An lstmkit LSTM and a torch.nn.LSTM with the same (float64) weights."""
    ours = LSTM(*args, dtype=torch.float64, **kwargs, **(variants or {}))
    theirs = nn.LSTM(*args, dtype=torch.float64, **{k: v for k, v in kwargs.items() if k != "implementation"})
    theirs.load_state_dict({k: v for k, v in ours.state_dict().items() if k in theirs.state_dict()})
    return ours, theirs


def grads_of(module, loss, inputs=()):
    """d loss / d (named parameters of module, then inputs)."""
    names = [n for n, _ in module.named_parameters()]
    params = [p for _, p in module.named_parameters()]
    gs = torch.autograd.grad(loss, params + list(inputs), allow_unused=True)
    return dict(zip(names + [f"input{i}" for i in range(len(inputs))], gs))


def loss_of(out, state):
    """A loss touching every output and state element with distinct weights."""
    h, c = state
    w = torch.linspace(-1, 1, out.numel(), dtype=out.dtype).view_as(out)
    return (out * w).sum() + (h**2).sum() + (0.5 * c).sum() + (c**3).sum() * 0.1


def assert_close(a, b, tol=TOL, what=""):
    assert a.shape == b.shape, f"{what}: shape {tuple(a.shape)} != {tuple(b.shape)}"
    err = (a - b).abs().max().item() if a.numel() else 0.0
    assert err <= tol, f"{what}: max abs error {err:.3e} > {tol:.0e}"


def reference_forward(module: LSTM, x, hx=None, masks=None):
    """Autograd loop over lstm_cell_step: time-major x (T, B, D), no padding.

    masks: list, one SequenceMasks per (layer, direction) in call order, or None.
    """
    T, B, _ = x.shape
    K, L = module.num_directions, module.num_layers
    R = module.proj_size or module.hidden_size
    if hx is None:
        hx = (x.new_zeros(L * K, B, R), x.new_zeros(L * K, B, module.hidden_size))
    h_n, c_n = [], []
    for layer in range(L):
        outs = []
        for d in range(K):
            idx = layer * K + d
            sfx = module._suffix(layer, d)
            m = masks[idx] if masks else None
            vp = {}
            if module.variant.peephole:
                vp["peephole"] = getattr(module, f"peephole{sfx}")
            if module.variant.layer_norm:
                for n in ("ln_ih", "ln_hh", "ln_c"):
                    vp[n] = (getattr(module, f"{n}_weight{sfx}"), getattr(module, f"{n}_bias{sfx}"))
            h, c = hx[0][idx], hx[1][idx]
            seq = x.flip(0) if d else x
            ys = []
            for t in range(T):
                xt = seq[t] if m is None or m.input is None else seq[t] * m.input
                h, c = lstm_cell_step(
                    xt, h, c, getattr(module, f"weight_ih{sfx}"), getattr(module, f"weight_hh{sfx}"),
                    getattr(module, f"bias_ih{sfx}", None), getattr(module, f"bias_hh{sfx}", None),
                    weight_hr=getattr(module, f"weight_hr{sfx}", None),
                    update_c=None if m is None or m.update_c is None else m.update_c[t],
                    update_h=None if m is None or m.update_h is None else m.update_h[t],
                    recurrent_mask=None if m is None else m.recurrent, **vp,
                )
                ys.append(h)
            y = torch.stack(ys)
            outs.append(y.flip(0) if d else y)
            h_n.append(h)
            c_n.append(c)
        x = torch.cat(outs, -1)
    return x, (torch.stack(h_n), torch.stack(c_n))


def record_masks(module: LSTM, monkeypatch):
    """Record the masks the module draws, in call order."""
    seen = []
    original = module.sample_masks

    def recording(*args, **kwargs):
        m = original(*args, **kwargs)
        seen.append(m)
        return m

    monkeypatch.setattr(module, "sample_masks", recording)
    return seen


def run_alone(module, x, lengths, batch_first=False):
    """Run each sequence of a padded batch alone (unpadded); returns outputs list and stacked states."""
    outs, hs, cs = [], [], []
    for b, n in enumerate(lengths):
        xb = x[b : b + 1, :n] if batch_first else x[:n, b : b + 1]
        out, (h, c) = module(xb)
        outs.append(out)
        hs.append(h)
        cs.append(c)
    return outs, torch.cat(hs, 1), torch.cat(cs, 1)


__all__ = ["TOL", "twins", "grads_of", "loss_of", "assert_close", "reference_forward", "record_masks",
           "run_alone", "reverse_padded"]
