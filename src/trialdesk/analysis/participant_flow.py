"""Participant flow: from the screening log to the end of the primary outcome's time frame, as a table and as a
CONSORT-style diagram (boxes and arrows, SVG and PNG).

Screened: screening entries with a screening decision; entries still pending the investigator's
eligibility sign-off are counted apart (:mod:`trialdesk.trial.screening_log`, the definition the DSMB
report uses too). Completed (the box names the registered time frame, "Completed 6 months"): status
``completed``, or the end-of-study visit (the schedule's visit at or after the primary outcome's time frame,
M6 on day 183) done. Withdrawn: withdrawn or off study for any reason but completion, counted by reason in
the SDTM disposition terms.

By group: where the protocol has cohorts or dose levels (:mod:`trialdesk.trial.groups`), the infused participants
of each group are counted too (started, completed, withdrawn, ongoing): the table adds a ``group`` row per group
and figure, the diagram a box of them. A protocol without groups keeps its one column, unchanged.
"""

from __future__ import annotations

import csv
import io
from collections import Counter
from dataclasses import dataclass, field
from pathlib import Path

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt
from matplotlib.axes import Axes

from trialdesk.analysis.data_cut import check_enrolled
from trialdesk.analysis.disposition import dsdecod, has_left
from trialdesk.protocol.model import Protocol
from trialdesk.trial import groups
from trialdesk.trial.records import TrialData
from trialdesk.trial.screening_log import tally


@dataclass(frozen=True)
class GroupFlow:
    """One group's infused participants: how many started, completed, withdrew, are still on study."""

    code: str
    title: str
    started: int
    completed: int
    withdrawn: int
    ongoing: int


@dataclass(frozen=True)
class ParticipantFlow:
    screened: int
    screen_failed: int
    failed_by_criterion: dict[str, int]
    withdrew_before_enrolment: int
    pending: int  # awaiting eligibility sign-off: not counted in ``screened``
    consented: int
    enrolled: int
    infused: dict[int, int]  # infusion number -> participants who received it
    completed: int
    withdrawn: int
    withdrawn_by_reason: dict[str, int]
    ongoing: int
    note: str | None = None
    completed_ids: list[str] = field(default_factory=list)
    eligible_not_enrolled: int = 0  # screened, signed eligible, not (yet) enrolled
    completed_label: str = "Completed follow-up"  # 'Completed 6 months': the primary outcome's time frame, as registered
    by_group: tuple[GroupFlow, ...] = ()  # by cohort or dose level; empty for a protocol without groups

    def rows(self) -> list[tuple[str, str, int]]:
        """(stage, detail, participants) in the order of the flow."""
        out = [("screened", "", self.screened), ("screen_failed", "", self.screen_failed)]
        out += [("screen_failed", f"criterion {c}", n) for c, n in self.failed_by_criterion.items()]
        out += [("withdrew_before_enrolment", "", self.withdrew_before_enrolment),
                ("eligible_not_enrolled", "", self.eligible_not_enrolled),
                ("screening_pending", "awaiting eligibility sign-off; not counted as screened", self.pending),
                ("consented", "", self.consented), ("enrolled", "", self.enrolled)]
        out += [("infused", f"infusion {k}", n) for k, n in self.infused.items()]
        out += [("completed", self.completed_label.removeprefix("Completed "), self.completed), ("withdrawn", "", self.withdrawn)]
        out += [("withdrawn", reason, n) for reason, n in self.withdrawn_by_reason.items()]
        out.append(("ongoing", "", self.ongoing))
        for g in self.by_group:
            out += [("group", f"{g.title}: {what}", n) for what, n in
                    (("started", g.started), ("completed", g.completed), ("withdrawn", g.withdrawn), ("ongoing", g.ongoing))]
        return out

    def to_csv(self) -> str:
        buf = io.StringIO()
        w = csv.writer(buf, lineterminator="\n")
        w.writerow(["stage", "detail", "participants"])
        w.writerows(self.rows())
        return buf.getvalue()

    def diagram(self, directory: Path, stem: str = "participant_flow") -> list[Path]:
        """The CONSORT-style diagram as ``<stem>.svg`` and ``<stem>.png``."""
        directory.mkdir(parents=True, exist_ok=True)
        main = [f"Screened\nn = {self.screened}", f"Consented and enrolled\nn = {self.enrolled}"]
        main += [f"Received infusion {k}\nn = {n}" for k, n in self.infused.items()]
        main.append(f"{self.completed_label}\nn = {self.completed}")
        failed = "\n".join([f"Screen failed n = {self.screen_failed}"] + [f"  {c}: {n}" for c, n in self.failed_by_criterion.items()]
                           + [f"Withdrew before enrolment n = {self.withdrew_before_enrolment}"]
                           + ([f"Eligible, not yet enrolled n = {self.eligible_not_enrolled}"] if self.eligible_not_enrolled else []))
        left = "\n".join([f"Withdrawn n = {self.withdrawn}"] + [f"  {r.lower()}: {n}" for r, n in self.withdrawn_by_reason.items()]
                         + [f"Ongoing n = {self.ongoing}"])
        height = 1.6 * len(main) + 0.6
        fig, ax = plt.subplots(figsize=(7.5, height))
        ax.set_xlim(0, 10)
        ax.set_ylim(0, height)
        ax.axis("off")
        ys = [height - 0.8 - 1.6 * i for i in range(len(main))]
        for i, (y, text) in enumerate(zip(ys, main, strict=True)):
            _box(ax, 3.0, y, text)
            if i:
                ax.annotate("", xy=(3.0, y + 0.4), xytext=(3.0, ys[i - 1] - 0.4), arrowprops={"arrowstyle": "->"})
        _box(ax, 7.6, (ys[0] + ys[1]) / 2, failed, small=True)
        ax.annotate("", xy=(5.6, (ys[0] + ys[1]) / 2), xytext=(3.0, (ys[0] + ys[1]) / 2), arrowprops={"arrowstyle": "->"})
        _box(ax, 7.6, (ys[-1] + ys[-2]) / 2, left, small=True)
        ax.annotate("", xy=(5.6, (ys[-1] + ys[-2]) / 2), xytext=(3.0, (ys[-1] + ys[-2]) / 2), arrowprops={"arrowstyle": "->"})
        notes = ([f"Not counted as screened: {self.pending} awaiting eligibility sign-off."] if self.pending else [])
        notes += [f"{g.title}: started {g.started}, completed {g.completed}, withdrawn {g.withdrawn}, ongoing {g.ongoing}"
                  for g in self.by_group]
        notes += [self.note] if self.note else []
        if notes:
            fig.text(0.01, 0.01, "\n".join(notes), fontsize=7)
        paths = [directory / f"{stem}.svg", directory / f"{stem}.png"]
        with plt.rc_context({"svg.fonttype": "none"}):  # SVG text stays text: searchable and readable by screen readers
            for path in paths:
                fig.savefig(path, dpi=150 if path.suffix == ".png" else "figure", metadata={"Date": None} if path.suffix == ".svg" else {})
        plt.close(fig)
        return paths


def _box(ax: Axes, x: float, y: float, text: str, small: bool = False) -> None:
    ax.text(x, y, text, ha="center", va="center", fontsize=8 if small else 9,
            bbox={"boxstyle": "square,pad=0.5", "facecolor": "white", "edgecolor": "black"})


def participant_flow(data: TrialData, protocol: Protocol, allow_empty: bool = False) -> ParticipantFlow:
    note = check_enrolled(data, "participant flow", allow_empty)
    log = tally(data.screening)
    failed = Counter(c for s in data.screening if s.outcome == "screen_failed" for c in s.failed_criteria)
    order = {c.id: i for i, c in enumerate(protocol.eligibility.criteria)}
    by_criterion = {c: failed[c] for c in sorted(failed, key=lambda c: (order.get(c, len(order)), c))}

    window = protocol.outcomes.primary[0].time_frame_days or protocol.safety.ae_follow_up_days
    end_codes = {v.code for v in protocol.schedule.visits if v.day >= window}
    finished = {v.subject_id for v in data.visits if v.status == "done" and v.code in end_codes}
    completed = sorted(p.subject_id for p in data.participants if p.status == "completed" or (p.subject_id in finished and not has_left(p)))
    left = [p for p in data.participants if has_left(p) and p.subject_id not in completed]
    reasons = Counter(dsdecod(p) for p in left)
    infused = Counter(i.number for i in data.infusions)
    by_group: list[GroupFlow] = []
    if groups.kind(protocol) != "arm":
        started = {i.subject_id for i in data.infusions}
        left_ids = {p.subject_id for p in left}
        for g, members in groups.members(protocol, data, started):
            done, gone = len(members & set(completed)), len(members & left_ids)
            by_group.append(GroupFlow(g.code, g.title, len(members), done, gone, len(members) - done - gone))
    return ParticipantFlow(
        screened=log.screened,
        screen_failed=log.screen_failed,
        failed_by_criterion=by_criterion,
        withdrew_before_enrolment=log.withdrew_before_enrolment,
        pending=log.pending_signoff,
        consented=len(data.participants),
        enrolled=len(data.participants),
        infused={k: infused[k] for k in sorted(infused)},
        completed=len(completed),
        withdrawn=len(left),
        withdrawn_by_reason=dict(sorted(reasons.items())),
        ongoing=len(data.participants) - len(completed) - len(left),
        note=note,
        completed_ids=completed,
        eligible_not_enrolled=log.eligible_not_enrolled,
        completed_label=f"Completed {protocol.outcomes.primary[0].time_frame}",
        by_group=tuple(by_group),
    )
