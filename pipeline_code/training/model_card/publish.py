"""Creating or updating the SageMaker Model Card of a version (status Draft)."""

from __future__ import annotations

import json
from typing import Any, Dict, Mapping, Optional, Tuple

from pipeline_code.core.contract import region_of_arn

from .content import ModelCardError, card_package

CARD_STATUS = "Draft"


def create_or_update(client: Any, *, name: str, content: Mapping[str, Any], kms_key_id: Optional[str] = None) -> Tuple[str, str]:
    """Create the model card ``name`` (status Draft); if it exists, update it when its content differs.

    Returns (``created`` | ``updated`` | ``unchanged``, card ARN). Raises ModelCardError for an archived card (SageMaker
    refuses changes to it), and, when ``content`` names its model package (ARN and creation time:
    :func:`~.content.card_package`), for an existing card that does not name that same package: a card of another
    package (a group deleted and created again reuses its versions' ARNs) is never overwritten.
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
        old = json.loads(existing.get("Content") or "null")
    except ValueError:
        old = None
    ours = card_package(content)
    if ours != (None, None):
        theirs = card_package(old if isinstance(old, dict) else {})
        if theirs != ours:
            said = (f"{theirs[0] or 'no model package'} created {theirs[1] or 'at a time it does not record'}"
                    if theirs != (None, None) else "no model package")
            raise ModelCardError(
                f"model card {name!r} exists and describes {said}, not {ours[0]} created {ours[1]}: it is left as it is "
                "(it may be another package's reviewed record); delete it if it is not "
                f"(aws sagemaker delete-model-card --model-card-name {name} --region {_region(arn, client)}) and run "
                "the step again"
            )
    same = old is not None and old == json.loads(text)
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


def _region(arn: str, client: Any) -> str:
    """The region of the card ``arn``, else the client's."""
    return region_of_arn(arn) or client.meta.region_name
