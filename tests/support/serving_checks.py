"""An endpoint stand-in for the score-by-id front's tests: serving's own request checks answer it."""

from __future__ import annotations

import io
import json
from typing import Any, Dict, List

from botocore.exceptions import ClientError

from pipeline_code.serving import errors, records, request_body


class ServingChecks:
    """``invoke_endpoint`` answered by serving's request checks (:func:`records.feature_rows`, the code that refuses a
    missing required feature or a value breaking a declared rule), a score of 0.5 per record for ``model``; a refusal
    is what SageMaker Runtime answers when the container refuses (a ModelError with its status), as
    :class:`mlops_cli.local.online_store.LocalEndpoint` does."""

    def __init__(self, contract: records.FeatureContract, model: str) -> None:
        self.contract = contract
        self.model = model
        self.calls: List[List[Dict[str, Any]]] = []

    def invoke_endpoint(self, *, EndpointName: str, ContentType: str, Accept: str, Body: str) -> Dict[str, Any]:  # noqa: N803
        parsed = request_body.parse_request(Body, ContentType)
        self.calls.append(parsed.records)
        try:
            records.feature_rows(self.contract, parsed.records, parsed.positions)
        except errors.InvocationError as error:
            raise ClientError({"Error": {"Code": "ModelError", "Message": f"Received client error ({error.status_code})"},
                               "OriginalStatusCode": error.status_code, "OriginalMessage": error.message},
                              "InvokeEndpoint") from error
        body = json.dumps({"predictions": [{"score": 0.5} for _ in parsed.records], "model": {"name": self.model}})
        return {"Body": io.BytesIO(body.encode()), "ContentType": "application/json"}
