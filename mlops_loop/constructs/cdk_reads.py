"""What the constructs read from the CDK over and over, read from it once.

Each ``Stack.of`` and each read of a CDK object's property (a stack's region, a bucket's name) is a round trip to
the CDK's Node process, and a synth asks the same few hundred of them thousands of times: every policy statement
names a bucket or a key, every ARN holds its stack's partition, region and account. None of them changes once
asked: a construct never moves to another stack, a stack's environment is fixed when it is made, and the attributes
read here are set once by their construct (a bucket's name, a key's ARN: the same token string on every read). So
each is asked once per object and kept here, weakly (an app's constructs go when it does). Durations, service
principals and event fields are values any construct of any stack may share, so each is made once per process
(:func:`days`, :func:`hours`, :func:`minutes`, :func:`service_principal`, :func:`event_field`).
"""

from __future__ import annotations

import functools
import weakref
from typing import Any, Callable, Hashable, NamedTuple, Optional, TypeVar

from aws_cdk import Duration, Stack
from aws_cdk import aws_events as events
from aws_cdk import aws_iam as iam
from constructs import IConstruct

from pipeline_code.core.contract import BOOTSTRAP_QUALIFIER_CONTEXT, DEFAULT_CDK_QUALIFIER, cdk_qualifier_problem


class StackEnvironment(NamedTuple):
    """A stack's ``partition``, ``region`` and ``account``: literals, or the pseudo parameters' tokens for an
    environment-agnostic stack (as the stack's own properties give them)."""

    partition: str
    region: str
    account: str


T = TypeVar("T")
# Per object, what was asked of it or made for it once (see once_per); weakly held.
_ONCE: weakref.WeakKeyDictionary[Any, dict[Hashable, Any]] = weakref.WeakKeyDictionary()


def once_per(owner: Any, key: Hashable, make: Callable[[], T]) -> T:
    """``make()``, called once per ``owner`` and ``key`` and kept while ``owner`` lives: for a value that cannot change
    once asked or made (what the other functions here read, a construct shared by everything in a stack)."""
    kept = _ONCE.get(owner)
    if kept is None:
        kept = _ONCE[owner] = {}
    if key not in kept:
        kept[key] = make()
    return kept[key]


def stack_of(construct: IConstruct, scope: Optional[IConstruct] = None) -> Stack:
    """``Stack.of(construct)``, asked of the CDK once per construct (a stack is its own).

    ``scope``: the scope ``construct`` was made in (a construct's stack is its scope's), for a construct asking in
    its constructor: no round trip at all when that scope is a stack or was asked before."""
    if isinstance(construct, Stack):
        return construct
    return once_per(construct, Stack, lambda: Stack.of(construct) if scope is None else stack_of(scope))


def environment_of(scope: IConstruct) -> StackEnvironment:
    """The partition, region and account of ``scope``'s stack, read from the CDK once per stack."""
    stack = stack_of(scope)
    return once_per(stack, StackEnvironment, lambda: StackEnvironment(stack.partition, stack.region, stack.account))



def bootstrap_qualifier(scope: IConstruct) -> str:
    """The CDK bootstrap qualifier ``scope``'s stack deploys through (the ``cdk-<qualifier>-...`` roles and bucket): the
    ``@aws-cdk/core:bootstrapQualifier`` context, else the CDK's default ``hnb659fds``. Read once per stack.

    That is the rule of the app's synthesizers (``DefaultStackSynthesizer``, given no ``qualifier`` of its own, which
    none of the app's stacks is: its ``bind``). The synthesizer itself is not asked: from Python, one given to a stack
    explicitly (the serving stack's) answers as it was made, unbound (None), and asking the bound copy makes jsii print a
    warning into synth's output. Refused (``ValueError``, ``contract.cdk_qualifier_problem``'s line): a value that is no
    qualifier."""
    stack = stack_of(scope)

    def read() -> str:
        value = stack.node.try_get_context(BOOTSTRAP_QUALIFIER_CONTEXT)
        if value is None:
            return DEFAULT_CDK_QUALIFIER
        problem = cdk_qualifier_problem(value)
        if problem:
            raise ValueError(problem)
        return value

    return once_per(stack, BOOTSTRAP_QUALIFIER_CONTEXT, read)

def read_once(obj: Any, attribute: str) -> Any:
    """``getattr(obj, attribute)``, read from the CDK once per object: only for an attribute its construct sets once
    (``bucket_name``, ``key_arn``, ``role_arn``, ``queue_arn``, ``topic_arn``, an asset's ``s3_object_url``, ...),
    never for one that changes. Constructs read so what other constructs name too (a bucket, a key, a queue, the
    job code's assets are named by dozens of them), and an attribute of their own they name more than once."""
    return once_per(obj, attribute, lambda: getattr(obj, attribute))


@functools.cache
def days(count: int) -> Duration:
    """``Duration.days(count)``, made by the CDK once per count: the lake's lifecycle rules and every log group and
    queue retention name the same few."""
    return Duration.days(count)


@functools.cache
def hours(count: int) -> Duration:
    """``Duration.hours(count)``, made by the CDK once per count."""
    return Duration.hours(count)


@functools.cache
def minutes(count: int) -> Duration:
    """``Duration.minutes(count)``, made by the CDK once per count: the periods of every alarm and graph."""
    return Duration.minutes(count)


@functools.cache
def service_principal(service: str) -> iam.ServicePrincipal:
    """``iam.ServicePrincipal(service)`` (no conditions), made by the CDK once per service name: a synth names the same
    few services (events, lambda, sagemaker, ...) in some 160 trust and resource policies. The principal holds no scope:
    each policy renders it in its own stack (a region-specific service name is resolved there), as a fresh one would."""
    return iam.ServicePrincipal(service)


@functools.cache
def event_field(path: str) -> str:
    """``events.EventField.from_path(path)`` (a token standing for the event's field at ``path``), made by the CDK once per
    path: an input renders a field by its path (``<name>``, ``InputPathsMap``), so one token serves every rule's input
    alike, as a fresh one per use would."""
    return events.EventField.from_path(path)
