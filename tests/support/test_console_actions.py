"""Support actions on real peers: retry a failed phase, abort (the RIS is told), recheck.

Each is asked first (a confirmation page), then posted with the page's CSRF token, and each
is audited with the staff member's user name.
"""

from __future__ import annotations

from html import unescape
from typing import Any

from sqlalchemy import select

from conftest import bearer
from imports.helpers import progress_of, state_of
from pacsbridge.audit import AuditEvent

from .conftest import analysed_import, csrf_of, launch_for


def _events(ctx: Any, kind: str, import_id: int) -> list[AuditEvent]:
    with ctx.sessions() as session:
        query = select(AuditEvent).where(AuditEvent.kind == kind, AuditEvent.import_id == import_id)
        return list(session.scalars(query.order_by(AuditEvent.id)))


def _ask_and_confirm(client: Any, url: str) -> Any:
    asked = client.get(url)
    assert asked.status_code == 200, asked.text
    return client.post(url, data={"csrf_token": csrf_of(asked.text)}, follow_redirects=False)


def _confirmed_with_the_pacs_gone(console, pynetdicom_pacs, relay, tmp_path, **settings):  # noqa: ANN001, ANN202
    """Analysed while the PACS answers, confirmed once it is gone: the send phase fails."""
    peer = pynetdicom_pacs.peer
    relay.up(peer.port)
    client = console(
        "admin",
        username="a.verdi",
        pacs={"ae_title": peer.ae_title, "host": relay.host, "port": relay.port},
        **settings,
    )
    token = launch_for(client)
    import_id = analysed_import(client, token, tmp_path / "usb")
    assert state_of(client, token, import_id) == "awaiting_confirmation"
    relay.down()
    confirm = client.post(f"/api/v1/imports/{import_id}/confirm", headers=bearer(token), json={})
    assert confirm.status_code == 202, confirm.text
    return client, token, import_id


def test_support_retries_the_failed_send_phase_after_confirmation_and_the_import_completes(
    console,
    pynetdicom_pacs,
    relay,
    tmp_path,  # noqa: ANN001
) -> None:
    client, token, import_id = _confirmed_with_the_pacs_gone(
        console, pynetdicom_pacs, relay, tmp_path, jobs={"backend": "immediate", "attempts": 1}
    )
    assert state_of(client, token, import_id) == "failed"
    support = console("support", username="m.rossi", client=client)
    page = support.get(f"/support/importazioni/{import_id}")
    assert 'id="action-retry"' in page.text and 'data-phase="send" data-state="failed"' in page.text
    relay.up(pynetdicom_pacs.peer.port)  # the PACS is back

    done = _ask_and_confirm(support, f"/support/importazioni/{import_id}/riprova")

    assert done.status_code == 303
    assert state_of(client, token, import_id) == "completed"
    phases = {p["phase"]: p["state"] for p in progress_of(client, token, import_id)["phases"]}
    assert phases["send"] == "completed"
    assert len(pynetdicom_pacs.instance_uids(_study_uid(client, import_id))) == 2
    [retried] = _events(client.app.state.context, "support.retried", import_id)
    assert retried.actor == "m.rossi" and retried.details["phases"] == ["send"]
    after = support.get(done.headers["location"])
    assert "La fase fallita è stata riavviata." in after.text
    assert "Fase riavviata dall&#39;assistenza" in after.text  # in the log, with the name
    assert "m.rossi" in after.text
    instances = after.text.split('id="instance-table"')[1].split("</table>")[0]
    assert instances.count('<tr data-state="stored">') == 2 and instances.count("0x0000") == 2
    assert "2 di 2 istanze confermate dal PACS" in after.text


def _study_uid(client: Any, import_id: int) -> str:
    from pacsbridge.imports.models import ImportStudy

    with client.app.state.context.sessions() as session:
        query = select(ImportStudy.study_instance_uid).where(ImportStudy.import_id == import_id)
        return session.scalars(query).one()


def test_an_admin_abort_of_a_confirmed_import_deletes_it_and_tells_the_ris(
    console,
    pynetdicom_pacs,
    relay,
    mllp_listener,
    tmp_path,  # noqa: ANN001
) -> None:
    ris = mllp_listener()
    client, token, import_id = _confirmed_with_the_pacs_gone(
        console,
        pynetdicom_pacs,
        relay,
        tmp_path,
        ris={"notify": {"enabled": True, "port": ris.port}},
    )
    assert state_of(client, token, import_id) == "processing"  # the send waits for a retry

    done = _ask_and_confirm(client, f"/support/importazioni/{import_id}/annulla")

    assert done.status_code == 303
    assert state_of(client, token, import_id) == "cancelled"
    [told] = ris.received
    assert (told.get("ORC.F1"), told.get("ORC.F5")) == ("OC", "CA")
    ctx = client.app.state.context
    [aborted] = _events(ctx, "support.aborted", import_id)
    [cancelled] = _events(ctx, "import.cancelled", import_id)
    assert aborted.actor == cancelled.actor == "a.verdi"
    assert aborted.details["was"] == "processing"
    assert _events(ctx, "ris.discontinued", import_id)[0].outcome == "ok"


def test_support_repeats_the_duplicate_check_once_asked_and_it_is_audited(
    console,
    tmp_path,  # noqa: ANN001
) -> None:
    client = console("support", username="m.rossi")  # the PACS of the tests does not answer
    token = launch_for(client)
    import_id = analysed_import(client, token, tmp_path / "usb")
    page = client.get(f"/support/importazioni/{import_id}")
    assert 'id="action-recheck"' in page.text and 'id="action-abort"' not in page.text

    asked = client.get(f"/support/importazioni/{import_id}/ricontrolla")
    assert "Ripetere l'analisi" in unescape(asked.text)
    done = client.post(
        f"/support/importazioni/{import_id}/ricontrolla",
        data={"csrf_token": csrf_of(asked.text)},
        follow_redirects=False,
    )

    assert done.status_code == 303
    ctx = client.app.state.context
    [repeated] = _events(ctx, "analysis.repeated", import_id)
    [rechecked] = _events(ctx, "support.rechecked", import_id)
    assert repeated.actor == rechecked.actor == "m.rossi"
    assert state_of(client, token, import_id) == "awaiting_confirmation"  # analysed again
