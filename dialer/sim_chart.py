"""The benchmark chart (PNG): occupancy and abandon rate per cell and policy, and the step runs.

Needs matplotlib (``pip install -e '.[sim]'``); drawn with the Agg backend, no display.
"""

from __future__ import annotations

from pathlib import Path

from dialer.simulator import TIMELINE_BIN_S

COLORS = {"progressive": "#8c8c8c", "power": "#d9a441", "vicidial": "#c0504d",
          "predictive": "#2e75b6", "oracle": "#70ad47"}


def write_chart(rows: list[dict], path: Path, hours: float = 8.0) -> Path:
    """Draw the summary rows (from ``sim_grid.summarize``) into ``path``."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    base = [r for r in rows if r["step"] == 1.0]
    cells = sorted({(r["agents"], r["answer_p"]) for r in base})
    policies = [p for p in COLORS if any(r["policy"] == p for r in base)]
    by = {(r["agents"], r["answer_p"], r["policy"]): r for r in base}
    fig, axes = plt.subplots(3, 1, figsize=(12, 13))
    width = 0.8 / max(len(policies), 1)
    xs = range(len(cells))
    for k, pol in enumerate(policies):
        occ = [100 * by[(n, p, pol)]["occupancy"] if (n, p, pol) in by else 0 for n, p in cells]
        ab = [100 * by[(n, p, pol)]["abandon_30d"] if (n, p, pol) in by else 0 for n, p in cells]
        ab_max = [100 * by[(n, p, pol)]["abandon_30d_max"] if (n, p, pol) in by else 0 for n, p in cells]
        pos = [x + (k - (len(policies) - 1) / 2) * width for x in xs]
        axes[0].bar(pos, occ, width, label=pol, color=COLORS[pol])
        axes[1].bar(pos, ab, width, label=pol, color=COLORS[pol])
        axes[1].scatter(pos, ab_max, marker="_", color="black", s=40, zorder=3)
    labels = [f"{n} agents\np={p:.1f}" for n, p in cells]
    for ax in axes[:2]:
        ax.set_xticks(list(xs))
        ax.set_xticklabels(labels, fontsize=8)
        ax.grid(axis="y", alpha=0.3)
    axes[0].set_ylabel("occupancy % (talk + wrap-up / logged in)")
    axes[0].set_ylim(0, 105)
    for level, style in ((95, "--"), (85, ":")):
        axes[0].axhline(level, color="black", linestyle=style, linewidth=0.8)
    axes[0].legend(ncol=len(policies), fontsize=8, loc="lower right")
    axes[0].set_title(f"Pacing policies, {hours:g} h shift, mean over seeds")
    axes[1].set_ylabel("abandoned % of live answers (bar: mean, tick: worst seed)")
    axes[1].axhline(3.0, color="red", linestyle="--", linewidth=0.8)
    axes[1].set_yscale("symlog", linthresh=1.0)
    _steps(axes[2], rows)
    fig.tight_layout()
    path.parent.mkdir(parents=True, exist_ok=True)
    fig.savefig(path, dpi=110)
    plt.close(fig)
    return path


def _steps(ax, rows: list[dict]) -> None:
    steps = [r for r in rows if r["step"] != 1.0 and r["policy"] in ("predictive", "vicidial", "progressive")]
    if not steps:
        ax.set_visible(False)
        return
    biggest = max(r["agents"] for r in steps)
    for r in steps:
        if r["agents"] != biggest:
            continue
        hours = [(k + 0.5) * TIMELINE_BIN_S / 3600 for k in range(len(r["occupancy_timeline"]))]
        style = "-" if r["step"] > 1 else "--"
        ax.plot(hours, [100 * v for v in r["occupancy_timeline"]], style, color=COLORS[r["policy"]],
                label=f"{r['policy']} p {r['answer_p']:.1f} x{r['step']:g} at mid-shift "
                      f"(abandon {100 * r['abandon_30d']:.1f}%)")
    ax.set_xlabel("hour of the shift")
    ax.set_ylabel(f"occupancy % per {TIMELINE_BIN_S / 60:g} min")
    ax.set_title(f"Answer probability steps mid-shift, {biggest} agents")
    ax.grid(alpha=0.3)
    ax.legend(fontsize=8)
