"""A second process that runs synth's SageMaker SDK work while the app builds its constructs.

On an empty cache, the app's first image lookup waited about 2.7 s for the SDK to import, and the pipeline
definitions took another second, on the one core the app and the CDK's Node process take turns on; the
machines this runs on have two. So ``app.py`` calls :func:`start_if_cache_is_cold` before it imports the
CDK: when the SDK cache (:mod:`.sdk_cache`) holds no answer of the current generator, a helper process
imports the SDK on the other core meanwhile. From then on, what the cache cannot answer is computed in the
helper by the same functions in the same offline environment (:func:`~.sdk_offline.offline_sdk`), so the
answers, and the templates, are the bytes the app would have computed itself. An image lookup waits for its
answer (:func:`run`); a pipeline definition is begun (:func:`later`) and the app goes on building until
``build_app`` asks for it. The helper answers in order.

A helper that cannot start or stops answering is replaced by computing in the app, with a one-line notice.
An exception the work raises in the helper (a region without the image, an offline violation) is raised in
the app as it is. The helper reads requests on its stdin, answers on a copy of its stdout (what the SDK
prints goes to stderr), and exits when the app closes its stdin or exits.
"""

from __future__ import annotations

import atexit
import collections
import importlib
import os
import pickle
import struct
import subprocess
import sys
import threading
from concurrent.futures import Future
from pathlib import Path
from typing import Any, BinaryIO, Callable, Deque, Optional, Tuple, TypeVar

REPO_ROOT = Path(__file__).resolve().parents[2]
_LENGTH = struct.Struct("!Q")  # each message: its length, then the pickled message
T = TypeVar("T")


class _Lost(Exception):
    """The helper process stopped answering (it exited, or wrote something that is not an answer)."""


class _Helper:
    """The helper process and its pipes. Requests are written as they come; a reader thread hands each answer to
    the oldest request waiting (the helper answers in order)."""

    def __init__(self) -> None:
        environment = dict(os.environ)
        environment["PYTHONPATH"] = os.pathsep.join(filter(None, [str(REPO_ROOT), environment.get("PYTHONPATH")]))
        self.process = subprocess.Popen(
            [sys.executable, "-c", f"from {__name__} import serve; serve()"],
            stdin=subprocess.PIPE, stdout=subprocess.PIPE, env=environment,
        )
        # Requests are written under one lock, answers matched under another: the app may block writing (the
        # helper's stdin full while it works) only while the reader can still take answers (its stdout full).
        self._writing, self._matching = threading.Lock(), threading.Lock()
        self._waiting: Deque[Future] = collections.deque()
        self._lost: Optional[str] = None
        threading.Thread(target=self._read, name="sdk-helper-answers", daemon=True).start()

    def submit(self, function: Callable[..., Any], args: Tuple[Any, ...]) -> Future:
        """The future result of ``function(*args)`` in the helper; it fails with :class:`_Lost` if the helper
        stops answering first. Raises what pickling the request raises."""
        request = pickle.dumps((function.__module__, function.__qualname__, args), protocol=pickle.HIGHEST_PROTOCOL)
        future: Future = Future()
        with self._writing:
            with self._matching:
                if self._lost is not None:
                    future.set_exception(_Lost(self._lost))
                    return future
                self._waiting.append(future)  # before the request, so its answer always finds it
            try:
                _write(self.process.stdin, request)
            except (OSError, ValueError) as error:  # ValueError: the pipe was closed here (stop)
                with self._matching:
                    self._lose(f"{error.__class__.__name__}: {error}")
        return future

    def _read(self) -> None:
        while True:
            try:
                answer = _receive(self.process.stdout)
                if not (isinstance(answer, tuple) and len(answer) == 2 and isinstance(answer[0], bool)):
                    raise TypeError(f"an answer of type {type(answer).__name__}")
            except Exception as error:  # pylint: disable=broad-except  # whatever it is, no answer can follow
                with self._matching:
                    self._lose(f"{error.__class__.__name__}: {error}")
                return
            with self._matching:
                future = self._waiting.popleft() if self._waiting else None
                if future is None:
                    self._lose("an answer nothing asked for")
                    return
            succeeded, value = answer
            if succeeded:
                future.set_result(value)
            else:
                future.set_exception(value)

    def _lose(self, why: str) -> None:
        """Fail every waiting request, and every later one (called holding ``_matching``)."""
        if self._lost is None:
            self._lost = why
        while self._waiting:
            self._waiting.popleft().set_exception(_Lost(self._lost))

    def stop(self, wait: float = 10.0) -> None:
        """Close the helper's stdin (it exits when its import is done) and wait ``wait`` seconds, then kill it."""
        with self._matching:
            self._lose("the helper was stopped")
        if self._writing.acquire(timeout=wait):  # else a request is stuck being written: killing frees it
            try:
                self.process.stdin.close()
            except OSError:
                pass
            finally:
                self._writing.release()
        try:
            self.process.wait(timeout=wait)
        except subprocess.TimeoutExpired:
            self.process.kill()
            self.process.wait()


_HELPER: Optional[_Helper] = None


def start_if_cache_is_cold() -> bool:
    """Start the helper unless the SDK cache already holds an answer of the current generator (or a helper
    runs); True when one runs afterwards. A helper that cannot be started is left out, with a notice."""
    from .sdk_cache import sdk_cache

    global _HELPER
    if _HELPER is None and not sdk_cache().holds_answers():
        try:
            _HELPER = _Helper()
        except OSError as error:
            _notice(f"cannot start the SDK helper process ({error}); the app runs the SDK itself")
        else:
            # An app that exits early (a config error) does not wait for the helper's import to finish.
            atexit.register(stop, wait=0.1)
    return _HELPER is not None


def running() -> bool:
    """Whether a helper runs (work given to :func:`later` then goes on while the caller does)."""
    return _HELPER is not None


def stop(wait: float = 10.0) -> None:
    """Stop the helper, if one runs (waiting ``wait`` seconds for it to exit, then killing it)."""
    global _HELPER
    helper, _HELPER = _HELPER, None
    if helper is not None:
        helper.stop(wait)


def later(function: Callable[..., T], *args: Any) -> Callable[[], T]:
    """``function(*args)``, started now; the returned function waits for its result (or raises its exception).

    With a helper running, it is computed there while the caller goes on; without one, it is computed now (and
    its exception raised now). ``function`` must be a module-level function, its arguments and result picklable.
    A helper lost before it answers leaves the work to this process, with one notice.
    """
    helper = _HELPER
    if helper is None:
        value = function(*args)
        return lambda: value
    future = helper.submit(function, args)

    def result() -> T:
        try:
            return future.result()
        except _Lost as lost:
            if _HELPER is helper:  # the first to find it lost says so
                _notice(f"the SDK helper process stopped answering ({lost}); the app runs the SDK itself")
                stop(wait=1.0)
            return function(*args)

    return result


def run(function: Callable[..., T], *args: Any) -> T:
    """``function(*args)``, computed in the helper when one runs, else here (see :func:`later`)."""
    return later(function, *args)()


def _notice(message: str) -> None:
    print(f"mlops-loop: {message}", file=sys.stderr)


def _write(stream: BinaryIO, data: bytes) -> None:
    stream.write(_LENGTH.pack(len(data)) + data)
    stream.flush()


def _receive(stream: BinaryIO) -> Any:
    header = stream.read(_LENGTH.size)
    if len(header) < _LENGTH.size:
        raise EOFError("the helper's output ended")
    (length,) = _LENGTH.unpack(header)
    data = stream.read(length)
    if len(data) < length:
        raise EOFError("the helper's output ended inside an answer")
    return pickle.loads(data)


def _answer(module: str, qualname: str, args: Tuple[Any, ...]) -> Tuple[bool, Any]:
    try:
        function: Any = importlib.import_module(module)
        for part in qualname.split("."):
            function = getattr(function, part)
        return True, function(*args)
    except Exception as error:  # pylint: disable=broad-except  # raised again in the app
        try:
            pickle.dumps(error)
        except Exception:  # pylint: disable=broad-except  # an exception that cannot travel: its text does
            return False, RuntimeError(f"{error.__class__.__name__}: {error}")
        return False, error


def serve() -> None:
    """The helper's side: import the SDK, then answer each request on stdin until it closes."""
    answers = os.fdopen(os.dup(sys.stdout.fileno()), "wb")
    os.dup2(sys.stderr.fileno(), sys.stdout.fileno())  # the SDK's prints must not reach the answers
    requests = sys.stdin.buffer
    from .sdk_offline import import_sdk

    try:
        import_sdk()
    except Exception:  # pylint: disable=broad-except  # each request meets it again, and the app raises it
        pass
    while True:
        try:
            module, qualname, args = _receive(requests)
        except EOFError:
            return
        _write(answers, pickle.dumps(_answer(module, qualname, args), protocol=pickle.HIGHEST_PROTOCOL))

