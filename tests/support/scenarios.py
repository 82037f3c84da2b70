"""Scenario configurations derived from the frozen sample: ``modes`` serves every mode and rollout
variant, ``pooled`` shares multi-model endpoints (the infra conftest synthesizes each once)."""

from __future__ import annotations

import copy

import yaml

from tests.support.configs import SAMPLE_CONFIG


MODES_ENV = "modes"


MODES_ACCOUNT = "444444444444"


MODES_MODELS = ("churn", "credit-risk", "linear-churn", "fixed-churn", "nvme-churn", "net-churn")
MODES_RETRAINING_SCHEDULE = "rate(7 days)"


def modes_raw() -> dict:
    raw = yaml.safe_load(SAMPLE_CONFIG.read_text())
    churn = raw["models"]["churn"]

    def realtime_variant(realtime: dict) -> dict:
        model = copy.deepcopy(churn)
        model["serving"] = {"mode": "realtime", "realtime": realtime}
        return model

    raw["models"]["linear-churn"] = realtime_variant(
        {"instance_type": "ml.m5.large", "rollout": {"strategy": "linear", "linear_step_percent": 25, "wait_minutes": 5}}
    )
    # This one also opts into native Model Monitor (accounts that still have it).
    raw["models"]["linear-churn"]["serving"]["native_model_monitor"] = True
    raw["models"]["fixed-churn"] = realtime_variant(
        {
            "instance_type": "ml.c5.xlarge",
            "autoscaling": None,
            "instance_count": 3,
            "rollout": {"strategy": "all_at_once", "wait_minutes": 15, "termination_wait_minutes": 10},
        }
    )
    # Steady traffic on a fixed fleet: a day with fewer requests means something is broken upstream.
    raw["models"]["fixed-churn"]["min_daily_requests"] = 500
    # Callers with only a customer id: a front reads the online store, and the monitor checks the skew.
    raw["models"]["fixed-churn"]["serving"]["by_id"] = {"enabled": True, "missing": "compute", "max_age_hours": 48}
    raw["models"]["nvme-churn"] = realtime_variant({"instance_type": "ml.m5d.xlarge"})
    # A network (framework pytorch) trained on Trainium beside the CPU-trained trees, compiled for and served on
    # Inferentia2 (its pipeline gains the Compile step; its rollouts bake under the parity check).
    raw["models"]["net-churn"] = realtime_variant({"instance_type": "ml.inf2.xlarge"})
    raw["models"]["net-churn"]["framework"] = "pytorch"
    raw["environments"][MODES_ENV] = {
        "tier": "staging",
        "account": MODES_ACCOUNT,
        "region": "eu-west-1",
        "models": list(MODES_MODELS),
        # EventBridge Scheduler takes rate expressions too (Glue triggers and native Model Monitor take cron only,
        # and linear-churn opts into native Model Monitor).
        "training": {"retraining_schedule": MODES_RETRAINING_SCHEDULE, "instance_types": {"net-churn": "ml.trn1.2xlarge"}},
        "serving": {
            "churn": {
                "mode": "async",
                "async": {"max_instances": 3, "max_concurrent_invocations_per_instance": 8, "target_backlog_per_instance": 3},
            },
            "credit-risk": {
                "mode": "batch",
                "batch": {"schedule": "cron(30 2 * * ? *)", "content_type": "text/csv", "instance_count": 2},
            },
        },
    }
    return raw


POOLED_ENV = "pooled"


POOLED_ACCOUNT = "555555555555"


POOLED_MODELS = ("churn", "credit-risk", "small-churn", "solo-churn")


def pooled_raw() -> dict:
    raw = yaml.safe_load(SAMPLE_CONFIG.read_text())
    churn = raw["models"]["churn"]
    small = copy.deepcopy(churn)
    small["serving"] = {"mode": "multi_model", "data_capture_percent": 20}
    solo = copy.deepcopy(churn)
    solo["serving"] = {"mode": "multi_model", "multi_model": {"endpoint": "solo"}, "data_capture_percent": 0}
    raw["models"].update({"small-churn": small, "solo-churn": solo})
    raw["environments"][POOLED_ENV] = {
        "tier": "staging",
        "account": POOLED_ACCOUNT,
        "region": "eu-west-1",
        "models": list(POOLED_MODELS),
        "serving": {"credit-risk": {"mode": "multi_model"}},
        "multi_model_endpoints": {
            "shared": {"instance_type": "ml.c5.xlarge", "autoscaling": {"min_instances": 2, "max_instances": 5}},
            "solo": {"instance_type": "ml.m5d.xlarge", "autoscaling": None, "instance_count": 1, "model_cache": False},
            "unused": {},
        },
    }
    return raw
