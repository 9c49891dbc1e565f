"""media.inspect on deflated files (PS3.5 A.5): a deflate bomb is refused before pydicom reads it.

pydicom inflates a deflated data set whole, in memory, before it can read one attribute: a
125 KB file holding 8000 x 8000 zero pixels took 244 MB of the analysis's memory. The
inflated size is now counted first, in bounded chunks.
"""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import numpy as np
from pydicom.uid import DeflatedExplicitVRLittleEndian

from pacsbridge import media
from pacsbridge.media.model import UNREADABLE_FILE

from .helpers import one_instance, save

MAX_GROWTH_MB = 40

CHILD = """
import json, resource, sys
from pathlib import Path
from pacsbridge import media
before = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
report = media.inspect(Path(sys.argv[1]))
after = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
print(json.dumps({"growth_kb": after - before, "problems": [p.code for p in report.problems],
                  "instances": len(report.instances)}))
"""


def deflated(path: Path, rows: int, columns: int) -> Path:
    ds = one_instance(rows=rows, columns=columns)
    ds.PixelData = np.zeros((rows, columns), dtype="<u2").tobytes()
    ds.file_meta.TransferSyntaxUID = DeflatedExplicitVRLittleEndian
    return save(ds, path)


def test_deflate_bomb_is_unreadable_and_costs_little_memory(tmp_path):
    path = deflated(tmp_path / "media" / "BOMB", 8000, 8000)  # 128 MB inflated
    assert path.stat().st_size < 200_000

    done = subprocess.run(
        [sys.executable, "-c", CHILD, str(path.parent)],
        capture_output=True,
        text=True,
        timeout=120,
        check=True,
    )
    result = json.loads(done.stdout.strip().splitlines()[-1])

    assert result["problems"] == [UNREADABLE_FILE] and result["instances"] == 0
    growth = result["growth_kb"] // 1024
    assert result["growth_kb"] < MAX_GROWTH_MB * 1024, f"peak memory grew by {growth} MB"


def test_ordinary_deflated_file_is_still_read(tmp_path):
    ds = one_instance()  # the sample's gradient deflates at a modest ratio
    ds.file_meta.TransferSyntaxUID = DeflatedExplicitVRLittleEndian
    save(ds, tmp_path / "DEFL")

    report = media.inspect(tmp_path)

    assert report.problems == []
    assert [i.transfer_syntax_uid for i in report.instances] == [DeflatedExplicitVRLittleEndian]
