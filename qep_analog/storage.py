"""Atomic, versioned storage of JSON and YAML documents."""

from __future__ import annotations

import fcntl
import json
import os
import re
import tempfile
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import yaml

from qep_analog.errors import QEPError, StorageError

#: a name that may become a file or folder name: letters, digits and ``-_.``, not ``.`` or ``..``
PLAIN_NAME = re.compile(r"^[A-Za-z0-9_.-]+$")
#: the lock file of a run folder (held while a process writes the folder)
LOCK_FILE = ".lock"


def plain_name(value: str, what: str, error: type[QEPError] = StorageError) -> str:
    """``value`` if it is a plain name (letters, digits, ``-_.``; no path separator; not ``.`` or
    ``..``), else a one-line ``error`` naming ``what``."""
    if not PLAIN_NAME.match(value) or value in (".", ".."):
        raise error(
            f"{what} {value!r} is not a plain name (letters, digits, '-', '_', '.'; "
            "no path separators; not '.' or '..')"
        )
    return value


def confined_path(
    reference: str | Path, folder: str | Path, what: str, error: type[QEPError] = StorageError
) -> Path:
    """The path ``reference`` read from a file in ``folder``, taken relative to ``folder`` and kept
    inside it: an absolute path or one that leaves ``folder`` (``..``, a symbolic link) is a one-line
    ``error`` naming ``what``."""
    if Path(reference).is_absolute():
        raise error(f"{what} {str(reference)!r} is absolute; a path in a file is relative to {folder}")
    base = Path(folder)
    path = base / reference
    if not path.resolve().is_relative_to(base.resolve()):
        raise error(f"{what} {str(reference)!r} leaves its folder {base}; paths in a file stay inside it")
    return path


def file_output(value: str, where: str, error: type[QEPError] = StorageError) -> Path:
    """The run folder ``output:`` of a configuration file, relative to the working directory as
    always; one that is absolute or leaves the working directory is a one-line ``error`` (a shared
    file must not write elsewhere; ``--output`` on the command line may)."""
    path = Path(value)
    cwd = Path.cwd()
    if path.is_absolute() or not (cwd / path).resolve().is_relative_to(cwd.resolve()):
        raise error(
            f"{where}: output {value!r} is outside the working directory {cwd}; an output from a file "
            "stays inside it (give --output on the command line to write elsewhere)"
        )
    return path


@contextmanager
def folder_lock(folder: str | Path, what: str = "run folder") -> Iterator[None]:
    """Hold an exclusive ``fcntl.flock`` on ``folder/.lock`` (created with the folder) while the
    block runs; a folder another process holds is a one-line :class:`StorageError` at once (the lock
    dies with its process, so a killed run leaves nothing to clean)."""
    directory = Path(folder)
    directory.mkdir(parents=True, exist_ok=True)
    lock = directory / LOCK_FILE
    fd = os.open(lock, os.O_RDWR | os.O_CREAT, 0o666)
    try:
        try:
            fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            raise StorageError(
                f"{what} {directory}: another process is writing it (it holds {lock}); wait for it "
                "to finish or choose another folder"
            ) from None
        try:
            yield
        finally:
            fcntl.flock(fd, fcntl.LOCK_UN)
    finally:
        os.close(fd)


def temporary_sibling(target: Path, suffix: str = ".tmp") -> str:
    """A new empty file next to ``target`` with the permissions a plain ``open`` would give."""
    target.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(dir=target.parent, prefix=f".{target.name}.", suffix=suffix)
    os.close(fd)
    umask = os.umask(0)
    os.umask(umask)
    os.chmod(tmp, 0o666 & ~umask)
    return tmp


def atomic_write_text(path: str | Path, text: str) -> None:
    """Write ``text`` to ``path`` atomically: a temporary file in the same folder, then a rename."""
    target = Path(path)
    tmp = temporary_sibling(target)
    try:
        with open(tmp, "w", encoding="utf-8") as handle:
            handle.write(text)
            handle.flush()
            os.fsync(handle.fileno())
        os.replace(tmp, target)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise


def write_json(path: str | Path, document: dict[str, Any], schema: str) -> None:
    """Write ``document`` under ``schema`` (stored in its ``"schema"`` key) atomically."""
    if document.get("schema", schema) != schema:
        raise StorageError(f"{path}: document schema {document['schema']!r} is not {schema!r}")
    text = json.dumps({"schema": schema, **document}, indent=2, allow_nan=False)
    atomic_write_text(path, text + "\n")


def load_json(path: str | Path) -> Any:
    """The parsed JSON of a file; a missing, unreadable or malformed file is a one-line
    :class:`StorageError`."""
    try:
        return json.loads(Path(path).read_text(encoding="utf-8"))
    except FileNotFoundError:
        raise StorageError(f"{path}: no such file") from None
    except (OSError, UnicodeDecodeError) as exc:
        raise StorageError(f"{path}: cannot be read ({type(exc).__name__})") from None
    except json.JSONDecodeError as exc:
        raise StorageError(f"{path}: not valid JSON ({exc.msg} at line {exc.lineno})") from None


def read_json(path: str | Path, schema: str | tuple[str, ...]) -> dict[str, Any]:
    """Read a JSON document written by :func:`write_json` and check its schema (one of ``schema``
    when a tuple: a reader of several versions dispatches on ``document["schema"]``)."""
    document = load_json(path)
    accepted = (schema,) if isinstance(schema, str) else schema
    if not isinstance(document, dict) or document.get("schema") not in accepted:
        found = document.get("schema") if isinstance(document, dict) else type(document).__name__
        expected = " or ".join(repr(s) for s in accepted)
        raise StorageError(f"{path}: schema {found!r}, expected {expected}")
    return document


class _StrictLoader(yaml.SafeLoader):
    """A safe YAML loader that rejects duplicate keys instead of keeping the last one."""


def _construct_strict_mapping(loader: _StrictLoader, node: yaml.MappingNode) -> dict[Any, Any]:
    seen: set[Any] = set()
    for key_node, _ in node.value:
        key = loader.construct_object(key_node)
        if not isinstance(key, str | int | float | bool | None):
            line = key_node.start_mark.line + 1
            raise StorageError(f"a {type(key).__name__} used as a key at line {line}")
        if key in seen:
            raise StorageError(f"duplicate key {key!r} at line {key_node.start_mark.line + 1}")
        seen.add(key)
    return loader.construct_mapping(node)


_StrictLoader.add_constructor(yaml.resolver.BaseResolver.DEFAULT_MAPPING_TAG, _construct_strict_mapping)


# YAML 1.1 reads 1e-3 (no dot) as a string; accept the exponent notation people write.
_StrictLoader.add_implicit_resolver(
    "tag:yaml.org,2002:float",
    re.compile(
        r"""^(?:[-+]?(?:[0-9][0-9_]*)\.[0-9_]*(?:[eE][-+]?[0-9]+)?
        |[-+]?(?:[0-9][0-9_]*)(?:[eE][-+]?[0-9]+)
        |\.[0-9_]+(?:[eE][-+][0-9]+)?
        |[-+]?\.(?:inf|Inf|INF)
        |\.(?:nan|NaN|NAN))$""",
        re.VERBOSE,
    ),
    list("-+0123456789."),
)


def read_yaml(path: str | Path, error: type[QEPError] = StorageError) -> Any:
    """Read a YAML file; a missing or unreadable file, duplicate keys and syntax errors raise a
    one-line ``error`` (:class:`StorageError`, or the caller's own kind, e.g. ``ConfigError``)."""
    try:
        return _read_yaml(path)
    except StorageError as exc:
        if error is StorageError:
            raise
        raise error(str(exc)) from None


def _read_yaml(path: str | Path) -> Any:
    try:
        text = Path(path).read_text(encoding="utf-8")
    except FileNotFoundError:
        raise StorageError(f"{path}: no such file") from None
    except IsADirectoryError:
        raise StorageError(f"{path}: is a directory, not a file") from None
    except (OSError, UnicodeDecodeError) as exc:
        raise StorageError(f"{path}: cannot be read ({type(exc).__name__})") from None
    try:
        return yaml.load(text, Loader=_StrictLoader)  # a SafeLoader subclass
    except StorageError as exc:
        raise StorageError(f"{path}: {exc}") from None
    except yaml.YAMLError as exc:
        mark = getattr(exc, "problem_mark", None)
        where = f" at line {mark.line + 1}" if mark is not None else ""
        problem = getattr(exc, "problem", None) or str(exc).splitlines()[0]
        raise StorageError(f"{path}: invalid YAML{where}: {problem}") from None
