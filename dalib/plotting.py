"""Plotting conventions shared by every chapter (needs matplotlib).

One module owns the look of the book: the truth is black, observations are red dots,
estimates are blue with a shaded band of plus or minus one spread, ensembles are thin grey
lines.  Figures have an opaque white background so they stay readable in dark mode.
"""

from __future__ import annotations

from .backend import to_numpy

__all__ = [
    "COLORS",
    "use_book_style",
    "plot_truth",
    "plot_observations",
    "plot_estimate",
    "plot_ensemble",
    "hovmoller",
]

COLORS = {
    "truth": "black",
    "obs": "tab:red",
    "estimate": "tab:blue",
    "forecast": "tab:orange",
    "ensemble": "0.6",
}


def use_book_style():
    """Set matplotlib defaults used by the book (size, fonts, opaque background)."""
    import matplotlib as mpl

    mpl.rcParams.update(
        {
            "figure.figsize": (8, 3.2),
            "figure.dpi": 100,
            "savefig.dpi": 100,
            "figure.facecolor": "white",
            "savefig.facecolor": "white",
            "axes.facecolor": "white",
            "axes.grid": True,
            "grid.alpha": 0.3,
            "axes.spines.top": False,
            "axes.spines.right": False,
            "font.size": 10,
            "legend.frameon": False,
            "figure.constrained_layout.use": True,
            "svg.hashsalt": "dalib",
        }
    )


def _ax(ax):
    if ax is None:
        import matplotlib.pyplot as plt

        ax = plt.gca()
    return ax


def plot_truth(t, x, ax=None, label="truth", **kwargs):
    """Plot a true trajectory (one component) against time."""
    ax = _ax(ax)
    kwargs = {"color": COLORS["truth"], "lw": 1.2, **kwargs}
    return ax.plot(to_numpy(t), to_numpy(x), label=label, **kwargs)


def plot_observations(t, y, ax=None, label="observations", **kwargs):
    """Plot observations as dots against time."""
    ax = _ax(ax)
    kwargs = {"color": COLORS["obs"], "marker": ".", "ls": "none", "ms": 4, **kwargs}
    return ax.plot(to_numpy(t), to_numpy(y), label=label, **kwargs)


def plot_estimate(t, mean, spread=None, ax=None, label="estimate", color=None, **kwargs):
    """Plot an estimate with an optional band of plus or minus one ``spread``."""
    ax = _ax(ax)
    color = color or COLORS["estimate"]
    t, mean = to_numpy(t), to_numpy(mean)
    lines = ax.plot(t, mean, color=color, label=label, lw=1.2, **kwargs)
    if spread is not None:
        s = to_numpy(spread)
        ax.fill_between(t, mean - s, mean + s, color=color, alpha=0.2, lw=0)
    return lines


def plot_ensemble(t, members, ax=None, label="ensemble", **kwargs):
    """Plot ensemble members (array ``(len(t), N)``) as thin lines, labelled once."""
    ax = _ax(ax)
    members = to_numpy(members)
    kwargs = {"color": COLORS["ensemble"], "lw": 0.6, "alpha": 0.7, **kwargs}
    lines = ax.plot(to_numpy(t), members, **kwargs)
    if lines:
        lines[0].set_label(label)
    return lines


def hovmoller(t, x, ax=None, cmap="RdBu_r", vmax=None, colorbar=True, label="$x_i$"):
    """Hovmoller diagram of a field ``x`` of shape ``(len(t), d)``: time down, space across."""
    import numpy as np

    ax = _ax(ax)
    t, x = to_numpy(t), to_numpy(x)
    vmax = vmax if vmax is not None else float(np.max(np.abs(x)))
    mesh = ax.pcolormesh(
        np.arange(x.shape[1] + 1) - 0.5,
        np.concatenate([t, [t[-1] + (t[-1] - t[-2])]]) if len(t) > 1 else np.array([0, 1]),
        x,
        cmap=cmap,
        vmin=-vmax,
        vmax=vmax,
        shading="flat",
        rasterized=True,
    )
    ax.set_xlabel("component $i$")
    ax.set_ylabel("time")
    ax.invert_yaxis()
    ax.grid(False)
    if colorbar:
        ax.figure.colorbar(mesh, ax=ax, label=label)
    return mesh
