"""Screenshots of the trial desk for the README, taken from a running demo.

    trialdesk demo                                   # in one terminal (serves on 127.0.0.1:8000)
    .venv/bin/python scripts/screenshots.py          # in another; writes docs/screenshots/*.png

Playwright drives Debian's chromium (/usr/bin/chromium), logs in with the demo accounts
(trialdesk.edc.demo_trial.ACCOUNTS) and saves a viewport-sized PNG of each main page, plus the
demo's primary-outcome plot scaled down.
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

from playwright.sync_api import Page, sync_playwright

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT / "src"))

from trialdesk.edc.demo_trial import PASSWORD  # noqa: E402

CHROMIUM = "/usr/bin/chromium"
ARGS = ["--headless", "--no-sandbox", "--disable-gpu", "--disable-background-networking", "--disable-component-update", "--disable-sync",
        "--no-first-run"]

#: (file name, user, path) — what each role looks at first
PAGES = [
    ("dashboard-coordinator", "coordinator", "/"),
    ("screening-log", "coordinator", "/screening/"),
    ("participant", "coordinator", "/participants/006/"),
    ("visit-forms", "coordinator", "/participants/003/visits/D7/"),
    ("adverse-events", "coordinator", "/adverse-events/"),
    ("visit-calendar", "coordinator", "/calendar/"),
    ("participant-timeline", "coordinator", "/participants/003/timeline/"),
    ("eligibility-signoff", "pi", "/screening/S-0016/sign/"),
    ("fhir-referral-worksheet", "pi", "/screening/S-0001/"),
    ("casebook-pi", "pi", "/participants/003/casebook/"),
    ("safety-dashboard-dsmb", "dsmb", "/safety/"),
    ("dsmb-report", "dsmb", "/safety/dsmb/"),
    ("queries-monitor", "monitor", "/queries/"),
    ("audit-trail", "monitor", "/audit/"),
    ("exports-data-manager", "datamanager", "/exports/"),
]


def _login(page: Page, base: str, username: str) -> None:
    page.context.clear_cookies()
    page.goto(f"{base}/login/")
    page.fill("#id_username", username)
    page.fill("#id_password", PASSWORD)
    page.click("button[type=submit]")
    page.wait_for_url(f"{base}/")


def _save(page: Page, path: Path) -> None:
    """A 256-colour PNG: a third of the size, and the pages are flat colours anyway."""
    from PIL import Image

    page.screenshot(path=str(path))
    with Image.open(path) as image:
        small = image.convert("RGB").quantize(colors=256, method=Image.Quantize.MEDIANCUT)
    small.save(path, optimize=True)
    print(f"wrote {path} ({path.stat().st_size // 1024} KB)")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--base", default="http://127.0.0.1:8000")
    parser.add_argument("--demo", type=Path, default=ROOT / "trialdesk-demo", help="the demo's --out folder (for the plot)")
    parser.add_argument("--out", type=Path, default=ROOT / "docs" / "screenshots")
    a = parser.parse_args()
    a.out.mkdir(parents=True, exist_ok=True)
    with sync_playwright() as pw:
        browser = pw.chromium.launch(executable_path=CHROMIUM, args=ARGS)
        page = browser.new_page(viewport={"width": 1360, "height": 800})
        who = None
        for name, user, path in PAGES:
            if user != who:
                _login(page, a.base, user)
                who = user
            page.goto(f"{a.base}{path}")
            _save(page, a.out / f"{name}.png")
        plot = a.demo / "reports" / "primary_outcome" / "primary_outcome.png"
        if plot.exists():
            page.set_viewport_size({"width": 900, "height": 560})
            page.goto(plot.resolve().as_uri())
            _save(page, a.out / "primary-outcome-plot.png")
        browser.close()


if __name__ == "__main__":
    main()
