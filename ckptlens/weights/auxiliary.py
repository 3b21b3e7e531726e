"""Which other files of a source directory travel with a converted checkpoint.

A Hugging Face repository holds more than the weights: tokenizer files, a generation config,
a chat template, a README and licence, and, for remote-code formats, the Python files of the
model. It may also hold what must *not* follow the converted tensors: Meta's
``original/consolidated.00.pth`` (gigabytes of pickles), Mistral's ``consolidated.safetensors``,
a trainer's ``checkpoint-100/``. Only top-level regular files whose names say they belong with
a checkpoint are copied; everything else is left behind and reported with the reason, so
nothing is dropped silently and nothing stale rides along.
"""

from __future__ import annotations

import fnmatch
import os
import shutil
import stat

from attrs import frozen

from ckptlens.lenses.errors import SourceError, Violation

# Top-level names that belong with the weights, whatever layout they are converted to.
TRAVELS = (
    "tokenizer*",
    "vocab.*",
    "merges.txt",
    "special_tokens_map.json",
    "added_tokens.json",
    "*.tiktoken",
    "spiece.model",
    "sentencepiece*.model",
    "generation_config.json",
    "chat_template.json",
    "chat_template.jinja",
    "README*",
    "LICENSE*",
    "LICENCE*",
    "NOTICE*",
    "USE_POLICY*",
    ".gitattributes",
)
# The modeling code of a remote-code format: it describes the source format's config and
# tensor names, so it follows the weights only into the same format (or native, and back).
REMOTE_CODE = ("configuration_*.py", "modeling_*.py", "tokenization_*.py")
WEIGHTS_SUFFIXES = (".safetensors", ".bin", ".pt", ".pth", ".ckpt", ".pkl", ".msgpack", ".h5")
SITE = "auxiliary files"


@frozen
class Auxiliary:
    """What to copy (names in the source directory) and what stays behind, with why."""

    copied: tuple[str, ...]
    left_behind: tuple[tuple[str, str], ...]

    def describe(self) -> list[str]:
        lines = [f"copied with the weights: {', '.join(self.copied) or 'nothing'}"]
        lines += [f"left behind: {name} ({why})" for name, why in self.left_behind]
        return lines


def select(
    directory: str, consumed: set[str], *, keep_remote_code: bool, skip: set[str] = frozenset()
) -> Auxiliary:
    """Sort the entries of ``directory``; ``consumed`` are the files the conversion reads
    (config, index, shards), ``skip`` entries that are not the source's (a staging directory).
    A file that should be copied but cannot be (a named pipe, a dangling or looping link)
    is a ``SourceError`` before anything is written."""
    copied, left, problems = [], [], []
    for name in sorted(os.listdir(directory)):
        if name in consumed or name in skip:
            continue
        path = os.path.join(directory, name)
        why = _reason_to_leave(name, path, keep_remote_code)
        if why is not None:
            left.append((name, why))
            continue
        kind = _kind(path)
        if kind != "file":
            problems.append(
                Violation(path, "a regular file (or a link to one) to copy", kind, SITE)
            )
            continue
        copied.append(name)
    if problems:
        raise SourceError(problems)
    return Auxiliary(tuple(copied), tuple(left))


def _reason_to_leave(name: str, path: str, keep_remote_code: bool) -> str | None:
    if os.path.isdir(path) and not os.path.islink(path):
        return "a folder: original or training-run weights do not match the converted tensors"
    if name.endswith(WEIGHTS_SUFFIXES):
        if name.endswith(".safetensors"):
            return "weights the index does not list (not part of this checkpoint)"
        return "weights in another format (the converted tensors replace them)"
    if _matches(name, REMOTE_CODE):
        return None if keep_remote_code else "the source format's modeling code"
    if _matches(name, TRAVELS):
        return None
    return "not a file that travels with a checkpoint (tokenizer, generation config, README...)"


def _matches(name: str, patterns: tuple[str, ...]) -> bool:
    return any(fnmatch.fnmatchcase(name, pattern) for pattern in patterns)


def _kind(path: str) -> str:
    try:
        mode = os.stat(path).st_mode
    except OSError as error:  # a dangling link, a link loop
        return f"an unreadable entry ({error.strerror})"
    if stat.S_ISREG(mode):
        return "file"
    if stat.S_ISFIFO(mode):
        return "a named pipe"
    return "a special file"


def copy_auxiliary(directory: str, auxiliary: Auxiliary, staging: str) -> None:
    """Copy the selected files (links followed: the copy is a plain file)."""
    for name in auxiliary.copied:
        shutil.copyfile(os.path.join(directory, name), os.path.join(staging, name))
