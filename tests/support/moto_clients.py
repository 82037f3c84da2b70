"""One boto3 client per service and region for the moto tests of a module, as good as new for every test.

Making a botocore client costs milliseconds (its event handlers are copied and re-aliased, its class and endpoint
rules built), and a moto test typically made five or more before doing anything. A client made in one test can
serve the next: moto answers every client while a mock is active (its hook is one of botocore's built-in
handlers), whatever mock was active when the client was made, and the credentials are moto's stand-ins in every
test. What makes a client differ from a new one is only what a test registers on it (a recorder, a replayed
response, a botocore Stubber): :meth:`SharedClients.reset` unregisters all of that when the test ends.

Usage in a test module::

    @pytest.fixture(scope="module")
    def shared_clients():
        return SharedClients(REGION)

    @pytest.fixture()
    def world(shared_clients):
        with mock_aws(), shared_clients.fresh() as clients:
            yield World(clients)
"""

from __future__ import annotations

from contextlib import contextmanager
from typing import Any, Dict, Iterator, List, Optional, Tuple

import boto3

_REGISTERING = ("register", "register_first", "register_last")


class SharedClients:
    """``clients(service)`` / ``clients(service, region)``: the module's client of that service, made at the first ask."""

    def __init__(self, region: str) -> None:
        self.region = region
        self._made: Dict[Tuple[str, str], Any] = {}
        self._registered: List[Tuple[Any, str, Any, Optional[str], bool]] = []

    def __call__(self, service: str, region: Optional[str] = None) -> Any:
        key = (service, region or self.region)
        if key not in self._made:
            client = boto3.client(service, region_name=key[1])
            self._track(client)
            self._made[key] = client
        return self._made[key]

    def _track(self, client: Any) -> None:
        """Record every handler registered on ``client`` from now on (by a test, a Stubber), for :meth:`reset`.

        A unique id the client was made with is never recorded: registering it again changes nothing, and
        unregistering it would remove the client's own handler."""
        events = client.meta.events
        own_ids = frozenset(getattr(getattr(events, "_emitter", None), "_unique_id_handlers", {}))
        for name in _REGISTERING:
            original = getattr(events, name)

            def register(event_name: str, handler: Any, unique_id: Optional[str] = None,
                         unique_id_uses_count: bool = False, _original: Any = original) -> Any:
                if unique_id not in own_ids:
                    self._registered.append((events, event_name, handler, unique_id, unique_id_uses_count))
                return _original(event_name, handler, unique_id, unique_id_uses_count)

            setattr(events, name, register)

    @contextmanager
    def fresh(self) -> Iterator["SharedClients"]:
        """The clients for one test: what it registers on them (its set-up included, if that fails) is unregistered
        when it ends."""
        try:
            yield self
        finally:
            self.reset()

    def reset(self) -> None:
        """Unregister what was registered on the clients since they were made or last reset, last first.

        Unregistering what is already gone (a Stubber that deactivated itself) does nothing."""
        while self._registered:
            events, event_name, handler, unique_id, uses_count = self._registered.pop()
            events.unregister(event_name, handler, unique_id, uses_count)


def keep_model_card_fields(monkeypatch: Any) -> None:
    """Make moto's UpdateModelCard keep what the call omits (content or status), as SageMaker does; moto drops it."""
    from moto.sagemaker.models import SageMakerModelBackend

    update = SageMakerModelBackend.update_model_card

    def keeping(self: Any, model_card_name: str, content: Any, model_card_status: Any) -> str:
        last = self.model_cards.get(model_card_name, [None])[-1]
        if last is not None:
            content = last.content if content is None else content
            model_card_status = last.model_card_status if model_card_status is None else model_card_status
        return update(self, model_card_name, content, model_card_status)

    monkeypatch.setattr(SageMakerModelBackend, "update_model_card", keeping)
