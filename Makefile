# Entry points for people and CI. `make setup demo` on a new machine; `make test` is what CI runs.
#   setup           apt + pip requirements, collection link, ansible-test bootstrap (scripts/setup.sh)
#   demo            the demo incident on the local store (playbooks/demo.yml)
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
	ansible-playbook playbooks/demo.yml

# Runs every step even when one fails (CI shows all failures at once), then exits 1 if any failed.
test:
	@bash scripts/run-steps.sh $(TEST_STEPS)

unit:
	@echo "== unit tests (pytest tests/unit)"
	$(PYTEST) $(PYTEST_ARGS) tests/unit

integration:
	@echo "== integration tests (pytest tests/integration: real ansible-playbook runs)"
	$(PYTEST) $(PYTEST_ARGS) tests/integration

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
