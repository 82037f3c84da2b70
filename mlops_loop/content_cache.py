"""A content-addressed cache of answers that depend only on their inputs, kept on disk between processes.

Two kinds of answer are kept here: what synth asks the SageMaker SDK for (:mod:`.training.sdk_cache`)
and what cfn-lint finds in each template (:mod:`.tools.lint`). Each answer is kept under a key that
covers every input:

* the request itself (its kind and a JSON-able description);
* the generator: the bytes of every repository file the answer can depend on (``sources``, globs
  relative to the repository root, given by each user of the cache);
* the installed Python distributions (name and version of every one) and the Python version.

A changed input is a different key, so an entry is never stale; there is no expiry and no
invalidation. An empty ``generator-<digest>`` file marks a directory that holds answers of that generator
(:meth:`ContentCache.holds_answers`: whether a synth starts the SDK helper process at once). The
directory (``.cache/derived`` in the repository, ignored by git) is safe to delete at any time. ``MLOPS_LOOP_CACHE_DIR`` moves it; ``MLOPS_LOOP_CACHE_DIR=off`` turns the disk cache off.

Nothing here can produce a wrong answer, only a slower one: an entry that is unreadable, partial,
or whose content does not match its recorded digest is regenerated (with a one-line notice on
stderr for each), and every answer is generated afresh when the directory cannot be written (one
notice per process).
Entries are written to a temporary file and renamed into place, so two processes filling the
same entry at once each write a whole, identical file and a reader never sees half of one.
"""

from __future__ import annotations

import functools
import hashlib
import json
import os
import re
import sys
import tempfile
from pathlib import Path
from typing import Any, Callable, Dict, Iterable, Optional, Sequence, Tuple

CACHE_DIR_ENV = "MLOPS_LOOP_CACHE_DIR"
CACHE_OFF = "off"
# Bumped when the entry format changes.
_FORMAT = 1

REPO_ROOT = Path(__file__).resolve().parents[1]
DEFAULT_CACHE_DIR = REPO_ROOT / ".cache" / "derived"


@functools.lru_cache(maxsize=None)
def installed_distributions() -> Tuple[Tuple[str, str], ...]:
    """Name and version of every distribution installed on ``sys.path``, sorted; read once per process.

    Read from the names of the metadata directories (``aws_cdk_lib-2.x.dist-info``: the name normalised, then
    the version; for a legacy ``.egg-info`` the version part may carry a Python tag), where
    ``importlib.metadata`` looks: parsing every distribution's METADATA file instead took 0.13 s of each synth.
    A directory inside a package (one whose parent holds ``__init__.py``, as setuptools' ``_vendor``) is skipped:
    what the package vendors there is part of it, so the answer does not depend on which packages were imported.
    """
    found = set()
    for entry in sys.path:
        # Absolute, so that "" (the current directory) is judged by its parent too, as every other entry is.
        directory = Path(entry or ".").absolute()
        # A package's own vendored copies, which it puts on sys.path when imported (setuptools its _vendor
        # directory, a dozen distributions): they come with the package's version. Read, they made the digest
        # of a process that had imported setuptools differ from the others', missing every answer they kept.
        if (directory.parent / "__init__.py").exists():
            continue
        try:
            children = list(directory.iterdir())
        except OSError:  # a zip file, or a path that does not exist
            continue
        for child in children:
            if child.suffix in (".dist-info", ".egg-info"):
                name, _, version = child.stem.partition("-")
                # Installers normalise the name in the directory's name, but not every one did (setuptools
                # vendors ``jaraco.text-4.0.0.dist-info``, on sys.path once pkg_resources is imported).
                found.add((re.sub(r"[-_.]+", "_", name).lower(), version))
    return tuple(sorted(found))


def notice(message: str) -> None:
    """Print ``message`` as one line on stderr, marked as ours."""
    print(f"mlops-loop: {message}", file=sys.stderr)


class ContentCache:
    """Answers kept by key, in memory and (unless ``directory`` is None) on disk."""

    def __init__(
        self,
        directory: Optional[Path],
        *,
        sources: Sequence[str],
        root: Path = REPO_ROOT,
        distributions: Callable[[], Iterable[Tuple[str, str]]] = installed_distributions,
    ) -> None:
        """``sources`` (globs under ``root``) and ``distributions`` (name, version pairs) define the generator
        digest; tests substitute ``root`` and ``distributions``."""
        self.directory = directory
        self._root, self._sources, self._distributions = root, tuple(sources), distributions
        self._memory: Dict[str, str] = {}
        self._pending: Dict[str, Callable[[], str]] = {}  # key -> waits for an answer being created
        self._generator: Optional[str] = None
        self._writable = directory is not None  # until a write fails
        self._marked = False  # the directory has this generator's marker (see holds_answers)

    def generator_digest(self) -> str:
        """Digest of the generator's sources and of the installed distributions (once per process)."""
        if self._generator is None:
            digest = hashlib.sha256()
            digest.update(f"format {_FORMAT}\npython {sys.version_info[:3]}\n".encode())
            for name, version in sorted(self._distributions()):
                digest.update(f"dist {name}=={version}\n".encode())
            for path in sorted({p for pattern in self._sources for p in self._root.glob(pattern)}):
                digest.update(f"file {path.relative_to(self._root).as_posix()}\n".encode())
                digest.update(hashlib.sha256(path.read_bytes()).digest())
            self._generator = digest.hexdigest()
        return self._generator

    def holds_answers(self) -> bool:
        """Whether the directory holds an answer of the current generator: a marker file named after the
        generator digest is written with the first answer each process keeps (False when the cache is off)."""
        return self._marked or (self.directory is not None and self._marker(self.directory).exists())

    def _marker(self, directory: Path) -> Path:
        return directory / f"generator-{self.generator_digest()}"

    def key(self, kind: str, request: Any) -> str:
        """The entry name of ``request`` (JSON-able) of ``kind``: a digest of it and of the generator."""
        text = json.dumps({"kind": kind, "request": request, "generator": self.generator_digest()},
                          sort_keys=True, default=repr)
        return f"{kind}-{hashlib.sha256(text.encode()).hexdigest()}"

    def get(self, kind: str, request: Any) -> Optional[str]:
        """The kept answer to ``request`` (from memory, else from disk), or None."""
        key = self.key(kind, request)
        value = self._memory.get(key)
        if value is None:
            value = self._read(key)
            if value is not None:
                self._memory[key] = value
        return value

    def put(self, kind: str, request: Any, value: str) -> None:
        """Keep ``value`` as the answer to ``request``."""
        key = self.key(kind, request)
        self._write(key, value)
        self._memory[key] = value

    def get_or_create(self, kind: str, request: Any, create: Callable[[], str]) -> str:
        """The answer to ``request``: from memory, else from disk, else ``create()`` (then kept)."""
        def start() -> Callable[[], str]:
            created = create()
            return lambda: created

        return self.get_or_create_later(kind, request, start)()

    def get_or_create_later(self, kind: str, request: Any, start: Callable[[], Callable[[], str]]) -> Callable[[], str]:
        """:meth:`get_or_create` with the creation begun now by ``start()`` (which returns a function that waits for
        it): the returned function gives the answer, kept when it first arrives. The same request asked again
        meanwhile waits for the same creation."""
        value = self.get(kind, request)
        if value is not None:
            return lambda: value
        key = self.key(kind, request)
        pending = self._pending.get(key)
        if pending is None:
            waiting = start()

            def answer() -> str:
                created = self._memory.get(key)
                if created is None:
                    created = waiting()
                    self.put(kind, request, created)
                return created

            pending = self._pending[key] = answer
        return pending

    @staticmethod
    def _path(directory: Path, key: str) -> Path:
        return directory / f"{key}.json"

    def _read(self, key: str) -> Optional[str]:
        if self.directory is None:
            return None
        path = self._path(self.directory, key)
        try:
            entry = json.loads(path.read_text(encoding="utf-8"))
        except (FileNotFoundError, NotADirectoryError):  # not cached yet, or no directory to cache in
            return None
        except (OSError, ValueError) as error:
            notice(f"cache entry {path} is unreadable ({error.__class__.__name__}); regenerating it")
            return None
        value = entry.get("value") if isinstance(entry, dict) else None
        if (
            not isinstance(value, str)
            or entry.get("key") != key
            or entry.get("sha256") != hashlib.sha256(value.encode()).hexdigest()
        ):
            notice(f"cache entry {path} does not match its digest; regenerating it")
            return None
        return value

    def _write(self, key: str, value: str) -> None:
        directory = self.directory
        if not self._writable or directory is None:  # (never writable without a directory)
            return
        entry = json.dumps({"key": key, "sha256": hashlib.sha256(value.encode()).hexdigest(), "value": value})
        try:
            directory.mkdir(parents=True, exist_ok=True)
            handle, temporary = tempfile.mkstemp(dir=directory, prefix=f".{key}.", suffix=".tmp")
            try:
                with os.fdopen(handle, "w", encoding="utf-8") as out:
                    out.write(entry)
                os.replace(temporary, self._path(directory, key))
            except BaseException:
                os.unlink(temporary)
                raise
            if not self._marked:
                self._marker(directory).touch()
                self._marked = True
        except OSError as error:
            self._writable = False
            notice(f"cache directory {directory} is not writable ({error.strerror or error}); "
                    "generating without a disk cache")


def configured_directory() -> Optional[Path]:
    """The cache directory in effect (``MLOPS_LOOP_CACHE_DIR`` or the default); None when it is off."""
    value = os.environ.get(CACHE_DIR_ENV, "").strip()
    if value.lower() == CACHE_OFF:
        return None
    return Path(value) if value else DEFAULT_CACHE_DIR


_CACHES: Dict[Tuple[Optional[Path], Tuple[str, ...]], ContentCache] = {}


def cache_of(sources: Sequence[str]) -> ContentCache:
    """The cache of the directory configured now for answers generated by ``sources`` (one per directory and
    generator per process, its memory shared)."""
    directory, sources = configured_directory(), tuple(sources)
    cache = _CACHES.get((directory, sources))
    if cache is None:
        cache = _CACHES[(directory, sources)] = ContentCache(directory, sources=sources)
    return cache
