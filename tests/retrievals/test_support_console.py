"""The support console's retrievals and sources against a real DCMTK source.

Filters, errors and missing instances, retry (a new retrieval), purge through the cache
(administrators only), the sources page's C-ECHO, and pause/resume from the page.
"""

from __future__ import annotations

import re
from typing import Any

from pacsbridge.staff import accounts
from support.conftest import PASSWORD, csrf_of, sign_in

from .conftest import fresh_accession
from .test_source_faults import _load, short_source  # noqa: F401 - the fixture, reused


def _signed_in(gateway: Any, role: str, username: str) -> Any:
    accounts.add(gateway.ctx, username, PASSWORD, role)
    assert sign_in(gateway.client, username).status_code == 303
    return gateway.client


def _ids(answer: Any) -> list[int]:
    assert answer.status_code == 200, answer.text
    return [int(v) for v in re.findall(r'data-retrieval-id="(\d+)"', answer.text)]


def _ask_and_confirm(client: Any, url: str) -> Any:
    asked = client.get(url)
    assert asked.status_code == 200, asked.text
    return client.post(url, data={"csrf_token": csrf_of(asked.text)}, follow_redirects=False)


def test_retrievals_are_filtered_by_state_source_accession_and_date(
    make_gateway,
    dcmqrscp_pacs,
    load_study,  # noqa: ANN001
) -> None:
    study, _ = load_study(dcmqrscp_pacs, series_count=1, instances_per_series=1)
    gateway = make_gateway(dcmqrscp_pacs.peer)
    found = gateway.request([study.accession_number])
    missing_accession = fresh_accession()
    not_found = gateway.request([missing_accession])
    gateway.run()
    client = _signed_in(gateway, "support", "m.rossi")
    today = gateway.ctx.clock.now().date().isoformat()
    base = "/support/recuperi"

    assert _ids(client.get(base)) == [not_found, found]
    assert _ids(client.get(base, params={"stato": "available"})) == [found]
    assert _ids(client.get(base, params={"stato": "not_found"})) == [not_found]
    assert _ids(client.get(base, params={"accession": missing_accession})) == [not_found]
    assert _ids(client.get(base, params={"accession": missing_accession[:-1]})) == []
    assert _ids(client.get(base, params={"sorgente": "ao17"})) == [not_found, found]
    assert _ids(client.get(base, params={"sorgente": "other"})) == []
    assert _ids(client.get(base, params={"dal": today, "al": today})) == [not_found, found]
    assert _ids(client.get(base, params={"al": "2001-01-01"})) == []
    page = client.get(f"{base}/{not_found}")
    assert 'id="retrieval-state">not_found<' in page.text and 'id="action-retry"' in page.text


def test_support_retries_a_retrieval_and_admin_purges_it_from_the_cache_support_may_not(
    make_gateway,
    dcmqrscp_pacs,
    load_study,  # noqa: ANN001
) -> None:
    study, paths = load_study(dcmqrscp_pacs, series_count=1, instances_per_series=2)
    gateway = make_gateway(dcmqrscp_pacs.peer)
    retrieval_id = gateway.request([study.accession_number])
    gateway.run()
    client = _signed_in(gateway, "support", "m.rossi")

    refused = client.post(
        f"/support/recuperi/{retrieval_id}/elimina",
        data={"csrf_token": csrf_of(client.get(f"/support/recuperi/{retrieval_id}").text)},
    )
    assert refused.status_code == 403
    assert gateway.document(retrieval_id)["state"] == "available"
    retried = _ask_and_confirm(client, f"/support/recuperi/{retrieval_id}/riprova")
    assert retried.status_code == 409  # an available retrieval needs no retry

    admin = _signed_in(gateway, "admin", "a.verdi")
    purged = _ask_and_confirm(admin, f"/support/recuperi/{retrieval_id}/elimina")
    assert purged.status_code == 303
    assert gateway.document(retrieval_id)["state"] == "expired"
    [event] = gateway.events("support.purged", retrieval_id)
    assert event.actor == "a.verdi"
    assert event.details["study_instance_uids"] == [study.study_instance_uid]
    [expired] = gateway.events("cache.expired")
    assert expired.actor == "a.verdi" and expired.details["reason"] == "purged"

    again = _ask_and_confirm(admin, f"/support/recuperi/{retrieval_id}/riprova")
    assert again.status_code == 303
    new_id = int(re.search(r"nuovo=(\d+)", again.headers["location"]).group(1))
    gateway.run()
    assert gateway.document(new_id)["state"] == "available"
    assert gateway.document(new_id)["received_instances"] == len(paths)
    assert len(gateway.moves(study.study_instance_uid)) == 2  # moved again after the purge
    [retry] = gateway.events("support.retrieval_retried", retrieval_id)
    assert retry.actor == "a.verdi" and retry.details["new_retrieval_id"] == new_id
    [requested] = gateway.events("retrieval.requested", new_id)
    assert requested.actor == "a.verdi"


def test_the_sources_page_echoes_now_and_pauses_and_resumes_audited(
    make_gateway,
    dcmqrscp_pacs,  # noqa: ANN001
) -> None:
    gateway = make_gateway(dcmqrscp_pacs.peer)
    client = _signed_in(gateway, "support", "m.rossi")

    page = client.get("/support/sorgenti")

    assert page.status_code == 200
    source = re.search(r'<tr data-source="ao17".*?</tr>', page.text, re.S).group(0)
    pacs = re.search(r'<tr data-source="[^"]*" data-kind="pacs".*?</tr>', page.text, re.S).group(0)
    assert "risponde" in source and re.search(r"\d+(\.\d)? ms", source)
    assert "risponde" not in pacs  # the test PACS address (port 1) answers nothing
    assert 'class="moves">0<' in source and 'class="failures">0<' in source
    paused = _ask_and_confirm(client, "/support/sorgenti/ao17/pausa")
    assert paused.status_code == 303
    assert "sospesa da m.rossi" in client.get("/support/sorgenti").text
    resumed = _ask_and_confirm(client, "/support/sorgenti/ao17/riprendi")
    assert resumed.status_code == 303
    assert [e.actor for e in gateway.events("source.paused")] == ["m.rossi"]
    assert [e.actor for e in gateway.events("source.resumed")] == ["m.rossi"]


def test_a_partial_retrieval_shows_its_error_and_each_missing_instance(
    make_gateway,  # noqa: ANN001
    load_study,  # noqa: ANN001
    short_source,  # noqa: ANN001, F811
) -> None:
    source = short_source()  # answers Success, never sends the withheld instances
    study, _, _, withheld = _load(source, load_study, withholding_moves=99)
    gateway = make_gateway(source.peer)
    retrieval_id = gateway.request([study.accession_number])
    gateway.run()
    client = _signed_in(gateway, "support", "m.rossi")

    page = client.get(f"/support/recuperi/{retrieval_id}")

    assert 'id="retrieval-state">partial<' in page.text
    assert "<code>move_incomplete</code>" in page.text
    missing = re.search(
        r'<table class="table table-sm small" id="missing">.*?</table>', page.text, re.S
    ).group(0)
    assert set(re.findall(r"<td class=\"text-break\">([0-9.]+)</td>\s*</tr>", missing)) == withheld
