"""The support console without peers: sign-in, redirects, search filters, roles, CSRF, escaping."""

from __future__ import annotations

import re
from datetime import timedelta
from html import unescape
from typing import Any

import pytest
from sqlalchemy import select

from conftest import bearer
from pacsbridge.audit import AuditEvent
from pacsbridge.demo.samples import SamplePatient
from pacsbridge.staff import accounts
from pacsbridge.web.pages.support import imports as support_imports
from pacsbridge.web.pages.support import retrievals as support_retrievals
from pacsbridge.web.pages.support import sources as support_sources

from .conftest import (
    PASSWORD,
    analysed_import,
    csrf,
    csrf_of,
    launch_for,
    new_import,
    sign_in,
)


def _events(ctx, kind: str) -> list[AuditEvent]:  # noqa: ANN001
    with ctx.sessions() as session:
        query = select(AuditEvent).where(AuditEvent.kind == kind).order_by(AuditEvent.id)
        return list(session.scalars(query))


def test_a_visit_without_a_session_is_sent_to_accedi_and_back_after_signing_in(make_client) -> None:  # noqa: ANN001
    client = make_client()
    accounts.add(client.app.state.context, "m.rossi", PASSWORD, "support")

    answer = client.get("/support/sorgenti", follow_redirects=False)
    assert answer.status_code == 303
    assert answer.headers["location"] == "/support/accedi?next=/support/sorgenti"
    page = client.get(answer.headers["location"])
    assert "Accedi" in page.text

    signed = client.post(
        "/support/accedi",
        data={
            "username": "m.rossi",
            "password": PASSWORD,
            "csrf_token": csrf_of(page.text),
            "next": "/support/sorgenti",
        },
        follow_redirects=False,
    )
    assert signed.status_code == 303 and signed.headers["location"] == "/support/sorgenti"
    assert "pacsbridge_staff" in signed.cookies


def test_a_wrong_password_and_a_locked_account_get_the_same_words(make_client) -> None:  # noqa: ANN001
    client = make_client(staff={"max_failed_attempts": 2})
    accounts.add(client.app.state.context, "m.rossi", PASSWORD, "support")

    wrong = sign_in(client, "m.rossi", "not the password")
    sign_in(client, "m.rossi", "not the password")  # the second failure locks the account
    locked = sign_in(client, "m.rossi")  # the right password, but locked
    unknown = sign_in(client, "nobody")

    expected = "Nome utente o password non validi, oppure account bloccato"
    for answer in (wrong, locked, unknown):
        assert answer.status_code == 401 and expected in answer.text
    assert _events(client.app.state.context, "staff.locked_out")


def test_sign_in_without_the_form_token_is_refused(make_client) -> None:  # noqa: ANN001
    client = make_client()
    accounts.add(client.app.state.context, "m.rossi", PASSWORD, "support")
    client.get("/support/accedi")
    answer = client.post(
        "/support/accedi",
        data={"username": "m.rossi", "password": PASSWORD},
        follow_redirects=False,
    )
    assert answer.status_code == 403 and "pacsbridge_staff" not in answer.cookies


def _ids(answer) -> list[int]:  # noqa: ANN001
    assert answer.status_code == 200, answer.text
    return [int(v) for v in re.findall(r'data-import-id="(\d+)"', answer.text)]


def test_each_search_filter_finds_only_its_imports(console, clock) -> None:  # noqa: ANN001
    client = console("support")
    clock.advance(days=-3)  # the first import three days ago
    rossi = launch_for(
        client,
        patient={
            "id": "PZ-ROSSI",
            "family_name": "ROSSI",
            "given_name": "MARIA",
            "fiscal_code": "RSSMRA85T10A562S",
        },
        order={"number": "ORD-R", "accession_number": "ACC-R"},
        operator={"id": "op1", "name": "Operatore Uno"},
    )
    first = new_import(client, rossi)
    clock.advance(days=3)
    bianchi = launch_for(
        client,
        patient={"id": "PZ-BIANCHI", "family_name": "BIANCHI", "given_name": "LUCA"},
        order={"number": "ORD-B", "accession_number": "ACC-B"},
        operator={"id": "op2", "name": "Operatore Due"},
    )
    second = new_import(client, bianchi)
    cancelled = client.post(f"/api/v1/imports/{second}/cancel", headers=bearer(bianchi))
    assert cancelled.status_code == 200
    day_one = (clock.now() - timedelta(days=3)).date().isoformat()
    day_four = clock.now().date().isoformat()
    base = "/support/importazioni"

    assert _ids(client.get(base)) == [second, first]
    assert _ids(client.get(base, params={"id": first})) == [first]
    assert _ids(client.get(base, params={"paziente": "ross"})) == [first]
    assert _ids(client.get(base, params={"paziente": "maria ross"})) == []
    assert _ids(client.get(base, params={"paziente": "ROSSI MARIA"})) == [first]
    assert _ids(client.get(base, params={"paziente": "PZ-BIANCHI"})) == [second]
    assert _ids(client.get(base, params={"paziente": "rssmra85t10a562s"})) == [first]
    assert _ids(client.get(base, params={"ordine": "ORD-B"})) == [second]
    assert _ids(client.get(base, params={"accession": "ACC-R"})) == [first]
    assert _ids(client.get(base, params={"stato": "cancelled"})) == [second]
    assert _ids(client.get(base, params={"stato": "created"})) == [first]
    assert _ids(client.get(base, params={"operatore": "due"})) == [second]
    assert _ids(client.get(base, params={"dal": day_four})) == [second]
    assert _ids(client.get(base, params={"al": day_one})) == [first]
    assert _ids(client.get(base, params={"dal": day_one, "al": day_four})) == [second, first]
    assert _ids(client.get(base, params={"id": "not a number"})) == []


def test_the_list_is_paginated_newest_first(console) -> None:  # noqa: ANN001
    client = console("support")
    token = launch_for(client)
    made = [new_import(client, token) for _ in range(27)]

    first_page = client.get("/support/importazioni")
    second_page = client.get("/support/importazioni", params={"pagina": 2})

    assert _ids(first_page) == made[::-1][:25]
    assert _ids(second_page) == made[::-1][25:]
    assert "27 trovati, pagina 1 di 2" in first_page.text
    assert 'rel="next"' in first_page.text and 'rel="prev"' in second_page.text


def test_support_may_not_abort_or_purge_403_and_nothing_happens(console) -> None:  # noqa: ANN001
    client = console("support")
    import_id = new_import(client, launch_for(client))
    token = csrf(client, f"/support/importazioni/{import_id}")

    asked = client.get(f"/support/importazioni/{import_id}/annulla")
    posted = client.post(
        f"/support/importazioni/{import_id}/annulla",
        data={"csrf_token": token},
        follow_redirects=False,
    )
    purge = client.post("/support/recuperi/1/elimina", data={"csrf_token": token})

    assert asked.status_code == posted.status_code == purge.status_code == 403
    assert "Operazione non consentita al proprio ruolo" in posted.text
    page = client.get(f"/support/importazioni/{import_id}")
    assert 'data-state="created"' in page.text and 'id="action-abort"' not in page.text
    assert _events(client.app.state.context, "support.aborted") == []


def test_a_form_without_or_with_a_wrong_csrf_token_is_refused(console) -> None:  # noqa: ANN001
    client = console("admin")
    import_id = new_import(client, launch_for(client))
    url = f"/support/importazioni/{import_id}/annulla"

    missing = client.post(url, data={}, follow_redirects=False)
    wrong = client.post(url, data={"csrf_token": "0" * 64}, follow_redirects=False)

    assert missing.status_code == wrong.status_code == 403
    assert "Richiesta non valida" in missing.text
    ctx = client.app.state.context
    assert _events(ctx, "support.aborted") == [] and _events(ctx, "import.cancelled") == []


def test_an_admin_abort_asks_first_then_cancels_audited_with_the_admin_name(console) -> None:  # noqa: ANN001
    client = console("admin", username="a.verdi")
    import_id = new_import(client, launch_for(client))

    asked = client.get(f"/support/importazioni/{import_id}/annulla")
    assert asked.status_code == 200 and f"Annullare l'importazione {import_id}?" in unescape(
        asked.text
    )
    assert _events(client.app.state.context, "import.cancelled") == []  # asking changes nothing
    done = client.post(
        f"/support/importazioni/{import_id}/annulla",
        data={"csrf_token": csrf_of(asked.text)},
        follow_redirects=False,
    )

    assert done.status_code == 303
    page = client.get(done.headers["location"])
    assert "L'importazione è stata annullata." in unescape(page.text)
    assert 'data-state="cancelled"' in page.text
    ctx = client.app.state.context
    [aborted] = _events(ctx, "support.aborted")
    [cancelled] = _events(ctx, "import.cancelled")
    assert aborted.actor == cancelled.actor == "a.verdi"
    assert aborted.import_id == import_id and aborted.details["was"] == "created"


def test_dicom_and_ris_values_are_shown_as_text_never_as_markup(console, tmp_path) -> None:  # noqa: ANN001
    client = console("support")
    script = "<script>alert(1)</script>"
    token = launch_for(client, patient={"family_name": script, "given_name": "<b>x</b>"})
    hostile = SamplePatient(
        name=f"{script}^<i>y</i>", patient_id="EXT-1", birth_date="19740101", sex="M"
    )
    import_id = analysed_import(client, token, tmp_path / "usb", patient=hostile)

    page = client.get(f"/support/importazioni/{import_id}")
    listing = client.get("/support/importazioni")

    for answer in (page, listing):
        assert answer.status_code == 200
        assert "<script>" not in answer.text and "<b>x</b>" not in answer.text
        assert "&lt;script&gt;alert(1)&lt;/script&gt;" in answer.text
    assert "<i>y</i>" not in page.text
    assert "&lt;script&gt;alert(1)&lt;/script&gt; &lt;i&gt;y&lt;/i&gt;" in page.text  # DICOM


@pytest.mark.parametrize(
    "path",
    [
        "/support/importazioni",
        "/support/importazioni/1",
        "/support/importazioni/1/annulla",
        "/support/recuperi",
        "/support/recuperi/1",
        "/support/sorgenti",
        "/support/audit",
        "/support/audit/export?dal=2026-01-01&al=2026-01-02",
    ],
)
def test_every_console_page_without_a_session_redirects_to_accedi(make_client, path: str) -> None:  # noqa: ANN001
    answer = make_client().get(path, follow_redirects=False)
    assert answer.status_code == 303
    assert answer.headers["location"].startswith("/support/accedi?next=/support/")


def test_signing_out_ends_the_session_and_needs_the_form_token(console) -> None:  # noqa: ANN001
    client = console("support", username="m.rossi")
    refused = client.post("/support/esci", data={}, follow_redirects=False)
    assert refused.status_code == 403
    assert client.get("/support/importazioni", follow_redirects=False).status_code == 200

    token = csrf(client, "/support/importazioni")
    cookie = client.cookies["pacsbridge_staff"]
    out = client.post("/support/esci", data={"csrf_token": token}, follow_redirects=False)

    assert out.status_code == 303 and out.headers["location"] == "/support/accedi"
    client.cookies.set("pacsbridge_staff", cookie)  # the old cookie, kept by a copy: no use
    assert [e.actor for e in _events(client.app.state.context, "staff.signed_out")] == ["m.rossi"]
    again = client.get("/support/importazioni", follow_redirects=False)
    assert again.status_code == 303


def test_a_next_address_outside_the_console_is_never_followed(make_client) -> None:  # noqa: ANN001
    client = make_client()
    accounts.add(client.app.state.context, "m.rossi", PASSWORD, "support")
    page = client.get("/support/accedi", params={"next": "//evil.example/support/"})
    assert "evil.example" not in page.text
    signed = client.post(
        "/support/accedi",
        data={
            "username": "m.rossi",
            "password": PASSWORD,
            "csrf_token": csrf_of(page.text),
            "next": "https://evil.example/",
        },
        follow_redirects=False,
    )
    assert signed.headers["location"] == "/support/importazioni"


def test_the_console_speaks_english_to_a_browser_that_asks_for_it(console) -> None:  # noqa: ANN001
    client = console("support")
    english = client.get("/support/importazioni", headers={"Accept-Language": "en-GB,en;q=0.9"})
    italian = client.get("/support/importazioni")
    assert "Support id" in english.text and "Sign out" in english.text
    assert "Id per assistenza" in italian.text and "Esci" in italian.text


@pytest.mark.parametrize(
    "target",
    [
        "//evil.example/support/",
        "/\\evil.example/support/",
        "https://evil.example/support/",
        "javascript:alert(1)//support/",
        "/support/..//evil.example",
        "/support/\\evil.example",
        "support/importazioni",
    ],
)
def test_a_come_back_address_that_is_not_a_local_console_path_signs_in_to_the_home(
    make_client, target: str
) -> None:  # noqa: ANN001
    client = make_client()
    accounts.add(client.app.state.context, "m.rossi", PASSWORD, "support")
    page = client.get("/support/accedi", params={"next": target})
    assert "evil.example" not in page.text and "javascript" not in page.text
    signed = client.post(
        "/support/accedi",
        data={
            "username": "m.rossi",
            "password": PASSWORD,
            "csrf_token": csrf_of(page.text),
            "next": target,
        },
        follow_redirects=False,
    )
    assert signed.status_code == 303
    assert signed.headers["location"] == "/support/importazioni"


@pytest.mark.parametrize("path", ["/support/importazioni", "/support/recuperi"])
def test_a_list_and_its_pager_speak_the_readers_language(console, path: str) -> None:  # noqa: ANN001
    client = console("support")
    english = client.get(path, headers={"Accept-Language": "en-GB,en;q=0.9"})
    italian = client.get(path)
    assert "found, page 1 of 1" in english.text and 'id="no-results"' in english.text
    assert ">From<" in english.text and ">To<" in english.text
    assert "found, page 1 of 1" not in italian.text and ">Dal<" in italian.text


#: every route of the console that changes anything (the sign-in form has its own token)
STATE_CHANGES = {
    "/support/esci",
    "/support/importazioni/{import_id}/{action}",
    "/support/recuperi/{retrieval_id}/{action}",
    "/support/sorgenti/{name}/{action}",
}


def _routes(routes: list[Any]) -> list[Any]:
    """Every route, those of included routers too (FastAPI keeps them behind a wrapper)."""
    found = []
    for route in routes:
        inner = getattr(route, "original_router", None)
        found += _routes(inner.routes) if inner is not None else [route]
    return found


def test_every_state_change_of_the_console_is_a_post_refused_without_the_form_token(
    console,
) -> None:  # noqa: ANN001
    source = {"name": "pacs-a", "ae_title": "SRC", "host": "127.0.0.1", "port": 1}
    client = console("admin", sources=[source])
    ctx = client.app.state.context
    import_id = new_import(client, launch_for(client))
    methods = {
        (route.path, method)
        for route in _routes(client.app.routes)
        if route.path.startswith("/support")
        for method in getattr(route, "methods", None) or ()
    }
    assert {path for path, method in methods if method == "POST"} == {
        *STATE_CHANGES,
        "/support/accedi",
    }
    assert {method for _, method in methods} <= {"GET", "HEAD", "POST"}
    urls = [
        "/support/esci",
        *(f"/support/importazioni/{import_id}/{a}" for a in support_imports.ACTIONS),
        *(f"/support/recuperi/1/{a}" for a in support_retrievals.ACTIONS),
        *(f"/support/sorgenti/pacs-a/{a}" for a in support_sources.ACTIONS),
    ]
    with ctx.sessions() as session:
        before = list(session.scalars(select(AuditEvent.id)))

    for url in urls:
        for data in ({}, {"csrf_token": "0" * 64}):
            answer = client.post(url, data=data, follow_redirects=False)
            assert answer.status_code == 403 and "Richiesta non valida" in answer.text, url

    with ctx.sessions() as session:
        assert list(session.scalars(select(AuditEvent.id))) == before  # nothing happened
    assert client.get("/support/importazioni", follow_redirects=False).status_code == 200
