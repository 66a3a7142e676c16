"""cattle.aws.fleet_health (and roles/health_gate) against the in-process endpoint, AWS behaviour injected."""

from __future__ import annotations

import datetime
import http.server
import threading
import time

import pytest

from ansible_collections.cattle.aws.plugins.module_utils._fleet import tags as fleet_tags

pytestmark = pytest.mark.integration

APP, ENV, VERSION = "shop", "test", "1.0.0"
ASG = "shop-test-1.0.0"


def make_fleet(endpoint, desired=2, version=VERSION):
    """A fleet like immutable_fleet's: LT + TG + ASG, tagged with the ownership tags."""
    tags = fleet_tags.ownership_tags(APP, ENV, version)
    ec2 = endpoint.client("ec2")
    vpc_id = ec2.describe_vpcs(Filters=[{"Name": "isDefault", "Values": ["true"]}])["Vpcs"][0]["VpcId"]
    ec2.create_launch_template(
        LaunchTemplateName=f"shop-test-{version}",
        LaunchTemplateData={"ImageId": "ami-0ca771e0000ba5e01", "InstanceType": "t3.micro"},
        TagSpecifications=[{"ResourceType": "launch-template", "Tags": fleet_tags.dict_to_tag_list(tags)}],
    )
    elbv2 = endpoint.client("elbv2")
    tg_arn = elbv2.create_target_group(
        Name=f"shop-test-{version.replace('.', '-')}-abcdef12", Protocol="HTTP", Port=8080, VpcId=vpc_id,
        TargetType="instance", Tags=fleet_tags.dict_to_tag_list(tags),
    )["TargetGroups"][0]["TargetGroupArn"]
    endpoint.client("autoscaling").create_auto_scaling_group(
        AutoScalingGroupName=f"shop-test-{version}",
        LaunchTemplate={"LaunchTemplateName": f"shop-test-{version}", "Version": "1"},
        MinSize=0, MaxSize=4, DesiredCapacity=desired, AvailabilityZones=["us-east-1a"],
        TargetGroupARNs=[tg_arn],
        Tags=[{"Key": k, "Value": v, "PropagateAtLaunch": True} for k, v in tags.items()],
    )
    return tg_arn


def gate_args(**extra):
    return {"app": APP, "environment": ENV, "version": VERSION, "timeout": 3, "poll_interval": 0.5, **extra}


def patch_health(monkeypatch, decide):
    """Make moto report target health like AWS: decide(instance_id) -> (state, reason, description)."""
    from moto.elbv2 import models

    original = models.FakeTargetGroup.health_for

    def health_for(self, target, ec2_backend):
        status = original(self, target, ec2_backend)
        decided = decide(target["Id"])
        if decided is None:
            return status
        state, reason, description = decided
        return models.FakeHealthStatus(target["Id"], status.port, self.health_check_port, state, reason, description)

    monkeypatch.setattr(models.FakeTargetGroup, "health_for", health_for)


def test_healthy_fleet_passes_at_first_poll(threaded_aws, run_module):
    make_fleet(threaded_aws)
    threaded_aws.clear_calls()
    result = run_module(threaded_aws, "cattle.aws.fleet_health", gate_args())
    assert not result.get("failed"), result
    assert result["healthy"] is True and result["status"] == "healthy"
    assert result["polls"] == 1
    # (healthy at the first poll: no timing asserted here, the benchmark measures the gate's reaction)
    assert result["time_to_healthy"] is not None and result["time_to_healthy"] <= result["elapsed"]
    assert result["auto_scaling_group_name"] == ASG
    assert len(result["instances"]) == 2
    assert all(i["targets"][0]["state"] == "healthy" for i in result["instances"])
    assert result["changed"] is False
    assert threaded_aws.mutating_calls() == []


def test_targets_becoming_healthy_pass_within_one_poll(threaded_aws, run_module, monkeypatch):
    make_fleet(threaded_aws)
    first_seen = []

    def decide(instance_id):
        first_seen.append(time.monotonic())
        if time.monotonic() >= first_seen[0] + 1.5:  # healthy 1.5 s after the gate first looked
            return None
        return ("initial", "Elb.RegistrationInProgress", "Target registration is in progress")

    patch_health(monkeypatch, decide)
    result = run_module(threaded_aws, "cattle.aws.fleet_health", gate_args(timeout=20))
    assert not result.get("failed"), result
    assert result["polls"] >= 3
    # polls every 0.5 s: seen healthy within one poll (+ call latency) of becoming healthy
    assert 1.5 <= result["time_to_healthy"] < 1.5 + 0.5 + 0.5


def test_unhealthy_targets_time_out_with_the_reason(threaded_aws, run_module, monkeypatch):
    make_fleet(threaded_aws)
    patch_health(monkeypatch, lambda i: ("unhealthy", "Target.ResponseCodeMismatch", "Health checks failed with these codes: [500]"))
    result = run_module(threaded_aws, "cattle.aws.fleet_health", gate_args(timeout=2))
    assert result["failed"] is True
    assert result["timed_out"] is True
    assert "was not healthy after 2 s" in result["msg"]
    assert "0/2 healthy" in result["msg"] and "Target.ResponseCodeMismatch" in result["msg"]
    assert {t["state"] for i in result["instances"] for t in i["targets"]} == {"unhealthy"}
    # it gives up at the timeout: the last poll starts before it, and no poll is started after it
    assert result["elapsed"] >= 2 and result["polls"] <= 2 / 0.5 + 1


def test_min_healthy_percent(threaded_aws, run_module, monkeypatch):
    make_fleet(threaded_aws, desired=2)
    first = {}

    def decide(instance_id):
        first.setdefault("id", instance_id)
        return None if instance_id == first["id"] else ("unhealthy", "Target.Timeout", "Request timed out")

    patch_health(monkeypatch, decide)
    result = run_module(threaded_aws, "cattle.aws.fleet_health", gate_args(min_healthy_percent=50))
    assert not result.get("failed"), result
    result = run_module(threaded_aws, "cattle.aws.fleet_health", gate_args(timeout=1))
    assert result["failed"] is True and "1/2 healthy (need 2" in result["msg"]


def test_failed_scaling_activity_fails_at_once(threaded_aws, run_module, monkeypatch):
    make_fleet(threaded_aws)
    from moto.autoscaling import responses
    from moto.core.responses import ActionResult

    def describe_scaling_activities(self):
        now = datetime.datetime.now(datetime.timezone.utc)
        return ActionResult({"Activities": [{
            "ActivityId": "a-1", "AutoScalingGroupName": ASG,
            "Description": "Launching a new EC2 instance.  Status Reason: The requested configuration is currently not supported.",
            "Cause": "At 2024-05-01T12:00:00Z an instance was started in response to a difference between desired and actual capacity.",
            "StartTime": now, "EndTime": now, "StatusCode": "Failed",
            "StatusMessage": "The requested configuration is currently not supported. Launching EC2 instance failed.",
            "Progress": 100,
        }]})

    monkeypatch.setattr(responses.AutoScalingResponse, "describe_scaling_activities", describe_scaling_activities)
    patch_health(monkeypatch, lambda i: ("initial", "Elb.RegistrationInProgress", "Target registration is in progress"))
    result = run_module(threaded_aws, "cattle.aws.fleet_health", gate_args(timeout=60))
    assert result["failed"] is True
    assert result["timed_out"] is False
    assert result["polls"] == 1 and result["elapsed"] < 5
    assert "scaling activity Failed" in result["msg"]
    assert "Launching EC2 instance failed" in result["msg"]


def test_alarm_in_alarm_fails_at_once(threaded_aws, run_module):
    make_fleet(threaded_aws)
    cloudwatch = threaded_aws.client("cloudwatch")
    for name in ("shop-test-5xx", "shop-test-latency"):
        cloudwatch.put_metric_alarm(
            AlarmName=name, MetricName="HTTPCode_Target_5XX_Count", Namespace="AWS/ApplicationELB", Statistic="Sum",
            Period=60, EvaluationPeriods=1, Threshold=1, ComparisonOperator="GreaterThanOrEqualToThreshold",
        )
    result = run_module(threaded_aws, "cattle.aws.fleet_health", gate_args(alarm_name_prefix="shop-test-"))
    assert not result.get("failed"), result
    assert any(c["name"] == "alarms" and c["status"] == "healthy" for c in result["checks"])

    cloudwatch.set_alarm_state(AlarmName="shop-test-5xx", StateValue="ALARM", StateReason="5 errors in 1 minute")
    for args in ({"alarm_name_prefix": "shop-test-"}, {"alarm_names": ["shop-test-5xx"]}):
        result = run_module(threaded_aws, "cattle.aws.fleet_health", gate_args(timeout=60, **args))
        assert result["failed"] is True and result["polls"] == 1
        assert "alarms in ALARM: shop-test-5xx: 5 errors in 1 minute" in result["msg"]

    result = run_module(threaded_aws, "cattle.aws.fleet_health", gate_args(alarm_names=["shop-test-typo"]))
    assert result["failed"] is True and "alarms not found: shop-test-typo" in result["msg"]


def test_no_fleet_fails_at_once(threaded_aws, run_module):
    result = run_module(threaded_aws, "cattle.aws.fleet_health", gate_args(timeout=60))
    assert result["failed"] is True and result["polls"] == 1
    assert "no auto scaling group found for app=shop environment=test version=1.0.0" in result["msg"]


class _Handler(http.server.BaseHTTPRequestHandler):
    def do_GET(self):  # noqa: N802 - http.server's name
        if self.path.startswith("/hang"):
            time.sleep(3)
        status = 500 if self.path.startswith("/error") else 200
        body = b'{"status": "ok"}' if status == 200 else b"boom"
        try:
            self.send_response(status)
            self.send_header("Content-Length", str(len(body)))
            self.end_headers()
            self.wfile.write(body)
        except OSError:
            pass

    def log_message(self, *args):
        pass


@pytest.fixture
def http_server():
    server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), _Handler)
    server.daemon_threads = True
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    yield f"http://127.0.0.1:{server.server_address[1]}"
    server.shutdown()
    server.server_close()


def test_http_check_200_needs_consecutive_successes(threaded_aws, run_module, http_server):
    make_fleet(threaded_aws)
    check = {"url": http_server + "/health", "body_regex": '"status": "ok"', "consecutive_successes": 3}
    result = run_module(threaded_aws, "cattle.aws.fleet_health", gate_args(http_checks=[check], poll_interval=0.2))
    assert not result.get("failed"), result
    assert result["polls"] == 3
    assert any(c["name"] == "http" and "3/3 consecutive successes" in c["detail"] for c in result["checks"])


def test_http_check_500_times_out_with_the_status(threaded_aws, run_module, http_server):
    make_fleet(threaded_aws)
    check = {"url": http_server + "/error"}
    result = run_module(threaded_aws, "cattle.aws.fleet_health", gate_args(http_checks=[check], timeout=1))
    assert result["failed"] is True and result["timed_out"] is True
    assert "status 500, expected 200" in result["msg"]


def test_http_check_body_mismatch(threaded_aws, run_module, http_server):
    make_fleet(threaded_aws)
    check = {"url": http_server + "/health", "body_regex": "ready"}
    result = run_module(threaded_aws, "cattle.aws.fleet_health", gate_args(http_checks=[check], timeout=1))
    assert result["failed"] is True and "body does not match 'ready'" in result["msg"]


def test_http_check_hanging_server_is_bounded_by_request_timeout(threaded_aws, run_module, http_server):
    make_fleet(threaded_aws)
    check = {"url": http_server + "/hang", "request_timeout": 0.5}
    result = run_module(threaded_aws, "cattle.aws.fleet_health", gate_args(http_checks=[check], timeout=1))
    assert result["failed"] is True and result["timed_out"] is True
    assert "request failed" in result["msg"] and "timed out" in result["msg"]
    # the server never answers: only request_timeout (0.5 s per request) ends each check
    assert result["polls"] <= 3


def test_role_and_molecule_scenario(aws, run_playbook):
    """extensions/molecule/health_gate: prepare, converge (the role), verify, against the local endpoint."""
    from helpers.ansible import REPO_ROOT

    scenario = REPO_ROOT / "extensions" / "molecule" / "health_gate"
    for step in ("prepare.yml", "converge.yml", "verify.yml"):
        rc, out, err = run_playbook(aws, scenario / step)
        assert rc == 0, f"{step}\n{out}{err}"
        if step == "converge.yml":
            assert "molecule-test-1.0.0 is healthy after" in out


def test_role_fails_with_the_summary(threaded_aws, run_playbook, tmp_path, monkeypatch):
    make_fleet(threaded_aws)
    patch_health(monkeypatch, lambda i: ("unused", "Target.NotInUse", "Target group is not configured to receive traffic from the load balancer"))
    play = tmp_path / "gate.yml"
    play.write_text(
        "- name: Gate\n  hosts: localhost\n  gather_facts: false\n  roles:\n    - role: cattle.aws.health_gate\n"
    )
    rc, out, err = run_playbook(threaded_aws, play, {
        "health_gate_app": APP, "health_gate_environment": ENV, "health_gate_version": VERSION,
        "health_gate_timeout": 1, "health_gate_poll_interval": 0.5,
    })
    assert rc != 0
    assert "was not healthy after 1 s" in out
    assert "unused (Target.NotInUse)" in out
