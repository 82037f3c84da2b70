"""What synth asks the SageMaker SDK for (pipeline definitions, image URIs and the native monitor's Clarify analysis
configs), kept in the content cache.

Generating the six pipeline definitions and looking up image URIs costs about half of a synth, and
the answer depends only on its inputs, so each answer is kept in :mod:`mlops_loop.content_cache`
(``.cache/derived``; never stale, safe to delete, ``MLOPS_LOOP_CACHE_DIR`` moves it or turns it off) under
a key that covers:

* the request itself (for a definition: every field of the spec, CDK tokens replaced by their
  placeholders, so the same model in another process or test hits the same entry);
* the generator: the bytes of every source file the generation imports from this repository
  (:data:`GENERATOR_SOURCES`; a test proves the list covers what is imported);
* the installed Python distributions and the Python version.
"""

from __future__ import annotations

from ..content_cache import ContentCache, cache_of

# Every repository source a cached answer can depend on, as globs relative to the repository
# root: the definition builder and what it imports (tests/pipeline_definition/test_cache.py
# proves a fresh import of the builder loads nothing from this repository outside them).
GENERATOR_SOURCES = (
    "mlops_loop/__init__.py",
    "mlops_loop/content_cache.py",
    "mlops_loop/interpreter.py",
    "mlops_loop/training/*.py",
    "mlops_loop/config/*.py",
    "mlops_loop/naming.py",
    "pipeline_code/__init__.py",
    "pipeline_code/catalog.py",
    "pipeline_code/sagemaker_entry.py",
    "pipeline_code/core/*.py",
)


def sdk_cache() -> ContentCache:
    """The cache of the SDK's answers in the directory configured now (one per directory per process)."""
    return cache_of(GENERATOR_SOURCES)
