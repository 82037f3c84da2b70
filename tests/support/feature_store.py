"""A SageMaker client for the feature job tests: DescribeFeatureGroup of one existing group."""

from __future__ import annotations

CREATED = "2026-01-01T00:00:00+00:00"


class FakeSageMaker:
    """DescribeFeatureGroup of one existing group (all the feature job asks SageMaker), created at ``created``: the
    job keeps the creation time in its state, so a different one reads as the group deleted and created again. With
    ``online`` the group has an online store (``OnlineStoreConfig.EnableOnlineStore``), which the job then corrects."""

    def __init__(self, created: str = CREATED, *, online: bool = False) -> None:
        self.created = created
        self.online = online

    def describe_feature_group(self, FeatureGroupName):
        described = {"FeatureGroupName": FeatureGroupName, "CreationTime": self.created}
        if self.online:
            described["OnlineStoreConfig"] = {"EnableOnlineStore": True}
        return described
