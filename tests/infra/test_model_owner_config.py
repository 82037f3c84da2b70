"""``models.<model>.owner``: the team a model belongs to (docs/configuration.md, Models of several teams).

Checked at load like every field: one line naming the model, the field and what is allowed."""

from __future__ import annotations

import copy

import pytest

from mlops_loop.config import ConfigError, parse_config



def _first_model(raw: dict) -> str:
    return next(iter(raw["models"]))


def _problems(raw: dict) -> list[str]:
    with pytest.raises(ConfigError) as caught:
        parse_config(raw)
    return caught.value.problems


def test_a_model_without_an_owner_belongs_to_no_team(raw):
    config = parse_config(raw)
    assert all(model.owner is None for model in config.models.values())


def test_an_owner_names_the_team_and_how_to_reach_it(raw):
    model = _first_model(raw)
    raw["models"][model]["owner"] = {"team": "fraud", "contact": "fraud-oncall@bank.example"}
    owner = parse_config(raw).models[model].owner
    assert (owner.team, owner.contact) == ("fraud", "fraud-oncall@bank.example")


@pytest.mark.parametrize(
    ("owner", "expected"),
    [
        ({"team": "Fraud Team"}, "field 'owner.team': must be 2-20 characters of lowercase letters, "
                                 "digits and '-', starting with a letter"),
        ({"contact": "x@bank.example"}, "field 'owner.team': required field is missing"),
        ({"team": "fraud", "contact": ""}, "field 'owner.contact': say how to reach the team (an e-mail "
                                           "address, a chat channel, an on-call rota), 1-256 characters of letters, "
                                           "digits, spaces and . : / = + - @ _ (it is a tag value)"),
        ({"team": "fraud", "contact": "fraud <oncall@bank.example>"},
         "field 'owner.contact': say how to reach the team (an e-mail address, a chat channel, an on-call "
         "rota), 1-256 characters of letters, digits, spaces and . : / = + - @ _ (it is a tag value)"),
        ({"team": "fraud", "pager": "x"}, "field 'owner.pager': unknown field; check the spelling against the documented fields"),
    ],
)
def test_a_bad_owner_is_refused_naming_the_model_and_the_field(raw, owner, expected):
    model = _first_model(raw)
    raw["models"][model]["owner"] = owner
    (problem,) = _problems(raw)
    assert problem.startswith(f"model {model!r}: {expected}"), problem


def _env_with_models(raw: dict) -> str:
    return next(iter(raw["environments"]))


def test_team_approvers_name_a_team_of_the_environments_models(raw):
    env = _env_with_models(raw)
    model = raw["environments"][env]["models"][0]
    raw["models"][model]["owner"] = {"team": "fraud"}
    account = raw["environments"][env]["account"]
    raw["environments"][env]["team_approvers"] = {"fraud": [f"arn:aws:iam::{account}:role/fraud-approvers"]}
    assert parse_config(raw).environments[env].team_approvers == {"fraud": (f"arn:aws:iam::{account}:role/fraud-approvers",)}
    raw["environments"][env]["team_approvers"] = {"frud": [f"arn:aws:iam::{account}:role/fraud-approvers"]}
    (problem,) = _problems(raw)
    assert problem == (f"environment {env!r}: field 'team_approvers.frud': no model of this environment belongs to team "
                       f"'frud' (models.<model>.owner.team); teams here: fraud")


def test_team_approvers_must_be_iam_role_or_user_arns(raw):
    env = _env_with_models(raw)
    raw["models"][raw["environments"][env]["models"][0]]["owner"] = {"team": "fraud"}
    raw["environments"][env]["team_approvers"] = {"fraud": ["fraud-approvers"]}
    (problem,) = _problems(raw)
    assert problem.startswith(f"environment {env!r}: field 'team_approvers': 'fraud-approvers' is not the ARN of an IAM "
                              "role or user"), problem


def test_one_team_has_one_contact_across_its_models(raw):
    """GIVEN two models of one team naming different contacts WHEN loaded THEN refused, naming the second model, the
    team and the first contact: the contact is one tag value on the team's topic (mlops-loop:contact), and two joined
    (', ') were a value AWS tags refuse (no comma), failing the deploy of the Operations stack. The same contact
    twice, or a contact on one model only, is accepted."""
    first, second = list(raw["models"])[:2]
    raw["models"][first]["owner"] = {"team": "fraud", "contact": "fraud-oncall@bank.example"}
    raw["models"][second]["owner"] = {"team": "fraud"}
    parse_config(copy.deepcopy(raw))
    raw["models"][second]["owner"] = {"team": "fraud", "contact": "fraud-oncall@bank.example"}
    parse_config(copy.deepcopy(raw))
    raw["models"][second]["owner"] = {"team": "fraud", "contact": "chat: fraud-ml"}
    (problem,) = _problems(raw)
    assert problem == (f"model {second!r}: field 'owner.contact': team 'fraud' already has the contact "
                       f"'fraud-oncall@bank.example' (model {first!r}); a team has one contact (a tag value on its topic): "
                       "give its models the same one, or leave it out of all but one")
