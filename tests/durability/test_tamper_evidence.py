"""Someone with database access edits a row or an audit entry directly: ``trialdesk audit
verify`` fails and names exactly the record (and field) and the entry that were changed."""

from __future__ import annotations

from typing import Any

import pytest
from typer.testing import CliRunner

from tests.durability.conftest import Cluster, trialdesk_cli, workload
from tests.edc.conftest import days_ago, tampering


@pytest.fixture
def headache(trial):  # type: ignore[no-untyped-def]
    from trialdesk.edc.adverse_events.service import record_adverse_event

    participant = trial.enrol()
    trial.infuse(participant)
    return record_adverse_event(trial.users["coordinator"], participant, term="Headache", grade=1, description="after the infusion",
                                onset=days_ago(19), resolved=None, serious=False, seriousness=[], relatedness="unrelated",
                                outcome="unknown", action_taken="none", learned_at=None, suggested_from="")


def _verify() -> Any:
    from trialdesk.edc.audit import trail

    return trail.verify()


def _entry_of(ae: Any) -> Any:
    from trialdesk.edc.audit.models import AuditEntry

    return AuditEntry.objects.get(model="adverse_events.AdverseEvent", object_id=str(ae.pk), action="create")


def test_an_intact_trial_verifies_with_every_record_matching_its_history(headache) -> None:  # type: ignore[no-untyped-def]
    result = _verify()
    assert result.ok, result.report()
    assert result.records >= 10 and "records match their audit history" in result.sentence()


def test_a_grade_lowered_directly_in_the_database_is_named_by_record_field_and_entry(headache) -> None:  # type: ignore[no-untyped-def]
    with tampering() as cur:
        cur.execute("UPDATE adverse_events_adverseevent SET grade = 3 WHERE id = %s", [headache.pk])
    result = _verify()
    assert not result.ok
    assert result.findings == (f"adverse_events.AdverseEvent {headache.pk} (adverse_event): grade is '3' in the database but '1' in"
                               f" the audit trail (entry {_entry_of(headache).seq}); the row was changed outside the trial desk",)


def test_an_infusion_dose_changed_directly_is_caught_even_when_the_version_is_left_alone(trial) -> None:  # type: ignore[no-untyped-def]
    infusion = trial.infuse(trial.enrol())
    with tampering() as cur:
        cur.execute("UPDATE dosing_infusion SET total_cells = 70000000, dose_per_kg = 1000000 WHERE id = %s", [infusion.pk])
    findings = _verify().findings
    assert len(findings) == 2 and all(f.startswith(f"dosing.Infusion {infusion.pk} (infusion): ") for f in findings)
    assert "total_cells is '70000000.0' in the database" in findings[0]
    assert "dose_per_kg is '1000000.0' in the database but '750000.0' in the audit trail" in findings[1]


def test_an_audit_entry_edited_directly_is_named_and_nothing_else(headache) -> None:  # type: ignore[no-untyped-def]
    seq = _entry_of(headache).seq
    with tampering() as cur:
        cur.execute("UPDATE audit_auditentry SET username = 'mallory' WHERE seq = %s", [seq])
    result = _verify()
    assert not result.ok and result.broken_seq == seq
    assert result.findings == (f"entry {seq}: its content no longer matches its hash (adverse_events.AdverseEvent {headache.pk}, create)",)


def test_an_entry_rewritten_with_a_fresh_hash_breaks_the_link_of_the_next(headache) -> None:  # type: ignore[no-untyped-def]
    from trialdesk.edc.audit.models import AuditEntry

    entry = AuditEntry.objects.get(seq=2)
    entry.username = "mallory"
    forged = entry.compute_hash()
    with tampering() as cur:
        cur.execute("UPDATE audit_auditentry SET username = 'mallory', hash = %s WHERE seq = %s", [forged, entry.seq])
    result = _verify()
    assert not result.ok and result.broken_seq == entry.seq + 1 and AuditEntry.objects.filter(seq=entry.seq + 1).exists()
    assert result.findings == (f"entry {entry.seq + 1}: its link to the previous entry does not match (an entry before it was changed"
                               " or removed)",)


def test_a_row_and_an_entry_edited_together_are_both_reported_by_the_command(headache, trial) -> None:  # type: ignore[no-untyped-def]
    from trialdesk.edc.commands import app

    seq = _entry_of(headache).seq
    with tampering() as cur:
        cur.execute("UPDATE adverse_events_adverseevent SET relatedness = 'unlikely' WHERE id = %s", [headache.pk])
        cur.execute("UPDATE audit_auditentry SET reason = 'nothing to see' WHERE seq = 2")
    out = CliRunner().invoke(app, ["audit", "verify"])
    assert out.exit_code == 1
    assert "audit trail BROKEN at entry 2: its content no longer matches its hash" in out.output
    assert (f"- adverse_events.AdverseEvent {headache.pk} (adverse_event): relatedness is 'unlikely' in the database but 'unrelated'"
            f" in the audit trail (entry {seq})") in out.output


def test_a_data_migration_that_records_what_it_filled_in_still_verifies(headache) -> None:  # type: ignore[no-untyped-def]
    from trialdesk.edc.audit import trail

    with tampering() as cur:  # as a migration's RunPython would, followed by its audit entry
        cur.execute("UPDATE adverse_events_adverseevent SET suggested_from = 'lab ALT 3xULN' WHERE id = %s", [headache.pk])
    trail.append(None, "migrate", model="adverse_events.AdverseEvent", object_id=str(headache.pk),
                 changes={"suggested_from": [None, "lab ALT 3xULN"]}, reason="migration 0009 filled suggested_from")
    assert _verify().ok


def test_the_monitor_sees_every_finding_on_the_verification_page(headache, client_as) -> None:  # type: ignore[no-untyped-def]
    with tampering() as cur:
        cur.execute("UPDATE adverse_events_adverseevent SET grade = 2 WHERE id = %s", [headache.pk])
        cur.execute("UPDATE audit_auditentry SET reason = 'nothing to see' WHERE seq = 2")
    page = client_as("monitor").get("/audit/verify/").content.decode()
    assert "audit trail BROKEN at entry 2" in page
    assert f"adverse_events.AdverseEvent {headache.pk} (adverse_event): grade is &#x27;2&#x27; in the database" in page


def test_a_record_deleted_behind_the_desks_back_is_reported(headache) -> None:  # type: ignore[no-untyped-def]
    with tampering() as cur:
        cur.execute("DELETE FROM adverse_events_adverseevent WHERE id = %s", [headache.pk])
    assert _verify().findings == (f"adverse_events.AdverseEvent {headache.pk} is in the audit trail but not in the database: it was"
                                  " deleted outside the trial desk",)


@pytest.mark.slow
def test_postgresql_itself_refuses_to_change_or_delete_an_audit_entry(cluster: Cluster) -> None:
    url = cluster.database("trialdesk_append_only")
    workload(url, "prepare", "--enrol", "1", "--infuse", "1")
    db = "trialdesk_append_only"
    for sql in ("UPDATE audit_auditentry SET username = 'mallory' WHERE seq = 3", "DELETE FROM audit_auditentry WHERE seq = 3"):
        with pytest.raises(Exception) as refused:
            cluster.pg.psql(db, sql)
        assert "the audit trail is append-only" in refused.value.stderr  # type: ignore[attr-defined]
    assert trialdesk_cli(url, "audit", "verify").returncode == 0
    # a superuser can switch the trigger off; the chain still gives it away
    cluster.pg.psql(db, "SET session_replication_role = replica; UPDATE audit_auditentry SET username = 'mallory' WHERE seq = 3")
    bad = trialdesk_cli(url, "audit", "verify")
    assert bad.returncode == 1 and "audit trail BROKEN at entry 3: its content no longer matches its hash" in bad.stdout
