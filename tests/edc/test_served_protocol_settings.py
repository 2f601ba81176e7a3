"""Which protocol the desk serves, and on whose clock: ``TRIALDESK_PROTOCOL``, or the only protocol installed, or the
installation's declared default, said on stderr (the rule of every command: ``loader.choose``, whose refusal with no
default is tested in tests/protocol); the clock is the protocol's site
zone, and a protocol without one is refused. Settings are read once per process, so each case starts a fresh one."""

from __future__ import annotations

import shutil
from pathlib import Path

from tests.edc.test_security_settings import production_env, run
from trialdesk.protocol.loader import installed, resolve

SHOW = ["-c", "from django.conf import settings; print(settings.TRIALDESK_PROTOCOL, settings.TIME_ZONE)"]


def _folder(tmp_path: Path, zone_line: str | None) -> Path:
    """AETHER's folder with its site zone line replaced by ``zone_line`` (None: removed)."""
    folder = tmp_path / "aether"
    shutil.copytree(resolve("nct02013700").parent, folder)
    text = (folder / "protocol.yaml").read_text(encoding="utf-8")
    lines = [(zone_line + "\n" if zone_line else "") if line.lstrip().startswith("time_zone:") else line
             for line in text.splitlines(keepends=True)]
    (folder / "protocol.yaml").write_text("".join(lines), encoding="utf-8")
    return folder


def test_with_several_protocols_installed_and_none_named_the_desk_serves_the_declared_default_and_says_so(tmp_path: Path) -> None:
    assert len(installed()) > 1
    env = production_env(tmp_path)
    env.pop("TRIALDESK_PROTOCOL", None)
    r = run(SHOW, env)
    assert r.returncode == 0, r.stderr
    assert r.stdout.split() == ["nct03929120", "America/New_York"]  # the first trial's site: Jacksonville, Florida
    assert "no protocol named; using nct03929120, this installation's default" in r.stderr


def test_the_named_protocol_is_served_on_its_sites_clock(tmp_path: Path) -> None:
    folder = _folder(tmp_path, "    time_zone: America/Chicago")
    r = run(SHOW, production_env(tmp_path, TRIALDESK_PROTOCOL=str(folder)))
    assert r.returncode == 0, r.stderr
    assert r.stdout.split() == [str(folder), "America/Chicago"]


def test_a_protocol_without_a_site_zone_is_refused(tmp_path: Path) -> None:
    folder = _folder(tmp_path, None)
    r = run(SHOW, production_env(tmp_path, TRIALDESK_PROTOCOL=str(folder)))
    assert r.returncode != 0 and "names no site time zone" in r.stderr and "locations[].time_zone" in r.stderr
