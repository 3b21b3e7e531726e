"""Reading the JSON files of a checkpoint directory: every way one can be bad is a ``LensError``.

``json.load`` raises ``ValueError`` on bad syntax or on an integer of more than 4,300 digits,
``RecursionError`` on a document nested some thousands deep, ``OSError`` when the file cannot
be read, and returns whatever JSON value the file holds. Callers want a dict or a
``SourceError`` naming the file and what was wrong with it.
"""

from __future__ import annotations

import json
import os
from typing import Any

from ckptlens.lenses import DEEP, SourceError, Violation, quote, too_deep

SITE = "json file"


def read_json_object(path: str | os.PathLike, what: str = "a JSON object") -> dict[str, Any]:
    """The JSON object in ``path``; ``SourceError`` (with the file's path) for anything else."""
    name = os.fspath(path)
    if os.path.exists(name) and not os.path.isfile(name) and not os.path.isdir(name):
        # a named pipe or a device: reading it could block forever
        raise SourceError([Violation(name, what, "not a regular file", SITE)])
    try:
        with open(name, encoding="utf-8") as handle:
            document = json.load(handle)
    except FileNotFoundError:
        raise SourceError([Violation(name, what, "no such file", SITE)]) from None
    except IsADirectoryError:
        raise SourceError([Violation(name, what, "a directory", SITE)]) from None
    except (OSError, ValueError) as error:
        raise SourceError([Violation(name, what, quote(str(error), 200), SITE)]) from None
    except RecursionError:
        raise SourceError([Violation(name, DEEP, "a more deeply nested document", SITE)]) from None
    if not isinstance(document, dict):
        raise SourceError([Violation(name, what, f"a JSON {type(document).__name__}", SITE)])
    if too_deep(document):
        raise SourceError([Violation(name, DEEP, "a more deeply nested document", SITE)])
    return document
