"""A request naming several accession numbers, some of which match nothing: the ones found are
served, and the document's errors and the package README name the ones not found."""

from __future__ import annotations

import io
import zipfile

from .conftest import AUTH, fresh_accession


def test_accession_numbers_without_a_study_are_named_and_the_rest_is_served(
    make_gateway, pynetdicom_pacs, load_study
) -> None:  # noqa: ANN001
    study, paths = load_study(pynetdicom_pacs, series_count=1, instances_per_series=2)
    missing = fresh_accession()
    gateway = make_gateway(pynetdicom_pacs.peer)

    retrieval_id = gateway.request([study.accession_number, missing])
    gateway.run()

    document = gateway.document(retrieval_id)
    assert document["state"] == "available", document
    assert document["received_instances"] == len(paths)
    [error] = [e for e in document["errors"] if e["code"] == "accession_not_found"]
    assert error["accession_number"] == missing
    assert missing in error["message"] and error["retriable"] is False
    answer = gateway.client.get(f"/api/v1/retrievals/{retrieval_id}/package", headers=AUTH)
    assert answer.status_code == 200, answer.text
    with zipfile.ZipFile(io.BytesIO(answer.content)) as package:
        readme = package.read("README.TXT").decode("ascii")
        dicom_files = [n for n in package.namelist() if n.startswith("DICOM/")]
    assert "NUMERI DI ACCETTAZIONE SENZA STUDI" in readme
    assert f"accession number {missing}" in readme
    assert len(dicom_files) == len(paths)


def test_a_request_whose_numbers_all_match_lists_no_such_error(
    make_gateway, pynetdicom_pacs, load_study
) -> None:  # noqa: ANN001
    study, _paths = load_study(pynetdicom_pacs, series_count=1, instances_per_series=1)
    gateway = make_gateway(pynetdicom_pacs.peer)
    retrieval_id = gateway.request([study.accession_number])
    gateway.run()
    document = gateway.document(retrieval_id)
    assert document["state"] == "available"
    assert [e for e in document["errors"] if e["code"] == "accession_not_found"] == []
