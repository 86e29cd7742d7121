# Entry points for people and CI. `make setup demo` on a new machine; `make test` is what CI runs.
#   setup           apt + pip requirements, collection link, ansible-test bootstrap (scripts/setup.sh)
#   demo            a security-breach alert through the launcher against the emulated cluster (scripts/demo.py)
#   test            every check below, one after the other; fails if any failed, after running all
#   unit            pytest tests/unit
#   integration     pytest tests/integration (real ansible-playbook runs against the emulator)
#   sanity          ansible-test sanity on a copy of the checkout (scripts/sanity.sh)
#   lint            ansible-lint, production profile, offline (.ansible-lint)
#   changelog-lint  antsibull-changelog lint (changelogs/)
#   bench           every benchmarks/bench_*.py with its defaults
PYTHON ?= python3
PYTEST ?= $(PYTHON) -m pytest
PYTEST_ARGS ?=
ANSIBLE_LINT ?= ansible-lint
ANTSIBULL_CHANGELOG ?= antsibull-changelog
TEST_STEPS := unit integration sanity lint changelog-lint

.PHONY: setup demo test unit integration sanity lint changelog-lint bench

setup:
	bash scripts/setup.sh

demo:
	$(PYTHON) scripts/demo.py

# Runs every step even when one fails (CI shows all failures at once), then exits 1 if any failed.
test:
	@bash scripts/run-steps.sh $(TEST_STEPS)

unit:
	@echo "== unit tests (pytest tests/unit)"
	$(PYTEST) $(PYTEST_ARGS) tests/unit

# Integration tests spend most of their time waiting on ansible-playbook processes: a few run side by side
# (pytest-xdist; tests marked with one xdist_group share a worker). INTEGRATION_JOBS=0 runs them one after the other.
INTEGRATION_JOBS ?= 3
integration:
	@echo "== integration tests (pytest tests/integration: real ansible-playbook runs, $(INTEGRATION_JOBS) at a time)"
	$(PYTEST) $(PYTEST_ARGS) $(if $(filter-out 0,$(INTEGRATION_JOBS)),-n $(INTEGRATION_JOBS) --dist loadgroup) tests/integration

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
