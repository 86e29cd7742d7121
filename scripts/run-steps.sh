#!/usr/bin/env bash
# Run Makefile targets one after the other, all of them even when one fails, then print how long
# each took and exit 1 if any failed. `make test` uses it: one run shows every failure.
# Usage: scripts/run-steps.sh TARGET...
set -uo pipefail

make_cmd="${MAKE:-make}"
failed=()
summary=()
total_start=$SECONDS

for step in "$@"; do
  start=$SECONDS
  printf '\n######## make %s\n' "$step"
  if "$make_cmd" --no-print-directory "$step"; then
    result=ok
  else
    result="FAILED (exit $?)"
    failed+=("$step")
  fi
  summary+=("$(printf '%-16s %5ss  %s' "$step" "$((SECONDS - start))" "$result")")
done

printf '\n######## summary\n'
printf '%s\n' "${summary[@]}"
printf '%-16s %5ss\n' total "$((SECONDS - total_start))"

if [ "${#failed[@]}" -gt 0 ]; then
  printf 'failed steps: %s\n' "${failed[*]}"
fi
printf 'make test: %d of %d steps passed\n' "$(($# - ${#failed[@]}))" "$#"
[ "${#failed[@]}" -eq 0 ]
