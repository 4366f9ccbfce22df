"""The explanation's PNGs (matplotlib, Agg): attributions over the input, gates and cell over time,
unit saturation, deletion curves."""

from __future__ import annotations

from pathlib import Path

import numpy as np

__all__ = ["plot_attributions", "plot_gates", "plot_saturation", "plot_deletion"]


def _plt():
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    return plt


def MaxNLocator(**kwargs):  # noqa: N802 (matplotlib's class, imported when a plot is drawn)
    from matplotlib.ticker import MaxNLocator as locator

    return locator(**kwargs)


def _limit(a: np.ndarray) -> float:
    m = float(np.nanmax(np.abs(a))) if a.size else 1.0
    return m if m > 0 else 1.0


def plot_attributions(path: Path, x: np.ndarray, attr: np.ndarray, features: list[str], title: str,
                      attention: np.ndarray | None = None) -> None:
    """x, attr (T, D): the input (a line per feature for D <= 3, else a heatmap) on a background
    coloured by each step's attribution; the (feature x step) attribution map; per-step bars (with the
    attention weights where the model pools by attention)."""
    plt = _plt()
    T, D = x.shape
    per_step = attr.sum(1)
    lim = _limit(per_step)
    fig, axes = plt.subplots(3, 1, figsize=(max(6.0, min(14.0, 0.25 * T + 4)), 7.5), sharex=True,
                             gridspec_kw={"height_ratios": [2, 1.4, 1.2]})
    ax = axes[0]
    steps = np.arange(T)
    if D <= 3:
        ax.imshow(per_step[None], aspect="auto", cmap="RdBu_r", vmin=-lim, vmax=lim, alpha=0.45,
                  extent=(-0.5, T - 0.5, float(x.min()) - 0.1, float(x.max()) + 0.1), origin="lower")
        for d in range(D):
            ax.plot(steps, x[:, d], lw=1.5, marker="o", ms=2.5, label=features[d])
        ax.set_ylim(float(x.min()) - 0.1, float(x.max()) + 0.1)
        ax.legend(fontsize=7, loc="upper right")
        ax.set_ylabel("input (normalised)")
    else:
        ax.imshow(x.T, aspect="auto", cmap="viridis", interpolation="nearest")
        ax.set_yticks(range(D))
        ax.set_yticklabels(features, fontsize=6)
        ax.set_ylabel("input (normalised)")
    ax.set_title(title, fontsize=9)
    alim = _limit(attr)
    im = axes[1].imshow(attr.T, aspect="auto", cmap="RdBu_r", vmin=-alim, vmax=alim, interpolation="nearest")
    axes[1].set_yticks(range(D))
    axes[1].set_yticklabels(features if D <= 16 else [features[i] if i % max(1, D // 8) == 0 else "" for i in range(D)],
                            fontsize=6)
    axes[1].set_ylabel("IG attribution")
    fig.colorbar(im, ax=axes[1], fraction=0.02, pad=0.01)
    colors = np.where(per_step >= 0, "tab:red", "tab:blue")
    axes[2].bar(steps, per_step, color=colors, width=0.8)
    axes[2].axhline(0, color="k", lw=0.5)
    axes[2].set_ylabel("per step")
    axes[2].set_xlabel("step")
    axes[2].xaxis.set_major_locator(MaxNLocator(integer=True))
    if attention is not None:
        twin = axes[2].twinx()
        twin.plot(steps, attention, color="k", lw=1, label="attention weight")
        twin.set_ylabel("attention", fontsize=8)
        twin.legend(fontsize=7, loc="upper right")
    fig.tight_layout()
    fig.savefig(path, dpi=110)
    plt.close(fig)


def plot_gates(path: Path, panels: list[tuple[str, dict]], title: str) -> None:
    """``panels``: (label, {"input", "forget", "output", "cell"} -> (T, H) arrays) per layer/direction,
    drawn as columns of units x steps heatmaps (gates in [0, 1], the cell centred at 0)."""
    plt = _plt()
    rows = ("input", "forget", "output", "cell")
    cols = len(panels)
    T = panels[0][1]["forget"].shape[0]
    fig, axes = plt.subplots(len(rows), cols, figsize=(max(5.0, min(8.0, 0.2 * T + 3)) * cols, 9), squeeze=False)
    for j, (label, data) in enumerate(panels):
        for i, name in enumerate(rows):
            a = data[name].T  # -> (H, T)
            ax = axes[i, j]
            if name == "cell":
                lim = _limit(a)
                im = ax.imshow(a, aspect="auto", cmap="RdBu_r", vmin=-lim, vmax=lim, interpolation="nearest")
            else:
                im = ax.imshow(a, aspect="auto", cmap="magma", vmin=0, vmax=1, interpolation="nearest")
            fig.colorbar(im, ax=ax, fraction=0.03, pad=0.01)
            ax.set_ylabel(f"{name}\nunit", fontsize=8)
            if i == 0:
                ax.set_title(label, fontsize=9)
            if i == len(rows) - 1:
                ax.set_xlabel("step")
            ax.xaxis.set_major_locator(MaxNLocator(integer=True))
    fig.suptitle(title, fontsize=10)
    fig.tight_layout()
    fig.savefig(path, dpi=100)
    plt.close(fig)


def plot_saturation(path: Path, summaries: list[tuple[str, dict]]) -> None:
    """Karpathy et al.'s saturation plot (per unit: fraction left- vs right-saturated, for each gate)
    and a histogram of forget-gate memory horizons, one row per layer/direction."""
    plt = _plt()
    fig, axes = plt.subplots(len(summaries), 4, figsize=(14, 3.4 * len(summaries)), squeeze=False)
    for r, (label, s) in enumerate(summaries):
        for c, gate in enumerate(("input", "forget", "output")):
            ax = axes[r, c]
            sat = s["saturation"][gate]
            ax.scatter(sat["left"], sat["right"], s=10, alpha=0.6)
            ax.plot([0, 1], [1, 0], color="gray", lw=0.5, ls="--")
            ax.set_xlim(-0.02, 1.02)
            ax.set_ylim(-0.02, 1.02)
            ax.set_xlabel("fraction left-saturated (< 0.1)", fontsize=8)
            ax.set_ylabel("fraction right-saturated (> 0.9)", fontsize=8)
            ax.set_title(f"{label}: {gate} gate", fontsize=9)
        ax = axes[r, 3]
        h = np.asarray(s["horizon"])
        bins = np.logspace(0, max(1.0, np.log10(max(h.max(), 10.0))), 25)
        ax.hist(h, bins=bins)
        ax.set_xscale("log")
        ax.set_xlabel("memory horizon 1/(1 - mean f), steps", fontsize=8)
        ax.set_ylabel("units")
        ax.set_title(f"{label}: forget-gate horizon", fontsize=9)
    fig.tight_layout()
    fig.savefig(path, dpi=100)
    plt.close(fig)


def plot_deletion(path: Path, check: dict, what: str) -> None:
    plt = _plt()
    fig, ax = plt.subplots(figsize=(5.5, 3.8))
    k = np.asarray(check["k_fraction"])
    ax.plot(k, check["top"], color="tab:red", label=f"top-attributed first (area {check['auc_top']:.3f})")
    mean, std = np.asarray(check["random_mean"]), np.asarray(check["random_std"])
    ax.plot(k, mean, color="tab:gray", label=f"random order, mean of {check['draws']} (area {check['auc_random']:.3f})")
    ax.fill_between(k, mean - std, mean + std, color="tab:gray", alpha=0.25)
    ax.set_xlabel("fraction of steps deleted (set to the baseline)")
    ax.set_ylabel(what, fontsize=8)
    ax.set_title("deletion check: " + ("passed" if check["passed"] else "FAILED"), fontsize=10)
    ax.legend(fontsize=7)
    fig.tight_layout()
    fig.savefig(path, dpi=110)
    plt.close(fig)
