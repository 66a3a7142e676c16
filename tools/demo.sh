#!/usr/bin/env bash
# `make demo`: the collection's main job against the embedded local AWS endpoint.
# Prints only what really happened; steps the collection cannot do yet are named as such.
set -euo pipefail
cd "$(dirname "$0")/.."
PY=${PYTHON_BIN:-.venv/bin/python}
STATE_DIR=${STATE_DIR:-.local-aws}
BIN=$(dirname "$PY")
export PATH="$BIN:$PATH"
DEMO_DIR=build/demo
mkdir -p "$DEMO_DIR"

step() { printf '\n\033[1m==> %s\033[0m\n' "$*"; }

step "Starting the local AWS endpoint (moto server on 127.0.0.1)"
"$PY" tools/local_aws.py start --state-dir "$STATE_DIR"
eval "$("$PY" tools/local_aws.py env --state-dir "$STATE_DIR")"
echo "AWS_ENDPOINT_URL=$AWS_ENDPOINT_URL"

step "Creating the sandbox network: VPC, two subnets, security group, ALB with an HTTP:80 listener"
ansible-playbook cattle.aws.sandbox -e "sandbox_stack_file=$PWD/$DEMO_DIR/stack.yml"
echo "Stack file: $DEMO_DIR/stack.yml"
cat "$DEMO_DIR/stack.yml"

step "Two versions of the stack, provisioned side by side with cattle.aws.immutable_fleet"
ansible-playbook tools/demo.yml -e "demo_stack_file=$PWD/$DEMO_DIR/stack.yml"

step "Not built yet"
echo "The release playbook (bake with Packer, health gate, traffic shift, gc, report) is not part"
echo "of this version yet; the demo stops after what the collection can do today."
echo "The local endpoint keeps running for you to explore: 'make endpoint-stop' stops it."
