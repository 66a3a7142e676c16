# cattle.aws — two entry points for people: `make demo` and `make test`.
# Everything else here is a building block of those two.

PYTHON ?= python3
# One pytest worker per core; each worker starts its own local AWS endpoint.
PYTEST_ARGS ?= -n auto --dist loadfile
VENV ?= .venv
# ansible-core 2.17, the oldest we support: `make test-compat` runs the playbooks' tests with it.
COMPAT_VENV ?= .venv-core217
COMPAT_TESTS ?= tests/integration/test_release.py tests/integration/test_release_rollback.py \
	tests/integration/test_direct_execution.py tests/integration/test_awx_runner.py \
	tests/integration/test_health_gate.py tests/integration/test_docs_examples.py
STATE_DIR ?= .local-aws
BIN := $(VENV)/bin
COLLECTIONS := build/collections
export ANSIBLE_COLLECTIONS_PATH := $(CURDIR)/$(COLLECTIONS)
# Keep ansible quiet about things that are not ours to fix in a demo or a test run.
export ANSIBLE_LOCALHOST_WARNING := False
export ANSIBLE_INVENTORY_UNPARSED_WARNING := False
export ANSIBLE_NOCOLOR := $(if $(CI),1,)

.PHONY: demo test test-compat venv packer collection dist ee-context endpoint-start endpoint-stop unit integration sanity lint changelog-lint test-faults bench clean

## demo: a blue/green release against the embedded local AWS endpoint (moto server on 127.0.0.1)
demo: venv packer collection
	@PYTHON_BIN=$(BIN)/python STATE_DIR=$(STATE_DIR) bash tools/demo.sh

## test: every test there is — unit, integration (local endpoint), sanity, lint, changelog
test: venv packer collection
	$(BIN)/python -m pytest $(PYTEST_ARGS)
	$(BIN)/python tools/check_iam_policy.py build/api-calls docs/iam-policy.json
	$(MAKE) --no-print-directory test-compat sanity lint changelog-lint

## test-compat: the release, rollback, direct-execution, AWX, health gate and docs tests again with ansible-core 2.17
test-compat: venv packer collection $(COMPAT_VENV)/.installed
	CATTLE_ANSIBLE_BIN_DIR=$(CURDIR)/$(COMPAT_VENV)/bin $(BIN)/python -m pytest $(PYTEST_ARGS) $(COMPAT_TESTS)

$(COMPAT_VENV)/.installed: tests/compat-requirements.txt
	$(PYTHON) -m venv $(COMPAT_VENV)
	$(COMPAT_VENV)/bin/python -m pip install --quiet --disable-pip-version-check -r tests/compat-requirements.txt
	touch $@

## test-faults: the fault matrix alone (part of `make test`: API faults, SIGKILL in each phase, 10 faults in one run)
test-faults: venv packer collection
	$(BIN)/python -m pytest $(PYTEST_ARGS) tests/integration/test_faults_api.py \
		tests/integration/test_faults_kill.py tests/integration/test_faults_release.py

venv: $(VENV)/.installed

$(VENV)/.installed: requirements.txt tests/requirements.txt
	$(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install --quiet --disable-pip-version-check --upgrade pip
	$(BIN)/python -m pip install --quiet --disable-pip-version-check -r tests/requirements.txt
	touch $@

## packer: Debian's packer, when it is missing and apt-get can install it (root or sudo)
packer:
	@bash tools/install_packer.sh

collection: venv
	@$(BIN)/python tools/sync_collection.py $(COLLECTIONS)

## dist: the collection tarball that ships (build/dist/cattle-aws-<version>.tar.gz), from a clean copy
dist: venv
	@$(BIN)/python tools/build_collection.py build/dist

## ee-context: the execution environment's build context in build/ee (then: podman build build/ee)
ee-context: dist
	$(BIN)/ansible-builder create -f execution-environment.yml -c build/ee --output-filename Containerfile

endpoint-start: venv
	@$(BIN)/python tools/local_aws.py start --state-dir $(STATE_DIR)

endpoint-stop:
	@$(BIN)/python tools/local_aws.py stop --state-dir $(STATE_DIR) 2>/dev/null || true

unit: venv collection
	$(BIN)/python -m pytest $(PYTEST_ARGS) tests/unit

integration: venv collection
	$(BIN)/python -m pytest $(PYTEST_ARGS) tests/integration

sanity: venv
	$(BIN)/python tools/sanity.py

lint: venv
	$(BIN)/python tools/lint.py

changelog-lint: venv
	$(BIN)/antsibull-changelog lint

## bench: release, idempotent re-run, baseline playbook, scale and health-gate numbers (bench/README.md)
bench: venv collection
	$(BIN)/python tools/bench.py

clean: endpoint-stop
	rm -rf build tests/output .pytest_cache .hypothesis
