"""Bad input catalogue: every wrong option fails with a message naming it, and changes nothing.

Table-driven: each case is (id, module, args, option, phrase). All cases run in ONE
ansible-playbook process (tests/helpers/batch.py), against one stack built with boto3 (two
fleets of shop/prod behind a listener, a listener rule, foreign target groups, a Route53 zone);
then each case is one test asserting that its module failed, that the message names the option
and says what is wrong (the phrase), and that no mutating AWS call was made while it ran.
The count is printed at the end of the session ("N bad inputs", quoted by the README).
"""

from __future__ import annotations

import datetime

import pytest

from ansible_collections.cattle.aws.plugins.module_utils._fleet import naming
from ansible_collections.cattle.aws.plugins.module_utils._fleet import tags as T
from helpers import is_mutating
from helpers.batch import calls_in, run_batch

pytestmark = pytest.mark.integration

AMI = "ami-0ca771e0000ba5e01"  # seeded by tools/local_aws_amis.json
IF, TS, GC, LOCK = "cattle.aws.immutable_fleet", "cattle.aws.traffic_shift", "cattle.aws.fleet_gc", "cattle.aws.stack_lock"
HEALTH, INFO, AMI_MOD, PACKER = "cattle.aws.fleet_health", "cattle.aws.fleet_info", "cattle.aws.fleet_ami", "cattle.aws.packer_build"
MISSING_LISTENER = "arn:aws:elasticloadbalancing:us-east-1:123456789012:listener/app/nope/0123456789abcdef/0123456789abcdef"
MISSING_RULE = ("arn:aws:elasticloadbalancing:us-east-1:123456789012:listener-rule/app/nope/0123456789abcdef/"
                "0123456789abcdef/0123456789abcdef")


def fleet(s, **kw):
    args = {"app": "shop", "environment": "prod", "version": "2.0", "ami_id": AMI, "instance_type": "t3.micro",
            "subnet_ids": s["subnets"], "wait": False}
    args.update(kw)
    return {k: v for k, v in args.items() if v is not None}


def alb(s, **kw):
    args = {"app": "shop", "environment": "prod", "listener_arn": s["listener"]}
    args.update(kw)
    return {k: v for k, v in args.items() if v is not None}


def dns(s, route53=None, **kw):
    r53 = {"zone_id": s["zone"], "record_name": "www.example.com", "targets": {"1.0": "10.0.0.1", "1.1": "10.0.0.2"}}
    r53.update(route53 or {})
    args = {"app": "shop", "environment": "prod", "route53": {k: v for k, v in r53.items() if v is not None}}
    args.update(kw)
    return args


def gc(s, **kw):
    return {"app": "shop", "environment": "prod", **kw}


def lock(s, **kw):
    return {"app": "shop", "environment": "prod", "holder": "ci", **kw}


def health(s, **kw):
    args = {"app": "shop", "environment": "prod", "version": "1.0", "timeout": 2, "poll_interval": 1}
    args.update(kw)
    return {k: v for k, v in args.items() if v is not None}


def packer(s, **kw):
    return {"app": "shop", "environment": "prod", "version": "2.0", "work_dir": "/tmp/cattle-bad-input-packer",
            "packer_path": "/nonexistent/packer", **kw}


# (id, module, args(stack) -> dict, option named in the message, phrase in the message)
CASES = [
    # ---------------------------------------------------------------- immutable_fleet
    ("fleet-app-uppercase", IF, lambda s: fleet(s, app="Shop"), "app", "lowercase letters"),
    ("fleet-app-too-long", IF, lambda s: fleet(s, app="a" * 33), "app", "1 to 32 characters"),
    ("fleet-app-missing", IF, lambda s: {k: v for k, v in fleet(s).items() if k != "app"}, "app", "missing required"),
    ("fleet-environment-charset", IF, lambda s: fleet(s, environment="prod_eu"), "environment", "lowercase letters"),
    ("fleet-environment-too-long", IF, lambda s: fleet(s, environment="e" * 25), "environment", "1 to 24 characters"),
    ("fleet-version-yaml-float", IF, lambda s: fleet(s, version=1.10), "version", "quote it"),
    ("fleet-version-charset", IF, lambda s: fleet(s, version="1.0/2"), "version", "Invalid version"),
    ("fleet-version-too-long", IF, lambda s: fleet(s, version="1" * 65), "version", "1 to 64 characters"),
    ("fleet-version-missing", IF, lambda s: {k: v for k, v in fleet(s).items() if k != "version"}, "version",
     "missing required"),
    ("fleet-state-choice", IF, lambda s: fleet(s, state="gone"), "state", "must be one of"),
    ("fleet-instance-type", IF, lambda s: fleet(s, instance_type="huge"), "instance_type", "not an EC2 instance type"),
    ("fleet-ami-id-format", IF, lambda s: fleet(s, ami_id="img-1234"), "ami_id", "not a valid ID"),
    ("fleet-subnet-id-format", IF, lambda s: fleet(s, subnet_ids=["subnet1"]), "subnet_ids", "not a valid ID"),
    ("fleet-security-group-format", IF, lambda s: fleet(s, security_group_ids=["default"]), "security_group_ids",
     "not a valid ID"),
    ("fleet-spec-incomplete", IF, lambda s: fleet(s, instance_type=None, subnet_ids=None), "instance_type",
     "is required with state=present"),
    ("fleet-spec-option-without-spec", IF, lambda s: fleet(s, ami_id=None, instance_type=None, subnet_ids=None,
                                                           key_name="deploy"), "key_name", "part of the fleet's spec"),
    ("fleet-capacity-min-above-max", IF, lambda s: fleet(s, capacity={"min": 3, "max": 1}), "capacity.min",
     "must not be greater than"),
    ("fleet-desired-above-max", IF, lambda s: fleet(s, capacity={"min": 1, "max": 2, "desired": 5}),
     "capacity.desired", "must be within"),
    ("fleet-desired-below-min", IF, lambda s: fleet(s, capacity={"min": 2, "max": 4, "desired": 1}),
     "capacity.desired", "must be within"),
    ("fleet-capacity-negative", IF, lambda s: fleet(s, capacity={"min": -1, "max": 2}), "capacity.min", ">= 0"),
    ("fleet-capacity-type", IF, lambda s: fleet(s, capacity={"desired": "two"}), "desired", "int"),
    ("fleet-port-range", IF, lambda s: fleet(s, target_group={"port": 70000}), "target_group.port", "1 and 65535"),
    ("fleet-health-check-path", IF, lambda s: fleet(s, target_group={"health_check": {"path": "health"}}),
     "target_group.health_check.path", "must start with /"),
    ("fleet-health-check-timeout", IF, lambda s: fleet(s, target_group={"health_check": {"interval": 5, "timeout": 5}}),
     "target_group.health_check.timeout", "must be less than"),
    ("fleet-protocol-choice", IF, lambda s: fleet(s, target_group={"protocol": "TCP"}), "protocol", "must be one of"),
    ("fleet-hop-limit", IF, lambda s: fleet(s, metadata_options={"http_put_response_hop_limit": 0}),
     "http_put_response_hop_limit", "within 1 and 64"),
    ("fleet-http-tokens-choice", IF, lambda s: fleet(s, metadata_options={"http_tokens": "maybe"}), "http_tokens",
     "must be one of"),
    ("fleet-volume-type-choice", IF, lambda s: fleet(s, volumes=[{"device_name": "/dev/xvda", "volume_type": "gp9"}]),
     "volume_type", "must be one of"),
    ("fleet-volume-device-missing", IF, lambda s: fleet(s, volumes=[{"volume_size": 8}]), "device_name",
     "missing required"),
    ("fleet-tags-cattle-prefix", IF, lambda s: fleet(s, tags={"cattle:version": "9"}), "tags", "reserved prefixes"),
    ("fleet-tags-aws-prefix", IF, lambda s: fleet(s, tags={"aws:cloudformation:stack-name": "x"}), "tags",
     "reserved prefixes"),
    ("fleet-grace-negative", IF, lambda s: fleet(s, health_check_grace_period=-5), "health_check_grace_period", ">= 0"),
    ("fleet-wait-timeout-zero", IF, lambda s: fleet(s, wait_timeout=0), "wait_timeout", "at least 1"),
    ("fleet-status-with-absent", IF, lambda s: fleet(s, ami_id=None, instance_type=None, subnet_ids=None,
                                                     state="absent", status="failed"), "status", "state=present only"),
    ("fleet-status-choice", IF, lambda s: fleet(s, status="broken"), "status", "must be one of"),
    ("fleet-unknown-option", IF, lambda s: fleet(s, desired_capacity=2), "desired_capacity", "Unsupported parameters"),
    ("fleet-wait-type", IF, lambda s: fleet(s, wait="perhaps"), "wait", "bool"),
    # ---------------------------------------------------------------- traffic_shift (ALB)
    ("shift-percent-above-100", TS, lambda s: alb(s, to_version="1.1", percent=150), "percent", "from 0 to 100"),
    ("shift-percent-negative", TS, lambda s: alb(s, to_version="1.1", percent=-1), "percent", "from 0 to 100"),
    ("shift-percent-without-to-version", TS, lambda s: alb(s, percent=50, weights={"1.0": 1}), "percent",
     "mutually exclusive"),
    ("shift-to-version-and-weights", TS, lambda s: alb(s, to_version="1.1", weights={"1.0": 1}), "to_version",
     "mutually exclusive"),
    ("shift-neither-to-version-nor-weights", TS, alb, "weights", "one of the following is required"),
    ("shift-no-traffic-point", TS, lambda s: {"app": "shop", "environment": "prod", "to_version": "1.1"},
     "listener_arn", "one of the following is required"),
    ("shift-listener-and-rule", TS, lambda s: alb(s, rule_arn=s["rule"], to_version="1.1"), "rule_arn",
     "mutually exclusive"),
    ("shift-weight-above-999", TS, lambda s: alb(s, weights={"1.0": 1000}), "weights['1.0']", "from 0 to 999"),
    ("shift-weight-negative", TS, lambda s: alb(s, weights={"1.0": 10, "1.1": -1}), "weights['1.1']", "from 0 to 999"),
    ("shift-weight-not-integer", TS, lambda s: alb(s, weights={"1.0": "heavy"}), "weights['1.0']", "integer"),
    ("shift-weights-all-zero", TS, lambda s: alb(s, weights={"1.0": 0, "1.1": 0}), "weights", "every version weight 0"),
    ("shift-weights-empty", TS, lambda s: alb(s, weights={}), "weights", "non-empty dictionary"),
    ("shift-more-than-5-target-groups", TS, lambda s: alb(s, weights={"1.0": 1, "1.1": 1, **{a: 1 for a in s["foreign"]}}),
     "prune_zero", "at most 5"),
    ("shift-unknown-version", TS, lambda s: alb(s, to_version="9.9"), "to_version", "Unknown version '9.9'"),
    ("shift-unknown-version-in-weights", TS, lambda s: alb(s, weights={"1.0": 50, "7.0": 50}), "weights",
     "Unknown version '7.0'"),
    ("shift-unknown-listener", TS, lambda s: alb(s, listener_arn=MISSING_LISTENER, to_version="1.1"), "listener_arn",
     "not found"),
    ("shift-unknown-rule", TS, lambda s: alb(s, listener_arn=None, rule_arn=MISSING_RULE, to_version="1.1"), "rule_arn",
     "not found"),
    ("shift-version-yaml-float", TS, lambda s: alb(s, to_version=1.1), "to_version", "quote it"),
    ("shift-restore-action-forward", TS, lambda s: alb(s, restore_action={"Type": "forward"}), "restore_action",
     "must be the fixed-response or redirect action"),
    ("shift-restore-action-and-to-version", TS, lambda s: alb(s, to_version="1.1", restore_action={"Type": "redirect"}),
     "restore_action", "mutually exclusive"),
    # ---------------------------------------------------------------- traffic_shift (Route53)
    ("dns-weight-above-255", TS, lambda s: dns(s, weights={"1.0": 256}), "weights['1.0']", "from 0 to 255"),
    ("dns-ttl-negative", TS, lambda s: dns(s, route53={"ttl": -1}, to_version="1.0"), "route53.ttl", "0 to"),
    ("dns-ttl-too-large", TS, lambda s: dns(s, route53={"ttl": 2 ** 31}, to_version="1.0"), "route53.ttl", "0 to"),
    ("dns-ttl-type", TS, lambda s: dns(s, route53={"ttl": "soon"}, to_version="1.0"), "ttl", "int"),
    ("dns-record-type-choice", TS, lambda s: dns(s, route53={"record_type": "MX"}, to_version="1.0"), "record_type",
     "must be one of"),
    ("dns-zone-missing", TS, lambda s: dns(s, route53={"zone_id": None}, to_version="1.0"), "zone_id",
     "missing required"),
    ("dns-unknown-zone", TS, lambda s: dns(s, route53={"zone_id": "Z0000000000NOPE"}, to_version="1.0"),
     "route53.zone_id", "not found"),
    ("dns-target-missing", TS, lambda s: dns(s, route53={"targets": {"1.0": "10.0.0.1"}}, weights={"1.0": 1, "1.1": 1}),
     "route53.targets", "no DNS target for version 1.1"),
    # ---------------------------------------------------------------- fleet_gc
    ("gc-keep-negative", GC, lambda s: gc(s, keep=-1), "keep", "0 or more"),
    ("gc-keep-type", GC, lambda s: gc(s, keep="two"), "keep", "int"),
    ("gc-mode-choice", GC, lambda s: gc(s, mode="shred"), "mode", "must be one of"),
    ("gc-drain-timeout-negative", GC, lambda s: gc(s, drain_timeout=-1), "drain_timeout", "0 or more"),
    ("gc-environment-charset", GC, lambda s: gc(s, environment="Prod"), "environment", "lowercase letters"),
    # ---------------------------------------------------------------- stack_lock
    ("lock-ttl-zero", LOCK, lambda s: lock(s, ttl=0), "ttl", "positive number of seconds"),
    ("lock-ttl-negative", LOCK, lambda s: lock(s, ttl=-60), "ttl", "positive number of seconds"),
    ("lock-ttl-type", LOCK, lambda s: lock(s, ttl="1h"), "ttl", "int"),
    ("lock-purpose-choice", LOCK, lambda s: lock(s, purpose="deploy"), "purpose", "must be one of"),
    ("lock-state-choice", LOCK, lambda s: lock(s, state="locked"), "state", "must be one of"),
    ("lock-prefix-reserved", LOCK, lambda s: lock(s, parameter_prefix="/aws/locks"), "parameter_prefix",
     "SSM reserves"),
    ("lock-prefix-relative", LOCK, lambda s: lock(s, parameter_prefix="locks"), "parameter_prefix",
     "starting with '/'"),
    ("lock-prefix-too-long", LOCK, lambda s: lock(s, parameter_prefix="/" + "l" * 2000), "parameter_prefix",
     "too long"),
    ("lock-wait-negative", LOCK, lambda s: lock(s, wait=-1), "wait", ">= 0"),
    ("lock-version-yaml-float", LOCK, lambda s: lock(s, version=1.10), "version", "quote it"),
    ("lock-version-charset", LOCK, lambda s: lock(s, version="1 0"), "version", "Invalid version"),
    # ---------------------------------------------------------------- fleet_health
    ("health-min-healthy-above-100", HEALTH, lambda s: health(s, min_healthy_percent=150), "min_healthy_percent",
     "between 0 and 100"),
    ("health-no-fleet", HEALTH, lambda s: health(s, app=None, version=None), "auto_scaling_group_name",
     "one of the following is required"),
    ("health-version-without-app", HEALTH, lambda s: health(s, app=None), "app", "missing parameter(s) required by 'version'"),
    ("health-body-regex", HEALTH, lambda s: health(s, http_checks=[{"url": "http://127.0.0.1:9/", "body_regex": "(["}]),
     "http_checks[0].body_regex", "not a valid regular expression"),
    ("health-version-yaml-float", HEALTH, lambda s: health(s, version=1.10), "version", "quote it"),
    ("health-http-check-url-missing", HEALTH, lambda s: health(s, http_checks=[{"status": 200}]), "url",
     "missing required"),
    # ---------------------------------------------------------------- fleet_info, fleet_ami, packer_build
    ("info-app-charset", INFO, lambda s: {"app": "shop!"}, "app", "lowercase letters"),
    ("ami-version-yaml-float", AMI_MOD, lambda s: {"app": "shop", "version": 2.0}, "version", "quote it"),
    ("ami-unknown-image", AMI_MOD, lambda s: {"app": "shop", "version": "2.0", "image_id": "ami-0123456789abcdef0"},
     "image_id", "does not exist"),
    ("ami-tags-reserved", AMI_MOD, lambda s: {"app": "shop", "version": "2.0", "image_id": AMI, "tags": {"cattle:app": "x"}},
     "tags", "reserved prefixes"),
    ("packer-template-and-content", PACKER, lambda s: packer(s, template="/tmp/t.json", template_content="{}"),
     "template_content", "mutually exclusive"),
    ("packer-no-template", PACKER, packer, "template", "one of the following is required"),
    ("packer-version-yaml-float", PACKER, lambda s: packer(s, version=1.10, template_content="{}"), "version",
     "quote it"),
    ("packer-template-missing", PACKER, lambda s: packer(s, template="/nonexistent/app.pkr.json"), "template",
     "does not exist"),
]

CATALOGUE_SIZE = len(CASES)

# Known gaps, reported: strict, so the test fails (remove the entry) once the module is fixed.
KNOWN_GAPS = {}
PARAMS = [pytest.param(*case, id=case[0], marks=[pytest.mark.xfail(strict=True, reason=KNOWN_GAPS[case[0]])]
                       if case[0] in KNOWN_GAPS else []) for case in CASES]


def _stack(aws):
    """shop/prod 1.0 (live) and 1.1 behind a listener with a rule, 4 foreign target groups, a hosted zone."""
    ec2, elbv2 = aws.client("ec2"), aws.client("elbv2")
    subnets = ec2.describe_subnets(Filters=[{"Name": "default-for-az", "Values": ["true"]}])["Subnets"]
    subnet_ids = sorted(s["SubnetId"] for s in subnets)[:2]
    vpc = subnets[0]["VpcId"]
    lb = elbv2.create_load_balancer(Name="web", Subnets=subnet_ids)["LoadBalancers"][0]["LoadBalancerArn"]
    out = {"subnets": subnet_ids, "vpc": vpc}
    for day, version in enumerate(("1.0", "1.1"), start=1):
        names = naming.fleet_names("shop", "prod", version)
        tags = T.ownership_tags("shop", "prod", version,
                                created_at=datetime.datetime(2024, 5, day, tzinfo=datetime.timezone.utc))
        ec2.create_launch_template(
            LaunchTemplateName=names["launch_template"], LaunchTemplateData={"ImageId": AMI, "InstanceType": "t3.micro"},
            TagSpecifications=[{"ResourceType": "launch-template", "Tags": T.dict_to_tag_list(tags)}])
        out[version] = elbv2.create_target_group(
            Name=names["target_group"], Protocol="HTTP", Port=8080, VpcId=vpc, Tags=T.dict_to_tag_list(tags),
        )["TargetGroups"][0]["TargetGroupArn"]
        aws.client("autoscaling").create_auto_scaling_group(
            AutoScalingGroupName=names["auto_scaling_group"],
            LaunchTemplate={"LaunchTemplateName": names["launch_template"], "Version": "1"},
            MinSize=0, MaxSize=3, DesiredCapacity=1, VPCZoneIdentifier=",".join(subnet_ids),
            TargetGroupARNs=[out[version]],
            Tags=[{"Key": k, "Value": v, "PropagateAtLaunch": True} for k, v in tags.items()])
    out["foreign"] = [
        elbv2.create_target_group(Name=f"other-{i}", Protocol="HTTP", Port=80, VpcId=vpc)["TargetGroups"][0]["TargetGroupArn"]
        for i in range(4)
    ]
    forward = [{"Type": "forward", "ForwardConfig": {"TargetGroups": [
        {"TargetGroupArn": out["1.0"], "Weight": 100}, {"TargetGroupArn": out["1.1"], "Weight": 0}]}}]
    out["listener"] = elbv2.create_listener(LoadBalancerArn=lb, Protocol="HTTP", Port=80,
                                            DefaultActions=forward)["Listeners"][0]["ListenerArn"]
    out["rule"] = elbv2.create_rule(
        ListenerArn=out["listener"], Priority=10, Actions=forward,
        Conditions=[{"Field": "path-pattern", "Values": ["/api/*"]}])["Rules"][0]["RuleArn"]
    out["zone"] = aws.client("route53").create_hosted_zone(
        Name="example.com", CallerReference="bad-inputs")["HostedZone"]["Id"].split("/")[-1]
    return out


@pytest.fixture(scope="module")
def catalogue(aws_endpoint):
    """Run every case in one playbook; {case_id: result} plus the calls recorded during the batch."""
    aws_endpoint.reset()
    aws_endpoint.clear_calls()
    stack = _stack(aws_endpoint)
    aws_endpoint.clear_calls()
    results = run_batch(aws_endpoint, [(case_id, module, args(stack)) for case_id, module, args, dummy, dummy2 in CASES])
    calls = aws_endpoint.call_log()
    yield results, calls
    aws_endpoint.reset()
    aws_endpoint.clear_calls()


def test_catalogue_is_large_enough():
    assert CATALOGUE_SIZE >= 40
    assert len({c[0] for c in CASES}) == CATALOGUE_SIZE, "case ids must be unique"
    assert len({c[1] for c in CASES}) == 8, "every module has bad-input cases"


@pytest.mark.parametrize("case_id,module,args,option,phrase", PARAMS)
def test_bad_input_fails_naming_the_option_without_changes(catalogue, case_id, module, args, option, phrase):
    results, calls = catalogue
    result = results[case_id]
    msg = str(result.get("msg", ""))
    assert result.get("failed") is True, f"{case_id}: {module} did not fail: {result}"
    assert option in msg, f"{case_id}: the message does not name {option!r}: {msg}"
    assert phrase.lower() in msg.lower(), f"{case_id}: the message does not say {phrase!r}: {msg}"
    assert "Traceback" not in str(result.get("module_stderr", "")) + msg, f"{case_id}: crashed: {result}"
    mutating = [(c["service"], c["action"]) for c in calls_in(calls, result["_window"]) if is_mutating(c["action"])]
    assert mutating == [], f"{case_id}: mutating calls while it ran: {mutating}"


def test_no_mutating_call_in_the_whole_catalogue(catalogue):
    dummy, calls = catalogue
    assert [(c["service"], c["action"]) for c in calls if is_mutating(c["action"])] == []
