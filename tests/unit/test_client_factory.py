"""How the modules make their AWS clients (plugins/module_utils/_fleet/connection.py): as amazon.aws'
``module.client()`` makes them, but from one session per module run and, in a worker forked after
warm_up(), from the API models the controller loaded once."""

from __future__ import annotations

import gc
import json

import pytest

from ansible.module_utils import basic
from ansible_collections.amazon.aws.plugins.module_utils.modules import AnsibleAWSModule

from ansible_collections.cattle.aws.plugins.module_utils._fleet import connection

CONNECTION = {"region": "eu-west-1", "endpoint_url": "http://127.0.0.1:5999", "access_key": "AKIDCATTLE",
              "secret_key": "cattle-secret"}


@pytest.fixture
def make_module(monkeypatch, tmp_path):
    """An AnsibleAWSModule with the given connection options, in an environment without AWS settings."""
    for name in ("AWS_REGION", "AWS_DEFAULT_REGION", "AWS_PROFILE", "AWS_DEFAULT_PROFILE", "AWS_ACCESS_KEY_ID",
                 "AWS_SECRET_ACCESS_KEY", "AWS_SESSION_TOKEN", "AWS_ENDPOINT_URL", "AWS_DATA_PATH"):
        monkeypatch.delenv(name, raising=False)
    (tmp_path / "config").write_text("")
    monkeypatch.setenv("AWS_CONFIG_FILE", str(tmp_path / "config"))
    monkeypatch.setenv("AWS_SHARED_CREDENTIALS_FILE", str(tmp_path / "config"))

    def make(**params):
        monkeypatch.setattr(basic, "_ANSIBLE_ARGS", json.dumps({"ANSIBLE_MODULE_ARGS": params}).encode())
        monkeypatch.setattr(basic, "_ANSIBLE_PROFILE", "legacy", raising=False)
        return AnsibleAWSModule(argument_spec={})

    return make


def _failure(capsys, call):
    with pytest.raises(SystemExit):
        call()
    return json.loads(capsys.readouterr().out)


def test_a_client_is_made_as_amazon_aws_makes_it_and_identified(make_module):
    module = make_module(aws_config={"connect_timeout": 7, "user_agent_extra": "mine/1"}, **CONNECTION)

    ours = connection.client_factory(module)("ec2")
    theirs = module.client("ec2")  # after client_factory: with the same identified aws_config

    assert ours.client.meta.region_name == theirs.meta.region_name == "eu-west-1"
    assert ours.client.meta.endpoint_url == theirs.meta.endpoint_url == "http://127.0.0.1:5999"
    assert ours.client.meta.config.user_agent == theirs.meta.config.user_agent
    assert "amazon.aws/" in ours.client.meta.config.user_agent
    assert ours.client.meta.config.user_agent_extra == theirs.meta.config.user_agent_extra == "mine/1 cattle.aws/0.1.0"
    assert ours.client.meta.config.connect_timeout == theirs.meta.config.connect_timeout == 7
    assert ours.client._request_signer._credentials.access_key == "AKIDCATTLE"


def test_the_clients_of_a_module_share_the_warm_loader_and_are_made_once(make_module):
    connection.warm_up()
    assert connection._WARM_LOADER is not None, "warm_up loaded nothing"
    assert gc.get_freeze_count() > 0, "the objects loaded before ansible forks its workers are frozen"
    client = connection.client_factory(make_module(**CONNECTION), retry=False)

    ec2, elbv2 = client("ec2"), client("elbv2")

    assert client("ec2") is ec2
    assert ec2._loader is elbv2._loader is connection._WARM_LOADER[1]
    assert ec2.meta.service_model.service_name == "ec2" and elbv2.meta.service_model.service_name == "elbv2"


def test_another_data_path_gets_its_own_loader(make_module, monkeypatch, tmp_path):
    connection.warm_up()
    monkeypatch.setenv("AWS_DATA_PATH", str(tmp_path))  # a user's own API models

    ec2 = connection.client_factory(make_module(**CONNECTION), retry=False)("ec2")

    assert ec2._loader is not connection._WARM_LOADER[1]
    assert str(tmp_path) in ec2._loader.search_paths


def test_no_region_fails_as_amazon_aws_says_it(make_module, capsys):
    module = make_module(endpoint_url="http://127.0.0.1:5999")
    client = connection.client_factory(module)

    failure = _failure(capsys, lambda: client("ssm"))

    assert "requires a region and none was found" in failure["msg"]


def test_an_unknown_profile_fails_naming_it(make_module, capsys):
    module = make_module(profile="no-such-profile", region="eu-west-1")

    failure = _failure(capsys, lambda: connection.client_factory(module)("ssm"))

    assert failure["msg"].startswith("Couldn't connect to AWS")
    assert "no-such-profile" in failure["msg"]
