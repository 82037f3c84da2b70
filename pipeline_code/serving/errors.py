"""What a refused request is answered with: :class:`InvocationError` and its subclasses, each with the HTTP status
the container returns (400, 406, 415, 500), built to keep that status in whichever ``sagemaker_inference`` toolkit the
image serves with, and the toolkit's error answer made to carry the message alone, never the traceback."""

from __future__ import annotations

import importlib
import sys
from typing import Any, List, Sequence, Tuple

# sagemaker_inference's transformer (multi-model endpoints, the Neuron image) answers an exception with its
# ``status_code`` (and the message) only if it is the container's "BaseInferenceToolkitError"; anything else
# becomes a 500. Which class that is depends on the image build: sagemaker_inference's, or an own copy in
# sagemaker_xgboost_container.algorithm_mode.inference_errors. Inheriting from every one
# present makes the status survive either way. (The XGBoost image's single-model toolkit reads no status at all:
# serve_entry.transform_fn answers these errors there.)
TOOLKIT_ERROR_MODULES = ("sagemaker_inference.errors", "sagemaker_xgboost_container.algorithm_mode.inference_errors")


class _LocalToolkitError(Exception):
    """Stand-in with the toolkit's attributes (status_code, message, phrase) outside the container."""

    def __init__(self, status_code: int, message: str, phrase: str) -> None:
        self.status_code = status_code
        self.message = message
        self.phrase = phrase
        super().__init__(status_code, message, phrase)


def toolkit_error_bases(modules: Sequence[str] = TOOLKIT_ERROR_MODULES) -> Tuple[type, ...]:
    """Every distinct importable ``BaseInferenceToolkitError`` of ``modules`` (default: both known homes)."""
    bases: List[type] = []
    for name in modules:
        try:
            cls = getattr(importlib.import_module(name), "BaseInferenceToolkitError")
        except Exception:  # noqa: BLE001 - absent or broken toolkit: fall back, never fail the import
            continue
        if isinstance(cls, type) and issubclass(cls, Exception) and not any(issubclass(b, cls) for b in bases):
            bases.append(cls)
    return tuple(bases) or (_LocalToolkitError,)


class InvocationError(*toolkit_error_bases()):  # type: ignore[misc]
    """A request the model cannot answer; ``status_code`` is the HTTP status the container returns."""

    status = 400

    def __init__(self, message: str) -> None:
        super().__init__(self.status, message, message)
        # Not every toolkit base sets these (or calls the next base), so set them here.
        self.status_code, self.message, self.phrase = self.status, message, message

    def __str__(self) -> str:
        return self.message


class BadRequestError(InvocationError):
    """400: a record is missing a required field, has a wrong type, or the body is not parseable."""

    status = 400


class NotAcceptableError(InvocationError):
    """406: the Accept header names no supported response type."""

    status = 406


class UnsupportedContentTypeError(InvocationError):
    """415: the Content-Type is not one of :data:`CONTENT_TYPES`."""

    status = 415


class ModelOutputError(InvocationError):
    """500: the model's output for a record is not a finite number (NaN or infinity); never answered as one.

    The request was fine and the model is broken, so it is a server error: it counts toward the 5xx alarm
    that rolls a bad release back."""

    status = 500


class ModelLoadError(InvocationError):
    """500: the model directory holds no usable artefact, or the artefact disagrees with the catalog."""

    status = 500


# What the caller of a sagemaker_inference container is told when a hook fails with anything but an InvocationError (a
# bug, a broken container): the exception's text and the traceback go to the container's log, not to the caller.
SERVER_ERROR_MESSAGE = "the model container failed to answer this request (an internal error; its log holds the details)"
TOOLKIT_TRANSFORMER_MODULE = "sagemaker_inference.transformer"


def answer_toolkit_errors_without_traceback(module: str = TOOLKIT_TRANSFORMER_MODULE) -> bool:
    """Make the ``sagemaker_inference`` Transformer serving this process (multi-model endpoints, the Neuron image)
    answer a failed request with a message alone; True when it did (or already does), False when none serves here.

    Its own ``handle_error`` answers every failure with the message *and* ``traceback.format_exc()`` as the body, so
    each refused request showed the caller the serving code's file paths, lines and source, and an unexpected
    exception's text (which may quote the request) too. After this, a refusal of the contract (an
    :class:`InvocationError`) is answered with its status and its message, as the XGBoost image's ``transform_fn``
    answers it; any other failure with a 500 and :data:`SERVER_ERROR_MESSAGE`, its traceback printed to the
    container's log (stderr, CloudWatch) for operators. The toolkit is looked up, never imported: only a process it
    already serves in has one to change (the loader calls this from ``model_fn``, which that Transformer runs).
    """
    toolkit = sys.modules.get(module)
    transformer = getattr(toolkit, "Transformer", None)
    if not isinstance(transformer, type) or not hasattr(transformer, "handle_error"):
        return False
    if getattr(transformer.__dict__.get("handle_error"), "__func__", None) is _handle_toolkit_error:
        return True
    transformer.handle_error = staticmethod(_handle_toolkit_error)
    return True


def not_utf8(error: UnicodeDecodeError) -> "BadRequestError":
    return BadRequestError(f"request body is not UTF-8 text: {error}")


def _decoding_by_the_toolkit(error: BaseException) -> bool:
    """True for the UnicodeDecodeError of the Transformer's own ``input_data.decode("utf-8")`` (a JSON or CSV body,
    before any hook runs): raised in its ``transform`` itself, not in a hook it called."""
    if not isinstance(error, UnicodeDecodeError) or error.__traceback__ is None:
        return False
    tb = error.__traceback__
    while tb.tb_next is not None:
        tb = tb.tb_next
    return tb.tb_frame.f_code.co_name == "transform" and not str(tb.tb_frame.f_globals.get("__name__")).startswith(
        "pipeline_code")


def _handle_toolkit_error(context: Any, inference_exception: Any, trace: str) -> List[str]:
    """``Transformer.handle_error(context, inference_exception, trace)`` answering without the traceback.

    It is called inside the Transformer's ``except`` block, so :func:`sys.exc_info` holds what was raised before the
    Transformer wrapped it in a 500: a body that is not UTF-8, which the Transformer decodes itself before any hook
    sees it, is the contract's 400 (as the hooks answer it), not a server error."""
    raised = sys.exc_info()[1]
    if not isinstance(inference_exception, InvocationError) and raised is not None and _decoding_by_the_toolkit(raised):
        inference_exception = not_utf8(raised)
    if isinstance(inference_exception, InvocationError):
        message = inference_exception.message
    else:
        print(f"model container: a request failed with an internal error (answered 500):\n{trace}",
              file=sys.stderr, flush=True)
        message = SERVER_ERROR_MESSAGE
    status = getattr(inference_exception, "status_code", 500)
    context.set_response_status(code=status, phrase=" ".join(message.splitlines()))
    return [message]
