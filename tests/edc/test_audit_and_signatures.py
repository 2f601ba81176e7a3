from __future__ import annotations

import pytest
from typer.testing import CliRunner

from trialdesk.edc.audit import trail
from trialdesk.edc.audit.models import AuditEntry
from trialdesk.edc.signatures.models import Signature
from trialdesk.trial.errors import ConductError

from .conftest import PASSWORD, tampering


def test_creation_is_audited_with_who_when_and_new_values(trial) -> None:  # type: ignore[no-untyped-def]
    e = trial.screen()
    entry = AuditEntry.objects.get(action="create", model="screening.ScreeningEntry")
    assert entry.username == "coordinator" and entry.role == "coordinator" and entry.screening_id == e.number
    assert entry.changes["family_name"] == [None, "Lovelace"] and entry.at.utcoffset().total_seconds() == 0


def test_an_edit_records_old_and_new_values_and_its_reason(trial, users) -> None:  # type: ignore[no-untyped-def]
    e = trial.screen()
    trail.update(e, users["coordinator"], changes={"mrn": "MRN-9"}, reason="transcription error", version=e.version)
    entry = AuditEntry.objects.filter(action="update").last()
    assert entry.changes == {"mrn": ["MRN-Ada", "MRN-9"]} and entry.reason == "transcription error"


def test_an_edit_without_a_reason_is_refused_and_nothing_stored(trial, users) -> None:  # type: ignore[no-untyped-def]
    e = trial.screen()
    n = AuditEntry.objects.count()
    with pytest.raises(ConductError) as err:
        trail.update(e, users["coordinator"], changes={"mrn": "MRN-9"}, reason=" ", version=e.version)
    assert err.value.field == "reason"
    e.refresh_from_db()
    assert e.mrn == "MRN-Ada" and e.version == 1 and AuditEntry.objects.count() == n


def test_the_audit_trail_cannot_be_changed_or_deleted_through_the_app(trial) -> None:  # type: ignore[no-untyped-def]
    trial.screen()
    entry = AuditEntry.objects.first()
    entry.reason = "edited"
    with pytest.raises(PermissionError):
        entry.save()
    with pytest.raises(PermissionError):
        AuditEntry.objects.all().delete()
    with pytest.raises(PermissionError):
        AuditEntry.objects.update(reason="x")


def test_verify_passes_on_an_intact_chain(trial) -> None:  # type: ignore[no-untyped-def]
    trial.infuse(trial.enrol())
    result = trail.verify()
    assert result.ok and result.checked == AuditEntry.objects.count() > 20


def test_verify_names_the_entry_whose_row_was_tampered_with(trial) -> None:  # type: ignore[no-untyped-def]
    trial.enrol()
    target = AuditEntry.objects.order_by("seq")[4]
    with tampering() as cur:
        cur.execute("UPDATE audit_auditentry SET reason = %s WHERE seq = %s", ["nobody will notice", target.seq])
    result = trail.verify()
    assert not result.ok and result.broken_seq == target.seq and "content no longer matches" in result.problem


def test_verify_detects_a_removed_entry(trial) -> None:  # type: ignore[no-untyped-def]
    trial.enrol()
    with tampering() as cur:
        cur.execute("DELETE FROM audit_auditentry WHERE seq = 3")
    result = trail.verify()
    assert not result.ok and result.broken_seq == 4


def test_verify_detects_entries_cut_from_the_end(trial) -> None:  # type: ignore[no-untyped-def]
    trial.enrol()
    last = AuditEntry.objects.order_by("-seq").first()
    with tampering() as cur:
        cur.execute("DELETE FROM audit_auditentry WHERE seq = %s", [last.seq])
    assert not trail.verify().ok


def test_audit_verify_command_exits_1_and_names_the_broken_entry(trial) -> None:  # type: ignore[no-untyped-def]
    from trialdesk.edc.commands import app

    trial.screen()
    runner = CliRunner()
    ok = runner.invoke(app, ["audit", "verify"])
    assert ok.exit_code == 0 and "intact" in ok.output
    with tampering() as cur:
        cur.execute("UPDATE audit_auditentry SET username = 'mallory' WHERE seq = 2")
    bad = runner.invoke(app, ["audit", "verify"])
    assert bad.exit_code == 1 and "BROKEN at entry 2" in bad.output


def test_audit_is_viewable_and_exportable_per_participant_and_per_form(trial, client_as) -> None:  # type: ignore[no-untyped-def]
    trial.infuse(trial.enrol())
    trial.enrol("Other")
    page = client_as("monitor").get("/audit/?subject_id=001").content.decode()
    assert "infusion" in page
    csv_text = client_as("data_manager").get("/audit/?subject_id=001&form=infusion&format=csv").content.decode()
    lines = csv_text.splitlines()
    assert lines[0].startswith("seq,at,username") and all(",001," in line for line in lines[1:])
    assert any(",weight_kg,,70.0," in line for line in lines[1:])


# --- e-signatures ----------------------------------------------------------------


def test_the_signature_shows_name_time_and_meaning_and_hashes_the_signed_data(trial) -> None:  # type: ignore[no-untyped-def]
    s = trial.sign(trial.screen())
    sig = Signature.objects.get()
    assert sig.printed_name == "Pi Tester" and "I confirm eligibility" in sig.meaning and len(sig.data_hash) == 64
    assert s.current_signature() == sig
    assert AuditEntry.objects.filter(action="sign").exists()


def test_signing_needs_the_signers_own_printed_name(trial, users) -> None:  # type: ignore[no-untyped-def]
    from trialdesk.edc.signatures.service import sign

    s = trial.sign(trial.screen())
    with pytest.raises(ConductError) as err:
        sign(s, users["pi"], password=PASSWORD, printed_name="Someone Else", meaning="x")
    assert err.value.field == "printed_name"


def test_a_change_to_signed_data_voids_the_signature_and_the_page_says_so(trial, users, client_as) -> None:  # type: ignore[no-untyped-def]
    from trialdesk.edc.participants.service import enrol

    from .conftest import days_ago

    e = trial.screen()
    trial.sign(e)
    e.refresh_from_db()
    trail.update(e, users["coordinator"], changes={"birth_date": e.birth_date.replace(year=1961)}, reason="wrong year", version=e.version)
    sig = Signature.objects.get()
    assert sig.voided_at is not None and "birth_date" in sig.void_reason
    assert AuditEntry.objects.filter(action="void_signature").exists()
    page = client_as("coordinator").get(f"/screening/{e.number}/").content.decode()
    assert "SIGNATURE VOID" in page
    e.refresh_from_db()
    trial.consent(e)
    with pytest.raises(ConductError, match="sign the eligibility"):
        enrol(users["coordinator"], e, enrolled_on=days_ago(1))


def test_a_change_outside_the_signed_data_keeps_the_signature(trial, users) -> None:  # type: ignore[no-untyped-def]
    e = trial.screen()
    trial.sign(e)
    e.refresh_from_db()
    trail.update(e, users["coordinator"], changes={"fail_note": "n/a"}, reason="note", version=e.version)
    assert Signature.objects.get().voided_at is None


def test_after_a_void_the_investigator_can_sign_again(trial, users) -> None:  # type: ignore[no-untyped-def]
    e = trial.screen()
    trial.sign(e)
    e.refresh_from_db()
    trail.update(e, users["coordinator"], changes={"sex": "male"}, reason="wrong sex", version=e.version)
    e.refresh_from_db()
    trial.sign(e)
    assert Signature.objects.filter(voided_at__isnull=True).count() == 1 and Signature.objects.count() == 2
