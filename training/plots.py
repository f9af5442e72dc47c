"""Training-curve figure (matplotlib, headless)."""

from __future__ import annotations

from pathlib import Path

from utils.io import atomic_path


def plot_history(history: list[dict], path: str | Path) -> None:
    """Loss, accuracy and learning rate per epoch, from history.csv rows; written atomically."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    epochs = [row["epoch"] for row in history]
    panels = [
        ("loss", ("loss", "val_loss")),
        ("accuracy", ("accuracy", "val_accuracy")),
        ("learning rate", ("learning_rate",)),
    ]
    fig, axes = plt.subplots(1, len(panels), figsize=(4.2 * len(panels), 3.4))
    for ax, (title, keys) in zip(axes, panels, strict=True):
        for key in keys:
            if all(key in row for row in history):
                ax.plot(epochs, [row[key] for row in history], marker=".", label=key)
        ax.set_title(title)
        ax.set_xlabel("epoch")
        if title == "learning rate":
            ax.set_yscale("log")
        ax.grid(alpha=0.3)
        ax.legend(fontsize=8)
    fig.tight_layout()
    with atomic_path(path) as tmp:
        fig.savefig(tmp, dpi=110)
    plt.close(fig)
