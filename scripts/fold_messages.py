"""Fold entries of the old two-language dict into the keyed catalogue (a merge aid).

Before the catalogue became ``pacsbridge/messages/`` (English beside the key, Italian in the
``.po``, docs/errors.md), messages were ``"key": {"it": ..., "en": ...}`` entries of
``src/pacsbridge/messages.py``. A branch that still adds them: save its version of that file
(``git show BRANCH:src/pacsbridge/messages.py > /tmp/old.py``) and run, from the repository::

    PYTHONPATH=src python3 scripts/fold_messages.py /tmp/old.py

It prints the ``M_(...)`` lines of the keys the catalogue lacks (paste them into
``messages/catalogue.py``) and, after they are pasted and the extraction of
docs/operator-pages.md has run, writes their Italian into ``it/LC_MESSAGES/pacsbridge.po``
(then ``pybabel compile``).
"""

from __future__ import annotations

import ast
import json
import sys
from pathlib import Path

from babel.messages.pofile import read_po, write_po

from pacsbridge.messages import CATALOGUE, LOCALE_DIR


def old_entries(path: Path) -> dict[str, dict[str, str]]:
    """The literal ``"key": {"it": ..., "en": ...}`` entries of an old messages.py."""
    found: dict[str, dict[str, str]] = {}
    for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"))):
        if isinstance(node, ast.Dict):
            for key, value in zip(node.keys, node.values, strict=True):
                if isinstance(key, ast.Constant) and isinstance(value, ast.Dict):
                    try:
                        entry = ast.literal_eval(value)
                    except ValueError:
                        continue
                    if isinstance(entry, dict) and {"it", "en"} <= set(entry):
                        found[key.value] = entry
    return found


def main(path: Path) -> None:
    old = old_entries(path)
    new = {k: v for k, v in old.items() if k not in CATALOGUE}
    for key, entry in new.items():
        print(f"    M_({json.dumps(key)}, {json.dumps(entry['en'], ensure_ascii=False)}),")
    po = LOCALE_DIR / "it" / "LC_MESSAGES" / "pacsbridge.po"
    with open(po, "rb") as handle:
        catalogue = read_po(handle)
    filled = 0
    for message in catalogue:
        entry = old.get(message.context or "")
        if entry and not message.string:
            message.string, filled = entry["it"], filled + 1
    with open(po, "wb") as handle:
        write_po(handle, catalogue, width=76)
    print(f"# {len(new)} keys to paste; {filled} Italian msgstr written", file=sys.stderr)


if __name__ == "__main__":
    main(Path(sys.argv[1]))
