# Entry points for people and CI. `make setup demo` on a new machine; `make test` is what CI runs.
PYTHON ?= python3
PYTEST ?= $(PYTHON) -m pytest

.PHONY: setup demo test unit integration sanity lint changelog-lint bench

setup:
	bash scripts/setup.sh

demo:
	ansible-playbook playbooks/demo.yml

test: unit integration sanity lint changelog-lint
	@echo "== all checks passed"

unit:
	@echo "== unit tests"
	$(PYTEST) tests/unit

integration:
	@echo "== integration tests (real ansible-playbook processes)"
	$(PYTEST) tests/integration

sanity:
	@echo "== ansible-test sanity"
	bash scripts/sanity.sh

lint:
	@echo "== ansible-lint (production profile, offline)"
	ansible-lint

changelog-lint:
	@echo "== antsibull-changelog lint"
	antsibull-changelog lint

bench:
	$(PYTHON) benchmarks/bench_incident_list.py
	$(PYTHON) benchmarks/bench_concurrent_writers.py
