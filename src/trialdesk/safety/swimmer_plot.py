"""The swimmer plot of the DSMB report: one lane per participant, days from the first infusion.

Each lane runs from day 0 to the participant's last day observed (the data cut-off, the off-study
date or the end of follow-up, whichever is first). Infusions are black triangles; AEs are dots at
their onset day, coloured by CTCAE grade, with serious AEs ringed in black. Only subject ids and study
days appear: no calendar dates.
"""

from __future__ import annotations

import io
from collections.abc import Mapping

from trialdesk.safety.attribution import Attribution
from trialdesk.trial.records import TrialData

__all__ = ["GRADE_COLOURS", "swimmer_plot"]

#: CTCAE grade 1..5: green, yellow, orange, red, black-purple (colour-blind-distinguishable by lightness too)
GRADE_COLOURS = {1: "#4daf4a", 2: "#e6c300", 3: "#ff7f00", 4: "#e41a1c", 5: "#4b0055"}


def swimmer_plot(data: TrialData, attributions: Mapping[str, Attribution], follow_up_days: int, fmt: str = "svg") -> bytes:
    """The plot as SVG (``fmt="svg"``) or PNG (``fmt="png"``) bytes."""
    import matplotlib

    matplotlib.use("Agg")
    from matplotlib import pyplot as plt
    from matplotlib.lines import Line2D

    subjects = sorted(p.subject_id for p in data.participants)
    height = max(2.5, 0.45 * len(subjects) + 1.5)
    fig, ax = plt.subplots(figsize=(10, height), constrained_layout=True)
    # a fixed salt: the same data draws the same file (ids in the SVG do not change run to run)
    with matplotlib.rc_context({"svg.fonttype": "none", "svg.hashsalt": "trialdesk"}):
        for lane, subject in enumerate(reversed(subjects)):
            participant = next(p for p in data.participants if p.subject_id == subject)
            infusions = data.infusions_of(subject)
            if not infusions:
                ax.text(1, lane, "not infused", va="center", fontsize=8, color="grey")
                continue
            first = min(i.date for i in infusions)
            last = min(d for d in (data.cutoff, participant.off_study_on) if d is not None)
            end = min((last - first).days, follow_up_days)
            ax.barh(lane, end, left=0, height=0.35, color="#d9d9d9", edgecolor="none")
            ax.scatter([(i.date - first).days for i in infusions], [lane] * len(infusions), marker="v", color="black", s=40, zorder=3)
            for ae in (a for a in data.adverse_events if a.subject_id == subject):
                day = attributions[ae.id].study_day
                if day is None:
                    continue
                ax.scatter([day], [lane + 0.22], s=55 if ae.serious else 35, color=GRADE_COLOURS[ae.grade],
                           edgecolors="black" if ae.serious else "none", linewidths=1.2, zorder=4)
        ax.set_yticks(range(len(subjects)), list(reversed(subjects)))
        ax.set_xlim(-7, follow_up_days + 7)
        ax.set_ylim(-0.8, len(subjects) - 0.2)
        ax.set_xlabel("days from first infusion")
        ax.grid(axis="x", alpha=0.3)
        handles = [Line2D([], [], marker="v", color="black", linestyle="none", label="infusion")]
        handles += [Line2D([], [], marker="o", color=c, linestyle="none", label=f"grade {g}") for g, c in GRADE_COLOURS.items()]
        handles.append(Line2D([], [], marker="o", color="white", markeredgecolor="black", linestyle="none", label="serious"))
        ax.legend(handles=handles, loc="upper center", bbox_to_anchor=(0.5, -0.18 if len(subjects) > 4 else -0.3),
                  ncol=len(handles), fontsize=8, frameon=False)
        buffer = io.BytesIO()
        fig.savefig(buffer, format=fmt, dpi=150, metadata={"Date": None} if fmt == "svg" else None)
    plt.close(fig)
    return buffer.getvalue()
