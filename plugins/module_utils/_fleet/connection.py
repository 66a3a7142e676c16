# -*- coding: utf-8 -*-

# Copyright: Contributors to the cattle.aws project
# GNU General Public License v3.0+ (see LICENSE or https://www.gnu.org/licenses/gpl-3.0.txt)

# PRIVATE to the collection: this file is an implementation detail of the cattle.aws modules.
# It is not a public API; it may change in any release without notice.

"""How every cattle.aws module makes its AWS clients."""

import gc

try:
    import boto3
    import botocore.config
    import botocore.exceptions
    import botocore.session
except ImportError:
    pass  # AnsibleAWSModule reports the missing library before any client is made

from ansible_collections.amazon.aws.plugins.module_utils.botocore import HAS_BOTO3
from ansible_collections.amazon.aws.plugins.module_utils.botocore import enable_placebo
from ansible_collections.amazon.aws.plugins.module_utils.botocore import get_aws_connection_info
from ansible_collections.amazon.aws.plugins.module_utils.retries import AWSRetry
from ansible_collections.amazon.aws.plugins.module_utils.retries import RetryingBotoClientWrapper

try:  # the user agent amazon.aws' own clients send (APN/1.0 Ansible/<version> amazon.aws/<version>)
    from ansible_collections.amazon.aws.plugins.module_utils.botocore import _get_user_agent_string
except ImportError:
    from ansible.module_utils.ansible_release import __version__ as _ansible_version

    def _get_user_agent_string():
        return f"APN/1.0 Ansible/{_ansible_version}"

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


# The services the modules call; warm_up() loads their API models.
SERVICES = ("ssm", "ec2", "autoscaling", "elbv2", "resourcegroupstaggingapi", "cloudwatch", "route53")
# (data_path, botocore loader) that warm_up() filled in this process, or None.
_WARM_LOADER = None


def warm_up():
    """Import the AWS SDK and load the API models of SERVICES into one botocore data loader, once.

    Called in ansible's controller process when it loads a cattle.aws action (before it forks the
    task's worker). Every module that then runs in a worker (see plugin_utils/direct_execution.py)
    inherits the loaded SDK and makes its clients from that loader: about 50 ms for four clients
    instead of about 0.6 s (boto3's import, then endpoints, partitions and each service's model
    read from disk and parsed again by every new session). Nothing of a user's configuration is read
    (fixed region and placeholder keys): credentials and region are still resolved by each module.
    Best effort: a failure leaves each module to load what it needs itself.

    Then ``gc.freeze()``, as Python's documentation advises before fork() without exec(): the
    objects alive now (ansible's and the SDK's, hundreds of thousands, all kept for the run) leave the
    garbage collector's generations. Without it, every collection in the controller and in each
    forked worker walks them all, and the walk writes to their pages, which the worker then copies:
    about 9 ms more per task of a playbook (50 trivial tasks: 2.6 s instead of 2.1 s).
    """
    global _WARM_LOADER
    if _WARM_LOADER is not None or not HAS_BOTO3:
        return
    try:
        botocore_session = botocore.session.Session()
        data_path = botocore_session.get_config_variable("data_path")
        loader = botocore_session.get_component("data_loader")
        session = boto3.session.Session(botocore_session=botocore_session, region_name="us-east-1",
                                        aws_access_key_id="warm-up", aws_secret_access_key="warm-up")
        for service in SERVICES:
            session.client(service, endpoint_url="https://warm-up.invalid")
            loader.load_service_model(service, "paginators-1")
    except Exception:  # pylint: disable=broad-exception-caught
        return
    _WARM_LOADER = (data_path, loader)
    gc.freeze()


def is_warm():
    """Whether warm_up() loaded the SDK in this process (or in the process this one was forked from)."""
    return _WARM_LOADER is not None


def _session(profile):
    """A boto3 session for ``profile``, using warm_up()'s loader when its data path is this session's."""
    botocore_session = botocore.session.Session()
    if profile:
        botocore_session.set_config_variable("profile", profile)
    if _WARM_LOADER is not None and botocore_session.get_config_variable("data_path") == _WARM_LOADER[0]:
        botocore_session.register_component("data_loader", _WARM_LOADER[1])
    session = boto3.session.Session(botocore_session=botocore_session)
    enable_placebo(session)
    return session


def _config(params):
    """amazon.aws' client configuration: its user agent, merged with ``config`` and ``aws_config``."""
    config = botocore.config.Config(user_agent=_get_user_agent_string())
    for name in ("config", "aws_config"):
        extra = params.pop(name, None)
        if extra:
            config = config.merge(extra if isinstance(extra, botocore.config.Config) else botocore.config.Config(**extra))
    return config


def client_factory(module, retry=True):
    """``client(service)``: the module's boto3 client for ``service``, made on first use (a stack
    without target groups never needs elbv2), identified, with amazon.aws' jittered retries unless
    ``retry`` is false (the module_utils then retry each call themselves).

    The clients are made as amazon.aws' ``module.client()`` makes them (the same connection options,
    user agent, configuration and errors), except that they share one session instead of one each,
    and warm_up()'s loader when there is one.
    """
    identify(module)
    region, endpoint_url, params = get_aws_connection_info(module)
    profile = params.pop("profile_name", None)
    config = _config(params)
    decorator = AWSRetry.jittered_backoff(catch_extra_error_codes=THROTTLING_CODES) if retry else None
    sessions, clients = [], {}

    def client(service):
        if service not in clients:
            try:
                if not sessions:
                    sessions.append(_session(profile))
                made = sessions[0].client(service, config=config, region_name=region, endpoint_url=endpoint_url,
                                          **params)
            except botocore.exceptions.NoRegionError:
                # pylint: disable-next=protected-access
                module.fail_json(msg=f"The {module._name} module requires a region and none was found in configuration, "
                                 "environment variables or module parameters")
            except (ValueError, botocore.exceptions.BotoCoreError) as e:
                module.fail_json_aws(e, msg="Couldn't connect to AWS")
            clients[service] = made if decorator is None else RetryingBotoClientWrapper(made, decorator)
        return clients[service]

    return client
