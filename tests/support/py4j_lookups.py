"""py4j's name lookups, answered once per JVM in the test process (the ``spark`` fixture, tests/conftest.py).

PySpark reaches the JVM by name: each ``F.col``, ``F.when`` is ``jvm.functions.col(...)``, and each fully qualified
access (``jvm.org.apache.hadoop.fs.Path``) walks its packages one name at a time. py4j asks the JVM at every step: a
class name through the view's imports, where each miss (``java.lang.functions``, ``org``, ``org.apache``, ...) is a
class lookup through Spark's 250 jars, and a static method by copying every ``Method`` of its class (``functions``
has hundreds). py4j keeps such answers for an object's methods (``JavaObject._methods``), not for packages, classes
and static methods. In one JVM neither changes (no jar is added while the tests run), so this module keeps them:
the same ``JavaPackage``, ``JavaClass`` and ``JavaMember`` py4j would build again, without the round trips. What a
static *field* holds can change, so a field is still read from the JVM every time; a name the JVM does not know
still raises every time.
"""

from __future__ import annotations

from contextlib import contextmanager
from typing import Any, Dict, Iterator, Tuple


@contextmanager
def remembered() -> Iterator[Dict[Tuple[Any, ...], Any]]:
    """Within the block, py4j answers each package, class and static-method lookup from the JVM once (per gateway
    client and view); yields the answers kept. Everything is as before once the block ends."""
    from py4j import java_gateway

    view_lookup = java_gateway.JVMView.__getattr__
    package_lookup = java_gateway.JavaPackage.__getattr__
    member_lookup = java_gateway.JavaClass.__getattr__
    kept: Dict[Tuple[Any, ...], Any] = {}
    names = (java_gateway.JavaPackage, java_gateway.JavaClass, java_gateway.JavaMember)

    def keep(key: Tuple[Any, ...], lookup, owner: Any, name: str) -> Any:
        try:
            return kept[key]
        except KeyError:
            pass
        answer = lookup(owner, name)  # raises as before for an unknown name or a magic member: nothing kept
        if isinstance(answer, names):  # a static field's value is read again next time
            kept[key] = answer
        return answer

    def view(self, name):
        return keep((self._gateway_client, "view", self._id, name), view_lookup, self, name)

    def package(self, name):
        return keep((self._gateway_client, "package", self._jvm_id, self._fqn, name), package_lookup, self, name)

    def member(self, name):
        return keep((self._gateway_client, "member", self._fqn, name), member_lookup, self, name)

    java_gateway.JVMView.__getattr__ = view
    java_gateway.JavaPackage.__getattr__ = package
    java_gateway.JavaClass.__getattr__ = member
    try:
        yield kept
    finally:
        java_gateway.JVMView.__getattr__ = view_lookup
        java_gateway.JavaPackage.__getattr__ = package_lookup
        java_gateway.JavaClass.__getattr__ = member_lookup
        kept.clear()
