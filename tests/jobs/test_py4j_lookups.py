"""The test process's py4j lookups (tests/support/py4j_lookups.py, on for every Spark test): the classes and methods
py4j would find, a field's value read, unknown names refused."""

from __future__ import annotations

import pytest
from py4j.java_gateway import JavaClass, JavaMember, JavaPackage
from py4j.protocol import Py4JError

pytestmark = pytest.mark.spark


def test_a_kept_lookup_names_what_py4j_finds(spark):
    jvm = spark.sparkContext._jvm
    # Packages, classes and static methods: the same answer, asked of the JVM once
    assert isinstance(jvm.org, JavaPackage) and jvm.org is jvm.org
    assert isinstance(jvm.org.apache.hadoop.fs.Path, JavaClass)
    assert jvm.org.apache.hadoop.fs.Path is jvm.org.apache.hadoop.fs.Path
    assert jvm.org.apache.hadoop.fs.Path._fqn == "org.apache.hadoop.fs.Path"
    assert jvm.functions._fqn == "org.apache.spark.sql.functions"  # the view's import, not another "functions"
    assert isinstance(jvm.functions.lit, JavaMember) and jvm.functions.lit is jvm.functions.lit
    assert jvm.functions.lit(3).toString() == "3"
    # A static field is read, not kept as a name
    assert jvm.java.lang.Integer.MAX_VALUE == 2**31 - 1
    # A name the JVM does not know is refused every time, nothing kept for it
    for _ in range(2):
        with pytest.raises(Py4JError, match="does not exist in the JVM"):
            getattr(jvm.org.apache.spark.sql.functions, "no_such_function")
