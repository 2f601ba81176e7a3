"""The one error a conduct rule raises: which field was wrong and what to do about it."""

from __future__ import annotations


class ConductError(ValueError):
    """A refusal by a trial-conduct rule (enrolment, dosing, schedule, consent).

    ``field`` names the form field (or record attribute) at fault so a screen can show the
    message next to it; ``message`` says what was wrong and how to put it right.
    """

    def __init__(self, field: str, message: str) -> None:
        super().__init__(f"{field}: {message}")
        self.field = field
        self.message = message


class ConductErrors(ConductError):
    """Every refusal of one form at once, each naming its field (``problems``), so a screen shows them all together."""

    def __init__(self, problems: list[tuple[str, str]]) -> None:
        super().__init__(*problems[0])
        self.problems = problems
