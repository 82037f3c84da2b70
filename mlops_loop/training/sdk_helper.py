"""A second process that runs synth's SageMaker SDK work while the app builds its constructs.

On an empty cache, the app's first image lookup waited about 2.7 s for the SDK to import, and the pipeline
definitions took another second, on the one core the app and the CDK's Node process take turns on; the
machines this runs on have two. So ``app.py`` calls :func:`start_for_app` before it imports the
CDK: when the SDK cache (:mod:`.sdk_cache`) holds no answer of the current generator, a helper process
imports the SDK on the other core meanwhile (and otherwise, at the first definition the cache lacks: after a
config edit, the app builds on while it imports). From then on, what the cache cannot answer is computed in the
helper by the same functions in the same offline environment (:func:`~.sdk_offline.offline_sdk`), so the
answers, and the templates, are the bytes the app would have computed itself. An image lookup waits for its
answer (:func:`run`); a pipeline definition is begun (:func:`later`) and the app goes on building until
``build_app`` asks for it; ``app.py`` then tells the helper no more work is coming (:func:`close`). The
helper answers in order, and first says which generator it sees: a helper that sees other code or packages
(another path, or a flag such as -S that hides them) is not used. It runs without the app's ``-O`` (cdk.json),
so the SDK keeps its own asserts, and it reuses the bytecode the tests compiled.

A helper that cannot start, exits or answers out of turn leaves the work to the app, with a one-line notice.
Work that fails in the helper is done again in the app, which raises the genuine exception with its
traceback (an error path only). The helper reads requests on its stdin, answers on a copy of its stdout
(what it prints goes to stderr), and exits when its stdin closes: when the app closes it, or exits.
"""

from __future__ import annotations

import atexit
import collections
import importlib
import os
import pickle
import shutil
import struct
import subprocess
import sys
import tempfile
import threading
from concurrent.futures import Future
from typing import Any, BinaryIO, Callable, Deque, Optional, Tuple, TypeVar

from ..content_cache import REPO_ROOT, notice
from ..interpreter import collect_garbage_less_often, exit_without_teardown
from .sdk_cache import sdk_cache

_LENGTH = struct.Struct("!Q")  # each message: its length, then the pickled message
# Before anything is imported, the answers get their own copy of stdout and stdout becomes stderr, so nothing
# printed on the way (an import, the SDK) can reach them.
_HELPER_MAIN = ("import os; answers = os.dup(1); os.dup2(2, 1); "
                "from mlops_loop.training.sdk_helper import serve; serve(answers)")
T = TypeVar("T")


class _Lost(Exception):
    """The helper stopped answering (it exited, answered out of turn, or sees another generator)."""


class _Failed(Exception):
    """The work failed in the helper (its text); the app does it again to raise the genuine exception."""


class _Helper:
    """The helper process and its pipes. Requests are written as they come; a reader thread hands each answer to
    the oldest request waiting (the helper answers in order), after checking the helper's greeting."""

    def __init__(self, generator: str) -> None:
        """``generator``: the app's generator digest, which the helper's must equal."""
        environment = dict(os.environ)
        environment["PYTHONPATH"] = os.pathsep.join(filter(None, [str(REPO_ROOT), environment.get("PYTHONPATH")]))
        # The helper's temporary files (the offline SDK's) go to a directory of the app's, removed once the helper
        # has exited, however it ended: a helper stopped mid-import cannot clean up after itself.
        self.temporary = tempfile.mkdtemp(prefix="mlops-loop-sdk-helper-")
        environment["TMPDIR"] = self.temporary
        try:
            self.process = subprocess.Popen([sys.executable, "-c", _HELPER_MAIN], stdin=subprocess.PIPE,
                                            stdout=subprocess.PIPE, cwd=REPO_ROOT, env=environment)
        except OSError:
            self._discard_temporary()
            raise
        # Requests are written under one lock, answers matched under another: the app may block writing (the
        # helper's stdin full while it works) only while the reader can still take answers (its stdout full).
        self._writing, self._matching = threading.Lock(), threading.Lock()
        self._waiting: Deque[Future] = collections.deque()
        self._lost: Optional[str] = None
        try:
            threading.Thread(target=self._read, args=(generator,), name="sdk-helper-answers", daemon=True).start()
        except RuntimeError:
            self.process.kill()
            self.process.wait()
            self._discard_temporary()
            raise

    def submit(self, function: Callable[..., Any], args: Tuple[Any, ...]) -> Future:
        """The future result of ``function(*args)`` in the helper; it fails with :class:`_Lost` if the helper
        stops answering first, with :class:`_Failed` if the work fails there. Raises what pickling raises."""
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
            except OSError as error:  # the helper exited
                with self._matching:
                    self._lose(f"{error.__class__.__name__}: {error}")
        return future

    def _read(self, generator: str) -> None:
        try:
            greeting = _receive(self.process.stdout)
            if greeting != ("generator", generator):
                raise _Lost(f"it sees another generator than the app: {greeting!r}")
            while True:
                answer = _receive(self.process.stdout)
                if not (isinstance(answer, tuple) and len(answer) == 2 and isinstance(answer[0], bool)):
                    raise _Lost(f"an answer of type {type(answer).__name__}")
                with self._matching:
                    if not self._waiting:
                        raise _Lost("an answer nothing asked for")
                    future = self._waiting.popleft()
                succeeded, value = answer
                if succeeded:
                    future.set_result(value)
                else:
                    future.set_exception(_Failed(value))
        except Exception as error:  # pylint: disable=broad-except  # whatever it is, no answer can follow
            with self._matching:
                self._lose(str(error) if isinstance(error, _Lost) else f"{error.__class__.__name__}: {error}")

    def _lose(self, why: str) -> None:
        """Fail every waiting request, and every later one (called holding ``_matching``)."""
        if self._lost is None:
            self._lost = why
        while self._waiting:
            self._waiting.popleft().set_exception(_Lost(self._lost))

    def close(self) -> None:
        """No more work: close the helper's stdin, so it exits once it has answered."""
        with self._matching:
            self._lose("the helper was closed")
        if self._writing.acquire(timeout=1.0):  # else a request is stuck being written: stop() kills the helper
            try:
                self.process.stdin.close()
            except OSError:
                pass
            finally:
                self._writing.release()

    def stop(self, wait: float) -> None:
        """:meth:`close`, then wait up to ``wait`` seconds for the helper to exit before killing it; then remove its
        temporary directory."""
        self.close()
        try:
            self.process.wait(timeout=wait)
        except subprocess.TimeoutExpired:
            self.process.kill()
            self.process.wait()
        self.process.stdout.close()
        self._discard_temporary()

    def _discard_temporary(self) -> None:
        """Remove the helper's temporary directory (once it has exited: it cannot be sure to do it itself)."""
        shutil.rmtree(self.temporary, ignore_errors=True)


_HELPER: Optional[_Helper] = None
# Set by app.py (start_for_app): a definition begun without a helper starts one (see later).
_START_ON_FIRST_MISS = False


def start_for_app() -> bool:
    """What ``app.py`` calls before it imports the CDK: start the helper now when the SDK cache holds no answer of
    the current generator (a fresh clone, changed definition code or packages), else when the first definition the
    cache lacks is begun (a config edit). True when one runs now. Tests do not call it: without it, everything is
    computed in the calling process."""
    global _START_ON_FIRST_MISS
    _START_ON_FIRST_MISS = True
    if _HELPER is None and not sdk_cache().holds_answers():
        _start()
    return _HELPER is not None


def _start() -> None:
    """Start the helper (once: a helper that cannot be started is left out, with a notice)."""
    global _HELPER, _START_ON_FIRST_MISS
    _START_ON_FIRST_MISS = False
    try:
        _HELPER = _Helper(sdk_cache().generator_digest())
    except (OSError, RuntimeError) as error:
        notice(f"cannot start the SDK helper process ({error}); the app runs the SDK itself")
    else:
        # Reaped when the app exits; an app that ends early (a config error) does not wait for its import.
        atexit.register(_HELPER.stop, 0.1)


def running() -> bool:
    """Whether a helper runs (work given to :func:`later` then goes on while the caller does)."""
    return _HELPER is not None


def close() -> None:
    """Tell the helper, if one runs, that no more work is coming (it exits while the app goes on); none starts
    after this."""
    global _HELPER, _START_ON_FIRST_MISS
    helper, _HELPER, _START_ON_FIRST_MISS = _HELPER, None, False
    if helper is not None:
        helper.close()


def later(function: Callable[..., T], *args: Any) -> Callable[[], T]:
    """``function(*args)``, begun now; the returned function waits for its result (or raises its exception).

    With a helper running (or started now, after :func:`start_for_app`), it is computed there while the caller
    goes on; without one, it is computed now (and its exception raised now). ``function`` must be a module-level
    function, its arguments and result picklable. A helper lost before it answers leaves the work to this process,
    with one notice; work that failed there is done again here, to raise the genuine exception (with a notice if it
    then succeeds).
    """
    if _HELPER is None and _START_ON_FIRST_MISS:
        _start()
    return _begin(function, args)


def _begin(function: Callable[..., T], args: Tuple[Any, ...]) -> Callable[[], T]:
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
                notice(f"the SDK helper process stopped answering ({lost}); the app runs the SDK itself")
                close()
            return function(*args)
        except _Failed as failed:
            value = function(*args)
            notice(f"{function.__qualname__} failed in the SDK helper process ({failed}) but not in the app; "
                   "the app's answer is used")
            return value

    return result


def run(function: Callable[..., T], *args: Any) -> T:
    """``function(*args)``, computed in the helper when one runs, else here (see :func:`later`; the caller waits
    anyway, so no helper is started for it)."""
    return _begin(function, args)()


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
    except Exception as error:  # pylint: disable=broad-except  # the app does the work again and raises it
        return False, f"{error.__class__.__name__}: {error}"


def serve(answers_fd: int) -> None:
    """The helper's side: say which generator it sees, import the SDK, then answer each request on stdin until
    it closes (``answers_fd``: where the answers go), and exit without the interpreter's teardown.

    It collects garbage as rarely as the app (:func:`~mlops_loop.interpreter.collect_garbage_less_often`): the
    SDK's import makes hundreds of thousands of containers and few cycles, and at the default thresholds the
    collector ran 686 times during it (0.5 of its 2.8 CPU-s). Once its stdin closes, every answer has been
    written and flushed, and freeing the SDK's modules one by one took another 0.9 CPU-s (on the core the app
    and Node share with it) for memory the operating system takes back anyway."""
    collect_garbage_less_often()
    answers = os.fdopen(answers_fd, "wb")
    # Before the SDK import, which may put more distributions on sys.path (setuptools' vendored ones).
    _write(answers, pickle.dumps(("generator", sdk_cache().generator_digest())))
    from .sdk_offline import import_sdk

    try:
        import_sdk()
        failure = None
    except Exception as error:  # pylint: disable=broad-except  # every request answers with it (the app raises it)
        failure = f"{error.__class__.__name__} while the helper imported the SDK: {error}"
    requests = sys.stdin.buffer
    while True:
        try:
            module, qualname, args = _receive(requests)
        except EOFError:
            exit_without_teardown()
        answer = (False, failure) if failure else _answer(module, qualname, args)
        _write(answers, pickle.dumps(answer, protocol=pickle.HIGHEST_PROTOCOL))
