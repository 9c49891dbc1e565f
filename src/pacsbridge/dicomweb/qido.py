"""QIDO-RS search (PS3.18 §10.6) over one catalogue: studies, series, instances.

Each result is a pydicom Dataset built from the representative header of its group (the first
instance in UID order) with the attributes of PS3.18 Table 10.6.3-3/-4/-5, plus counts computed
from the catalogue; the router turns it into DICOM JSON with ``Dataset.to_json_dict``.

Matching (PS3.18 §8.3.4): ``keyword=value`` or ``ggggeeee=value``; an empty value matches
everything; UI values may be a list (``,`` or ``\\``); ``*`` and ``?`` are wildcards in string
values; DA, TM and DT take ``from-to`` ranges (either end may be open); PN matching ignores
case. A key that is neither a known keyword nor a tag is an error (400), as the standard asks.
``includefield`` adds attributes (or ``all``: every header attribute at instance level, the
standard set at study and series level); ``limit``/``offset`` page the sorted results.
"""

from __future__ import annotations

import fnmatch
import re
from collections import defaultdict
from collections.abc import Iterable
from dataclasses import dataclass

from pydicom import Dataset
from pydicom.datadict import dictionary_VR, tag_for_keyword
from pydicom.tag import Tag

from pacsbridge.dicomweb.catalogue import Catalogue, Instance, header
from pacsbridge.errors import InputError

STUDY = (
    "SpecificCharacterSet",
    "StudyDate",
    "StudyTime",
    "AccessionNumber",
    "ReferringPhysicianName",
    "TimezoneOffsetFromUTC",
    "PatientName",
    "PatientID",
    "IssuerOfPatientID",
    "PatientBirthDate",
    "PatientSex",
    "StudyInstanceUID",
    "StudyID",
    "StudyDescription",
)
SERIES = (
    "SpecificCharacterSet",
    "Modality",
    "SeriesDescription",
    "SeriesInstanceUID",
    "SeriesNumber",
    "SeriesDate",
    "SeriesTime",
    "PerformedProcedureStepStartDate",
    "PerformedProcedureStepStartTime",
    "StudyInstanceUID",
)
INSTANCE = (
    "SpecificCharacterSet",
    "SOPClassUID",
    "SOPInstanceUID",
    "InstanceNumber",
    "Rows",
    "Columns",
    "BitsAllocated",
    "NumberOfFrames",
    "StudyInstanceUID",
    "SeriesInstanceUID",
    "Modality",
)
CONTROL = frozenset({"includefield", "limit", "offset", "fuzzymatching"})
RANGE_VRS = frozenset({"DA", "TM", "DT"})
STRING_VRS = frozenset({"AE", "CS", "LO", "LT", "PN", "SH", "ST", "UC", "UT", "UR"})
MAX_LIMIT = 10_000
Query = Iterable[tuple[str, str]]


@dataclass(frozen=True)
class Filter:
    tag: int
    vr: str
    value: str


@dataclass(frozen=True)
class Options:
    filters: tuple[Filter, ...]
    fields: tuple[int, ...]
    all_fields: bool
    limit: int | None
    offset: int


def parse(query: Query) -> Options:
    """The query string's match keys and controls; InputError names a bad key."""
    filters, fields, all_fields = [], [], False
    limit, offset = None, 0
    for key, value in query:
        if key == "includefield":
            for name in filter(None, (v.strip() for v in value.split(","))):
                if name == "all":
                    all_fields = True
                else:
                    fields.append(_tag(name))
        elif key == "limit":
            limit = min(_count(key, value), MAX_LIMIT)
        elif key == "offset":
            offset = _count(key, value)
        elif key not in CONTROL:
            tag = _tag(key)
            filters.append(Filter(tag, _vr(tag), value))
    return Options(tuple(filters), tuple(fields), all_fields, limit, offset)


def studies(catalogue: Catalogue, options: Options) -> list[Dataset]:
    groups = _grouped(catalogue.instances, lambda i: i.study)
    found = [_study(members, options) for members in groups.values()]
    return _page(_ordered(found, "StudyDate", "StudyInstanceUID"), options)


def series(catalogue: Catalogue, study: str, options: Options) -> list[Dataset]:
    groups = _grouped(catalogue.select(study), lambda i: i.series)
    found = [_series(members, options) for members in groups.values()]
    return _page(_ordered(found, "SeriesNumber", "SeriesInstanceUID"), options)


def instances(
    catalogue: Catalogue, study: str, series_uid: str | None, options: Options
) -> list[Dataset]:
    found = [_instance(i, options) for i in catalogue.select(study, series_uid)]
    return _page(_ordered(found, "InstanceNumber", "SOPInstanceUID"), options)


# --- building the results --------------------------------------------------------------------


def _study(members: list[Instance], options: Options) -> Dataset | None:
    first = header(members[0])
    ds = _copy(first, STUDY, options)
    ds.ModalitiesInStudy = sorted({str(header(i).get("Modality", "")) for i in members} - {""})
    ds.NumberOfStudyRelatedSeries = len({i.series for i in members})
    ds.NumberOfStudyRelatedInstances = len(members)
    return ds if _matches(ds, first, options.filters) else None


def _series(members: list[Instance], options: Options) -> Dataset | None:
    first = header(members[0])
    ds = _copy(first, SERIES, options)
    ds.NumberOfSeriesRelatedInstances = len(members)
    return ds if _matches(ds, first, options.filters) else None


def _instance(instance: Instance, options: Options) -> Dataset | None:
    first = header(instance)
    ds = _copy(first, INSTANCE, options, everything=options.all_fields)
    return ds if _matches(ds, first, options.filters) else None


def _copy(source: Dataset, keywords: Iterable[str], options: Options, everything=False) -> Dataset:  # noqa: ANN001
    """The named attributes the header has, plus includefield's; everything at instance level."""
    ds = Dataset()
    tags = list(source.keys()) if everything else [tag_for_keyword(k) for k in keywords]
    for tag in [*tags, *options.fields]:
        if tag in source and not _is_bulk(tag):
            ds[tag] = source[tag]
    return ds


def _is_bulk(tag: int) -> bool:
    return tag in (0x7FE00008, 0x7FE00009, 0x7FE00010) or (tag >> 16) in (0x0002,)


def _grouped(instances: Iterable[Instance], key) -> dict[str, list[Instance]]:  # noqa: ANN001
    groups: dict[str, list[Instance]] = defaultdict(list)
    for instance in instances:
        groups[key(instance)].append(instance)
    return groups


def _ordered(results: list[Dataset | None], number: str, uid: str) -> list[Dataset]:
    """Numbered results in numeric order (a stable page order for limit/offset), then by UID."""
    kept = [r for r in results if r is not None]
    return sorted(kept, key=lambda ds: (_number(ds.get(number)), str(ds.get(uid, ""))))


def _number(value: object) -> tuple[bool, float | str]:
    try:
        return (False, float(value))  # type: ignore[arg-type]
    except (TypeError, ValueError):
        return (True, str(value or ""))


def _page(results: list[Dataset], options: Options) -> list[Dataset]:
    end = None if options.limit is None else options.offset + options.limit
    return results[options.offset : end]


# --- matching ------------------------------------------------------------------------------


def _matches(result: Dataset, source: Dataset, filters: Iterable[Filter]) -> bool:
    return all(_one(_values(result, source, f.tag), f) for f in filters)


def _values(result: Dataset, source: Dataset, tag: int) -> list[str]:
    element = result.get(tag) if tag in result else source.get(tag)
    if element is None or element.value in (None, ""):
        return []
    value = element.value
    many = value if isinstance(value, list | tuple) or getattr(element, "VM", 1) > 1 else [value]
    return [str(v) for v in many]


def _one(values: list[str], wanted: Filter) -> bool:
    if wanted.value == "":
        return True
    if wanted.vr == "UI":
        return bool(set(values) & set(re.split(r"[,\\]", wanted.value)))
    if wanted.vr in RANGE_VRS and "-" in wanted.value:
        return any(_in_range(v, wanted.value) for v in values)
    if wanted.vr in STRING_VRS:
        fold = str.upper if wanted.vr == "PN" else str
        pattern = fold(wanted.value)
        return any(fnmatch.fnmatchcase(fold(v), pattern) for v in values)
    return any(v == wanted.value for v in values)


def _in_range(value: str, wanted: str) -> bool:
    low, _, high = wanted.partition("-")
    digits = value.replace(":", "").replace("-", "")
    return (not low or digits >= low) and (not high or digits[: len(high)] <= high)


def _tag(name: str) -> int:
    if re.fullmatch(r"[0-9A-Fa-f]{8}", name):
        return int(Tag(int(name, 16)))
    tag = tag_for_keyword(name)
    if tag is None:
        raise InputError("unknown attribute", fields=[{"field": "query", "error": "unknown key"}])
    return int(tag)


def _vr(tag: int) -> str:
    try:
        return dictionary_VR(tag)
    except KeyError:
        return "UN"


def _count(key: str, value: str) -> int:
    if not value.isdigit():
        raise InputError("not a count", fields=[{"field": key, "error": "not a count"}])
    return int(value)
