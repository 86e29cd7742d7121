# Entry points for people and CI. `make setup demo` on a new machine; `make test` is what CI runs.
#   setup           apt + pip requirements, collection link, ansible-test bootstrap (scripts/setup.sh)
#   demo            a security-breach alert through the launcher against the emulated cluster (scripts/demo.py)
#   test            every check below, one after the other; fails if any failed, after running all
#   unit            pytest tests/unit
#   integration     pytest tests/integration (real ansible-playbook runs against the emulator)
#   realkube        pytest tests/realkube (the collection against a real kube-apiserver; tests/kube builds it, cached)
#   cluster         start that control plane in the foreground (kubeconfig in .cache/cluster), Ctrl-C stops it
#   kube-binaries   build the control plane's binaries, or reuse the cached build (scripts/setup.sh runs it)
#   sanity          ansible-test sanity on a copy of the checkout (scripts/sanity.sh)
#   lint            ansible-lint, production profile, offline (.ansible-lint)
#   changelog-lint  antsibull-changelog lint (changelogs/)
#   bench           every benchmarks/bench_*.py with its defaults
#   screenshots     docs/images/report.png and trends.png, drawn by headless Chromium (scripts/screenshots.py)
PYTHON ?= python3
PYTEST ?= $(PYTHON) -m pytest
PYTEST_ARGS ?=
ANSIBLE_LINT ?= ansible-lint
ANTSIBULL_CHANGELOG ?= antsibull-changelog
TEST_STEPS := unit integration realkube sanity lint changelog-lint

.PHONY: setup demo test unit integration realkube cluster kube-binaries sanity lint changelog-lint bench screenshots

setup:
	bash scripts/setup.sh

demo:
	$(PYTHON) scripts/demo.py

# Runs every step even when one fails (CI shows all failures at once), then exits 1 if any failed; the last line
# counts the tests that ran against the real API server (tests/kube/fixtures.py writes REALKUBE_SUMMARY).
REALKUBE_SUMMARY ?= .cache/realkube-summary.txt
export REALKUBE_SUMMARY
test:
	@rm -f $(REALKUBE_SUMMARY)
	@bash scripts/run-steps.sh $(TEST_STEPS); status=$$?; \
	  cat $(REALKUBE_SUMMARY) 2>/dev/null || echo "tests against the real API server: 0 (the real-cluster tier did not run)"; \
	  exit $$status

unit:
	@echo "== unit tests (pytest tests/unit)"
	$(PYTEST) $(PYTEST_ARGS) tests/unit

# Integration tests spend most of their time waiting on ansible-playbook processes: a few run side by side
# (pytest-xdist; tests marked with one xdist_group share a worker). INTEGRATION_JOBS=0 runs them one after the other.
# --durations: the slowest tests are listed, so that a CI log shows where the time went.
INTEGRATION_JOBS ?= 3
integration:
	@echo "== integration tests (pytest tests/integration: real ansible-playbook runs, $(INTEGRATION_JOBS) at a time)"
	$(PYTEST) $(PYTEST_ARGS) --durations=25 $(if $(filter-out 0,$(INTEGRATION_JOBS)),-n $(INTEGRATION_JOBS) --dist loadgroup) tests/integration

# Each pytest process starts one control plane for the tests it runs; REALKUBE_JOBS processes (pytest-xdist) share
# the files out, a file's tests in one process (tests/realkube/conftest.py). REALKUBE_JOBS=0: one process, one plane.
REALKUBE_JOBS ?= 2
realkube:
	@echo "== real-cluster tests (pytest tests/realkube: kube-apiserver, controller manager, scheduler, etcd, kwok on loopback, $(REALKUBE_JOBS) control planes)"
	$(PYTEST) $(PYTEST_ARGS) --durations=15 $(if $(filter-out 0,$(REALKUBE_JOBS)),-n $(REALKUBE_JOBS) --dist loadgroup) tests/realkube

cluster:
	$(PYTHON) -m tests.kube up --dir .cache/cluster

kube-binaries:
	$(PYTHON) -m tests.kube build

sanity:
	@echo "== ansible-test sanity (scripts/sanity.sh)"
	bash scripts/sanity.sh

lint:
	@echo "== ansible-lint (production profile, offline)"
	$(ANSIBLE_LINT)

changelog-lint:
	@echo "== antsibull-changelog lint"
	$(ANTSIBULL_CHANGELOG) lint

bench:
	@set -e; for bench in benchmarks/bench_*.py; do \
		echo "== $$bench"; \
		$(PYTHON) "$$bench"; \
	done

screenshots:
	$(PYTHON) scripts/screenshots.py
