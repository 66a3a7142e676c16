# -*- coding: utf-8 -*-

# Copyright: Contributors to the cattle.aws project
# GNU General Public License v3.0+ (see LICENSE or https://www.gnu.org/licenses/gpl-3.0.txt)

# PRIVATE to the collection: this file is an implementation detail of the cattle.aws modules.
# It is not a public API; it may change in any release without notice.

"""Run Packer for one bake: version check, var file, init/plugins, validate, build, manifest.

Everything Packer needs from AWS comes from the same connection settings as the other modules:
the region, and the endpoint override as the template variable ``aws_endpoint_url`` (Packer
ignores ``AWS_ENDPOINT_URL``; templates pass it to ``custom_endpoint_ec2``), with
``skip_region_validation``/``skip_metadata_api_check`` set to ``"true"`` when an endpoint is used.

Variables go in one JSON var file: JSON templates ignore variables they do not declare, HCL2
templates only warn about them (``-var`` on the command line would be an error for HCL2).
"""

from __future__ import annotations

import json
import os
import re
import subprocess

from .errors import FleetError

INSTALL_HINT = (
    "Install it: on Debian or Ubuntu 'sudo apt-get install packer' (or 'make packer' in the cattle.aws repository), "
    "elsewhere from https://developer.hashicorp.com/packer/install; or set packer_path (packer_bake_packer_path in the packer_bake role) to its path. "
    "To release without baking, give the stack an ami_id."
)

# Packer 1.7 added `packer init` (HCL2 required_plugins); 1.10 stopped bundling the Amazon plugin.
INIT_SINCE = (1, 7, 0)
UNBUNDLED_SINCE = (1, 10, 0)


def parse_version(text):
    """'Packer v1.6.6' / '1.11.2' -> (1, 6, 6); None when no version is found."""
    match = re.search(r"(\d+)\.(\d+)\.(\d+)", text or "")
    return tuple(int(x) for x in match.groups()) if match else None


def is_json_template(path):
    return str(path).endswith(".json")


def template_vars(app, environment, version, region, endpoint_url, manifest_path, extra=None):
    """The var file's content: the role's variables, then the user's (which win)."""
    use_endpoint = "true" if endpoint_url else "false"
    values = {
        "app": app,
        "environment": environment or "",
        "version": version,
        "region": region or "",
        "aws_endpoint_url": endpoint_url or "",
        "skip_region_validation": use_endpoint,
        "skip_metadata_api_check": use_endpoint,
        "manifest_path": manifest_path,
    }
    values.update({str(k): packer_value(v) for k, v in (extra or {}).items()})
    return values


def packer_value(value):
    """A variable value as Packer's var file wants it (JSON templates only take strings)."""
    if isinstance(value, str):
        return value
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, (dict, list)):
        return json.dumps(value, sort_keys=True)
    return "" if value is None else str(value)


def manifest_amis(manifest, region):
    """AMI ids of the manifest's last run in region (``artifact_id`` is ``region:ami-...,region:ami-...``)."""
    run = manifest.get("last_run_uuid")
    amis = []
    for build in manifest.get("builds", []):
        if run and build.get("packer_run_uuid") != run:
            continue
        for artifact in str(build.get("artifact_id") or "").split(","):
            artifact_region, _sep, ami_id = artifact.partition(":")
            if ami_id.startswith("ami-") and (not region or artifact_region == region):
                amis.append(ami_id)
    return amis


def tail(text, lines):
    return "\n".join((text or "").strip().splitlines()[-int(lines):])


def masker(secrets):
    """A function hiding every secret value in a text (Packer's output may echo variables)."""
    values = sorted({str(v) for v in secrets if v not in (None, "")}, key=len, reverse=True)

    def mask(text):
        for value in values:
            text = text.replace(value, "********")
        return text

    return mask


def _run(argv, cwd, env, timeout):
    try:
        proc = subprocess.run(argv, cwd=cwd, env=env, capture_output=True, text=True, timeout=timeout, check=False)
    except FileNotFoundError as e:
        raise FleetError(f"Packer is needed to bake the AMI but '{argv[0]}' was not found ({e}). {INSTALL_HINT}") from None
    except PermissionError as e:
        raise FleetError(f"Packer is needed to bake the AMI but '{argv[0]}' cannot run ({e}). {INSTALL_HINT}") from None
    return proc.returncode, proc.stdout, proc.stderr


def bake(packer_path, template, work_dir, variables, region, manifest_path, plugins=(), env=None,
         build_timeout=3600, log_lines=30, check_mode=False, runner=_run, secrets=()):
    """Run Packer; return a result dict with ``ami_id``. FleetError with Packer's own lines on failure.

    ``secrets``: values (of sensitive variables) masked in every message and in the build log written.
    """
    mask = masker(secrets)

    def run(argv, cwd, env, timeout):
        rc, out, err = runner(argv, cwd, env, timeout)
        return rc, mask(out or ""), mask(err or "")

    env = dict(os.environ if env is None else env)
    env.setdefault("CHECKPOINT_DISABLE", "1")
    os.makedirs(work_dir, mode=0o700, exist_ok=True)
    result = {"work_dir": work_dir, "template": template, "manifest_path": manifest_path, "commands": []}

    rc, out, err = run([packer_path, "version"], work_dir, env, 60)
    version = parse_version(out)
    if rc != 0 or version is None:
        raise FleetError(f"Packer is needed to bake the AMI but '{packer_path} version' failed: {tail(out + err, 5)}. {INSTALL_HINT}")
    result["packer_version"] = ".".join(str(x) for x in version)

    var_file = os.path.join(work_dir, "cattle.pkrvars.json")
    # Only the user may read it: it may hold sensitive variables.
    with os.fdopen(os.open(var_file, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600), "w", encoding="utf-8") as f:
        os.chmod(var_file, 0o600)
        json.dump(variables, f, indent=2, sort_keys=True)
    result["var_file"] = var_file

    def step(argv, timeout, failure):
        result["commands"].append(" ".join(argv))
        rc, out, err = run(argv, work_dir, env, timeout)
        if rc != 0:
            raise FleetError(failure(out, err), packer_output=(out + err).splitlines()[-int(log_lines):], **{
                k: result[k] for k in ("packer_version", "var_file", "work_dir")})
        return out

    if is_json_template(template):
        if version >= UNBUNDLED_SINCE:
            for plugin in plugins:
                step([packer_path, "plugins", "install", plugin], 600,
                     lambda out, err, p=plugin: f"packer plugins install {p} failed: {tail(out + err, log_lines)}")
    elif version >= INIT_SINCE:
        step([packer_path, "init", template], 600,
             lambda out, err: f"packer init {template} failed: {tail(out + err, log_lines)}")

    step([packer_path, "validate", f"-var-file={var_file}", template], 300,
         lambda out, err: f"The Packer template {template} is invalid (packer validate, Packer {result['packer_version']}):\n"
                          f"{tail(out + err, log_lines)}")
    if check_mode:
        result["ami_id"] = None
        return result

    log_path = os.path.join(work_dir, "packer-build.log")
    debug_log = os.path.join(work_dir, "packer-debug.log")
    result.update(log_path=log_path, debug_log_path=debug_log)
    build_env = dict(env, PACKER_LOG="1", PACKER_LOG_PATH=debug_log)
    argv = [packer_path, "build", "-color=false", f"-var-file={var_file}", template]
    result["commands"].append(" ".join(argv))
    try:
        rc, out, err = run(argv, work_dir, build_env, build_timeout)
    except subprocess.TimeoutExpired as e:
        raise FleetError(f"packer build did not finish within {build_timeout} s (build_timeout). Debug log: {debug_log}") from e
    with open(log_path, "w", encoding="utf-8") as f:
        f.write(out + err)
    if rc != 0:
        raise FleetError(
            f"packer build failed (rc={rc}). Last lines of Packer's output:\n{tail(out + err, log_lines)}\n"
            f"Full output: {log_path}; debug log: {debug_log}",
            log_path=log_path, debug_log_path=debug_log,
        )
    try:
        with open(manifest_path, encoding="utf-8") as f:
            manifest = json.load(f)
    except (OSError, ValueError) as e:
        raise FleetError(
            f"packer build succeeded but its manifest {manifest_path} cannot be read ({e}). The template needs a manifest "
            f"post-processor whose output is the variable manifest_path. Packer's output: {log_path}"
        ) from None
    amis = manifest_amis(manifest, region)
    if not amis:
        raise FleetError(f"packer build succeeded but {manifest_path} names no AMI in {region} for its last run. Packer's output: {log_path}")
    result["ami_id"] = amis[-1]
    result["ami_ids"] = amis
    return result
