"""Creating or updating the SageMaker Model Card of a version (status Draft)."""

from __future__ import annotations

import json
from typing import Any, Dict, Mapping, Optional, Tuple

from .content import ModelCardError

CARD_STATUS = "Draft"


def create_or_update(client: Any, *, name: str, content: Mapping[str, Any], kms_key_id: Optional[str] = None) -> Tuple[str, str]:
    """Create the model card ``name`` (status Draft); if it exists, update it when its content differs.

    Returns (``created`` | ``updated`` | ``unchanged``, card ARN). Raises ModelCardError for
    an archived card (SageMaker refuses changes to it).
    """
    from botocore.exceptions import ClientError

    text = json.dumps(content, sort_keys=True)
    kwargs: Dict[str, Any] = {"ModelCardName": name, "Content": text, "ModelCardStatus": CARD_STATUS}
    if kms_key_id:
        kwargs["SecurityConfig"] = {"KmsKeyId": kms_key_id}
    try:
        return "created", client.create_model_card(**kwargs)["ModelCardArn"]
    except ClientError as exc:
        if exc.response.get("Error", {}).get("Code") != "ConflictException":
            raise
    existing = client.describe_model_card(ModelCardName=name)
    arn = existing.get("ModelCardArn", "")
    try:
        same = json.loads(existing.get("Content") or "null") == json.loads(text)
    except ValueError:
        same = False
    if same:
        return "unchanged", arn
    status = existing.get("ModelCardStatus")
    if status == "Archived":
        raise ModelCardError(f"model card {name!r} is Archived and cannot be updated: unarchive it or delete it first")
    # SageMaker refuses a call that updates both the content and the status. A card a reviewer had moved on goes back
    # to Draft first (what was reviewed is not what it will say), then takes the new content: were the second call to
    # fail, a re-run finds a Draft with the old content and updates it, never an Approved card with unreviewed content.
    if status != CARD_STATUS:
        client.update_model_card(ModelCardName=name, ModelCardStatus=CARD_STATUS)
    client.update_model_card(ModelCardName=name, Content=text)
    return "updated", arn


