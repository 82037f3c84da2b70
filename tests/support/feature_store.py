"""A SageMaker client for the feature job tests: DescribeFeatureGroup of one existing group."""

from __future__ import annotations

CREATED = "2026-01-01T00:00:00+00:00"


class FakeSageMaker:
    """DescribeFeatureGroup of one existing group (all the feature job asks SageMaker), created at ``created``: the
    job keeps the creation time in its state, so a different one reads as the group deleted and created again."""

    def __init__(self, created: str = CREATED) -> None:
        self.created = created

    def describe_feature_group(self, FeatureGroupName):
        return {"FeatureGroupName": FeatureGroupName, "CreationTime": self.created}
