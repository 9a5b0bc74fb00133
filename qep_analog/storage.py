"""Atomic, versioned storage of JSON and YAML documents."""

from __future__ import annotations

import fcntl
import json
import os
import re
import stat
import tempfile
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import yaml

from qep_analog.errors import QEPError, StorageError

#: The largest input file read (bytes): a bigger file, like ``/dev/zero``, is refused, not read.
MAX_FILE_BYTES = 64 * 2**20
#: The deepest nesting of lists and mappings in a YAML or JSON file.
MAX_DEPTH = 100
#: The most nodes a YAML document may hold once its aliases (``*name``) are expanded.
MAX_NODES = 1_000_000


def read_input_bytes(path: str | Path, limit: int = MAX_FILE_BYTES) -> bytes:
    """The bytes of the regular file ``path``, at most ``limit`` of them: a directory, FIFO or device,
    or a bigger file, is a one-line :class:`StorageError` (nothing is read from it); a missing or
    unreadable file too."""
    try:
        info = os.stat(path)
    except FileNotFoundError:
        raise StorageError(f"{path}: no such file") from None
    except OSError as exc:
        raise StorageError(f"{path}: cannot be read ({type(exc).__name__})") from None
    if stat.S_ISDIR(info.st_mode):
        raise StorageError(f"{path}: is a directory, not a file")
    if not stat.S_ISREG(info.st_mode):
        raise StorageError(f"{path}: is not a regular file (a FIFO, device or socket)")
    if info.st_size > limit:
        raise StorageError(f"{path}: {info.st_size} bytes, more than the limit of {limit} bytes")
    try:
        # O_NONBLOCK: a file swapped for a FIFO after the check does not block the open
        fd = os.open(path, os.O_RDONLY | getattr(os, "O_NONBLOCK", 0))
    except OSError as exc:
        raise StorageError(f"{path}: cannot be read ({type(exc).__name__})") from None
    try:
        if not stat.S_ISREG(os.fstat(fd).st_mode):
            raise StorageError(f"{path}: is not a regular file (a FIFO, device or socket)")
        with os.fdopen(fd, "rb", closefd=False) as handle:
            data = handle.read(limit + 1)
    except OSError as exc:
        raise StorageError(f"{path}: cannot be read ({type(exc).__name__})") from None
    finally:
        os.close(fd)
    if len(data) > limit:
        raise StorageError(f"{path}: more than the limit of {limit} bytes")
    return data


def read_input_text(path: str | Path, limit: int = MAX_FILE_BYTES) -> str:
    """The UTF-8 text of the regular file ``path`` (see :func:`read_input_bytes`)."""
    try:
        return read_input_bytes(path, limit).decode("utf-8")
    except UnicodeDecodeError:
        raise StorageError(f"{path}: cannot be read (UnicodeDecodeError)") from None


_JSON_STRING = re.compile(r'"(?:[^"\\]|\\.)*"')
_JSON_BRACKET = re.compile(r"[\[\]{}]")


def _json_depth(text: str) -> int:
    """The deepest nesting of brackets outside strings (checked before parsing: ``json`` recurses)."""
    depth = deepest = 0
    for match in _JSON_BRACKET.finditer(_JSON_STRING.sub("", text)):
        depth += 1 if match.group() in "[{" else -1
        deepest = max(deepest, depth)
    return deepest


def _refuse_constant(name: str) -> Any:
    raise ValueError(f"{name} is not a JSON number")


def parse_json_text(text: str, where: str) -> Any:
    """Parse JSON ``text`` (named ``where`` in messages): nesting beyond :data:`MAX_DEPTH` and the
    non-standard ``NaN``/``Infinity`` are a one-line :class:`StorageError`, as is malformed JSON."""
    if _json_depth(text) > MAX_DEPTH:
        raise StorageError(f"{where}: nesting deeper than {MAX_DEPTH} levels")
    try:
        return json.loads(text, parse_constant=_refuse_constant)
    except json.JSONDecodeError as exc:
        raise StorageError(f"{where}: not valid JSON ({exc.msg} at line {exc.lineno})") from None
    except ValueError as exc:
        raise StorageError(f"{where}: not valid JSON ({exc})") from None
    except RecursionError:
        raise StorageError(f"{where}: nesting deeper than {MAX_DEPTH} levels") from None


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
    dies with its process, so a killed run leaves nothing to clean). A folder this call created and
    the block left empty is removed again, so a run that fails before it writes leaves no trace."""
    directory = Path(folder)
    if directory.exists() and not directory.is_dir():
        raise StorageError(f"{what} {directory}: is a file, not a folder")
    created = [p for p in (directory, *directory.parents) if not p.exists()]
    try:
        directory.mkdir(parents=True, exist_ok=True)
        lock = directory / LOCK_FILE
        fd = os.open(lock, os.O_RDWR | os.O_CREAT, 0o666)
    except OSError as exc:
        raise StorageError(f"{what} {directory}: cannot be created ({type(exc).__name__})") from None
    try:
        try:
            fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
            held = _same_file(fd, lock)
        except BlockingIOError:
            held = False
        if not held:
            raise StorageError(
                f"{what} {directory}: another process is writing it (it holds {lock}); wait for it "
                "to finish or choose another folder"
            )
        try:
            yield
        finally:
            if created:
                _remove_if_empty(created)
            fcntl.flock(fd, fcntl.LOCK_UN)
    finally:
        os.close(fd)


def _same_file(fd: int, path: Path) -> bool:
    """Whether the open ``fd`` is still the file at ``path`` (a lock file removed by a run that
    tidied its empty folder is not the lock of the folder any more)."""
    try:
        return os.path.samestat(os.fstat(fd), os.stat(path))
    except FileNotFoundError:
        return False


def _remove_if_empty(created: list[Path]) -> None:
    """Remove the folders ``created`` (innermost first) if the run left nothing but its lock file in
    them (called under the lock)."""
    folder = created[0]
    try:
        if [p.name for p in folder.iterdir()] != [LOCK_FILE]:
            return
        (folder / LOCK_FILE).unlink()
        for directory in created:
            directory.rmdir()
    except OSError:
        pass  # something appeared meanwhile: the folder stays


def present_files(folder: str | Path, names: Sequence[str]) -> list[str]:
    """The names of ``names`` that exist in ``folder``, in that order."""
    return [name for name in names if (Path(folder) / name).exists()]


def refuse_held_run(folder: str | Path, held: Sequence[str], remedy: str) -> None:
    """A one-line :class:`StorageError` when ``held`` (the files of a run found in ``folder``) is not
    empty: ``FOLDER: already holds a run (FILES); REMEDY``."""
    if held:
        raise StorageError(f"{folder}: already holds a run ({', '.join(held)}); {remedy}")


#: the suffixes of the temporary files :func:`temporary_sibling` makes (``.tmp``; figures ``.png``)
TEMPORARY_SUFFIXES = (".tmp", ".png")
#: the name of such a file: ``.TARGET.`` + the 8 random characters of :func:`tempfile.mkstemp` + suffix
_TEMPORARY_NAME = re.compile(
    r"^\..+\.[a-z0-9_]{8}(?:" + "|".join(map(re.escape, TEMPORARY_SUFFIXES)) + ")$"
)


def temporary_sibling(target: Path, suffix: str = ".tmp") -> str:
    """A new empty file next to ``target`` with the permissions a plain ``open`` would give."""
    if suffix not in TEMPORARY_SUFFIXES:
        raise ValueError(f"temporary file suffix {suffix!r} is not one of {TEMPORARY_SUFFIXES}")
    target.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(dir=target.parent, prefix=f".{target.name}.", suffix=suffix)
    os.close(fd)
    umask = os.umask(0)
    os.umask(umask)
    os.chmod(tmp, 0o666 & ~umask)
    return tmp


def remove_stale_temporaries(folder: str | Path) -> list[str]:
    """Remove the temporary files of atomic writes into ``folder`` (not its sub-folders) that a killed
    process left behind, written but never renamed; the names removed. Call it only where no other
    process writes the folder: the holder of its lock (:func:`folder_lock`), or the writer of a job
    bundle that has no manifest yet."""
    try:
        entries = list(os.scandir(folder))
    except FileNotFoundError:
        return []
    removed = []
    for entry in entries:
        if _TEMPORARY_NAME.match(entry.name) and entry.is_file(follow_symlinks=False):
            Path(entry.path).unlink(missing_ok=True)
            removed.append(entry.name)
    return sorted(removed)


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
    """The parsed JSON of a file; a missing, unreadable, oversized (:data:`MAX_FILE_BYTES`), too deeply
    nested (:data:`MAX_DEPTH`) or malformed file is a one-line :class:`StorageError`."""
    return parse_json_text(read_input_text(path), str(path))


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
    """A safe YAML loader that rejects duplicate keys instead of keeping the last one, nesting deeper
    than :data:`MAX_DEPTH` (PyYAML composes recursively) and documents whose aliases expand to more
    than :data:`MAX_NODES` nodes (a "billion laughs" file is a small graph that any printing or
    copying would expand)."""

    _depth = 0

    def compose_node(self, parent: Any, index: Any) -> Any:
        self._depth += 1
        try:
            if self._depth > MAX_DEPTH:
                line = self.peek_event().start_mark.line + 1
                raise StorageError(f"nesting deeper than {MAX_DEPTH} levels at line {line}")
            return super().compose_node(parent, index)
        finally:
            self._depth -= 1

    def construct_document(self, node: Any) -> Any:
        nodes = _expanded_nodes(node)
        if nodes > MAX_NODES:
            raise StorageError(f"aliases expand the document to more than {MAX_NODES} nodes")
        return super().construct_document(node)


def _expanded_nodes(root: yaml.Node) -> int:
    """The number of nodes of ``root`` with every alias expanded (more than :data:`MAX_NODES` for a
    recursive alias); each distinct node is visited once, so this costs the size of the file."""
    sizes: dict[int, int] = {}
    in_progress: set[int] = set()

    def size(node: yaml.Node) -> int:
        key = id(node)
        if key in sizes:
            return sizes[key]
        if key in in_progress:  # an alias inside the node it names: no finite expansion
            return MAX_NODES + 1
        in_progress.add(key)
        total = 1
        if isinstance(node, yaml.SequenceNode):
            for child in node.value:
                total = min(total + size(child), MAX_NODES + 1)
        elif isinstance(node, yaml.MappingNode):
            for key_node, value_node in node.value:
                total = min(total + size(key_node) + size(value_node), MAX_NODES + 1)
        in_progress.discard(key)
        sizes[key] = total
        return total

    return size(root)


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
    """Read a YAML file; a missing, unreadable or oversized file (not a regular file, or over
    :data:`MAX_FILE_BYTES`), duplicate keys, nesting beyond :data:`MAX_DEPTH`, aliases expanding
    beyond :data:`MAX_NODES` nodes and syntax errors raise a one-line ``error``
    (:class:`StorageError`, or the caller's own kind, e.g. ``ConfigError``)."""
    try:
        return _read_yaml(path)
    except StorageError as exc:
        if error is StorageError:
            raise
        raise error(str(exc)) from None


def _read_yaml(path: str | Path) -> Any:
    text = read_input_text(path)
    try:
        return yaml.load(text, Loader=_StrictLoader)  # a SafeLoader subclass
    except StorageError as exc:
        raise StorageError(f"{path}: {exc}") from None
    except yaml.YAMLError as exc:
        mark = getattr(exc, "problem_mark", None)
        where = f" at line {mark.line + 1}" if mark is not None else ""
        problem = getattr(exc, "problem", None) or str(exc).splitlines()[0]
        raise StorageError(f"{path}: invalid YAML{where}: {problem}") from None
    except RecursionError:  # (a nesting bound below MAX_DEPTH leaves Python's stack to spare)
        raise StorageError(f"{path}: nesting deeper than {MAX_DEPTH} levels") from None
