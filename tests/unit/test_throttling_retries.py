"""The collection's retries absorb every throttling answer AWS gives, not only the ones amazon.aws'
AWSRetry knows (found by the fault matrix, tests/integration/test_faults_api.py): SSM answers
ThrottlingException, the Resource Groups Tagging API ThrottledException."""

from __future__ import annotations

import pytest
from botocore.exceptions import ClientError

from ansible_collections.cattle.aws.plugins.module_utils._fleet import discovery, lock

pytestmark = pytest.mark.unit


class Throttled:
    """A client whose ``operation`` answers ``code`` ``times`` times, then ``answer``."""

    def __init__(self, operation, code, times, answer):
        self.calls = 0
        self.code, self.times, self.answer = code, times, answer
        setattr(self, operation, self._call)

    def get_paginator(self, operation):  # botocore's paginators: the same answers, one page
        outer = self

        class Pages:
            def paginate(self, **kwargs):
                return self

            def build_full_result(self):
                return outer._call()

        return Pages()

    def _call(self, **kwargs):
        self.calls += 1
        if self.calls <= self.times:
            raise ClientError({"Error": {"Code": self.code, "Message": "Rate exceeded"},
                               "ResponseMetadata": {"HTTPStatusCode": 400}}, "Operation")
        return self.answer


@pytest.fixture(autouse=True)
def no_sleep(monkeypatch):
    import time

    monkeypatch.setattr(time, "sleep", lambda seconds: None)


def test_the_lock_retries_ssm_throttling():
    client = Throttled("get_parameter", "ThrottlingException", 3, {"Parameter": {"Value": "v"}})
    assert lock.get_lock_value(client, "/cattle/locks/shop/prod") == "v"
    assert client.calls == 4


def test_the_discovery_retries_tagging_api_throttling():
    client = Throttled("get_resources", "ThrottledException", 3, {"ResourceTagMappingList": [{"ResourceARN": "a"}]})
    assert discovery.get_tagged_resources(client, [], ["elasticloadbalancing:targetgroup"]) == [{"ResourceARN": "a"}]
    assert client.calls == 4
