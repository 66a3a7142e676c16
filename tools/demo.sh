#!/usr/bin/env bash
# `make demo`: the collection's main job against the embedded local AWS endpoint - two real
# blue/green releases of a sandbox stack with cattle.aws.release, then the stack and the report.
set -euo pipefail
cd "$(dirname "$0")/.."
PY=${PYTHON_BIN:-.venv/bin/python}
STATE_DIR=${STATE_DIR:-.local-aws}
BIN=$(cd "$(dirname "$PY")" && pwd)
export PATH="$BIN:$PATH"
DEMO_DIR=build/demo
mkdir -p "$DEMO_DIR"
STACK="$PWD/$DEMO_DIR/stack.yml"

step() { printf '\n\033[1m==> %s\033[0m\n' "$*"; }

step "Starting the local AWS endpoint (moto server on 127.0.0.1)"
"$PY" tools/local_aws.py start --state-dir "$STATE_DIR"
eval "$("$PY" tools/local_aws.py env --state-dir "$STATE_DIR")"
echo "AWS_ENDPOINT_URL=$AWS_ENDPOINT_URL"

# Bake with real Packer when it is installed (`make packer`); else use the endpoint's base image.
if command -v packer >/dev/null 2>&1; then
    BAKE="\"packer\": {}"
    BAKE_NOTE="AMIs baked with $(packer version | head -1) (the packer_bake role's default template)"
else
    BAKE="\"ami_id\": \"ami-0ca771e0000ba5e01\""
    BAKE_NOTE="Packer is not installed ('make packer'): the release uses the endpoint's base AMI (ami_id)"
fi

step "Creating the sandbox network: VPC, two subnets, security group, ALB with an HTTP:80 listener (503)"
ansible-playbook cattle.aws.sandbox -e "sandbox_stack_file=$STACK" -e "{
    \"sandbox_stack_extra\": {$BAKE, \"strategy\": \"canary\", \"canary\": {\"steps\": [25, 100], \"pause_seconds\": 2},
    \"health\": {\"timeout\": 120, \"poll_interval\": 1}, \"bake_seconds\": 2, \"keep\": 1,
    \"instance_prices\": {\"t3.micro\": 0.0104}, \"currency\": \"USD\", \"releases_per_week\": 3.5,
    \"report_dir\": \"\"}}"
# The YAML flow mapping above is JSON too; report_dir empty = ./release-reports/<app>-<env>-<version>.
echo "Stack file: $DEMO_DIR/stack.yml ($BAKE_NOTE)"
cat "$STACK"

step "Release 1.0.0 - the first release: the listener's 503 becomes a forward to 1.0.0"
(cd "$DEMO_DIR" && ansible-playbook cattle.aws.release -e "stack_file=$STACK" -e version=1.0.0)

step "Release 1.1.0 - blue/green beside 1.0.0: gate, canary 25 % then 100 %, watch, cleanup"
(cd "$DEMO_DIR" && ansible-playbook cattle.aws.release -e "stack_file=$STACK" -e version=1.1.0)

step "The stack now (cattle.aws.fleet_info)"
ansible-playbook tools/demo.yml -e "demo_stack_file=$STACK"

step "Release reports"
for dir in "$DEMO_DIR"/release-reports/*/; do
    echo "  ${dir}release-report.html  (and release-report.json)"
done
echo
echo "Roll back to 1.0.0 in one write:  (cd $DEMO_DIR && ansible-playbook cattle.aws.rollback -e stack_file=$STACK)"
echo "The local endpoint keeps running for you to explore: 'make endpoint-stop' stops it."
