# -*- coding: utf-8 -*-

# Copyright: Contributors to the cattle.aws project
# GNU General Public License v3.0+ (see LICENSE or https://www.gnu.org/licenses/gpl-3.0.txt)

# PRIVATE to the collection: this file is an implementation detail of the cattle.aws modules.
# It is not a public API; it may change in any release without notice.

"""What every cattle.aws module does before it makes AWS clients."""

from ansible_collections.amazon.aws.plugins.module_utils.retries import AWSRetry

USER_AGENT = "cattle.aws/0.1.0"

# Throttling answers amazon.aws' AWSRetry does not retry by itself: SSM (and the other JSON
# services) answer ThrottlingException, the Resource Groups Tagging API ThrottledException.
# (EC2's RequestLimitExceeded and the query services' Throttling are in AWSRetry's list.)
THROTTLING_CODES = ["ThrottlingException", "ThrottledException"]


def identify(module):
    """Add ``cattle.aws/<version>`` to the user agent of the clients the module makes.

    CloudTrail then tells cattle.aws' calls from amazon.aws' own, and so does the test suite's
    least-privilege check. A user's own ``aws_config.user_agent_extra`` is kept in front.
    """
    config = dict(module.params.get("aws_config") or {})
    extra = config.get("user_agent_extra")
    if not extra or USER_AGENT not in extra:
        config["user_agent_extra"] = f"{extra} {USER_AGENT}" if extra else USER_AGENT
    module.params["aws_config"] = config


def client_factory(module):
    """``client(service)``: the module's boto3 client for ``service``, made on first use (a stack
    without target groups never needs elbv2), with amazon.aws' jittered retries, identified."""
    identify(module)
    clients = {}

    def client(service):
        if service not in clients:
            clients[service] = module.client(
                service, retry_decorator=AWSRetry.jittered_backoff(catch_extra_error_codes=THROTTLING_CODES))
        return clients[service]

    return client
