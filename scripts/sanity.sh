#!/usr/bin/env bash
# Run ansible-test sanity on this checkout. Extra arguments go to ansible-test (e.g. --test pylint).
#
# - ansible-test must run from .../ansible_collections/<namespace>/<name> and resolves symlinks, so
#   the collections-path link that scripts/setup.sh makes is no help: the files git knows (tracked,
#   plus untracked ones that are not ignored) are copied to such a tree under .cache/sanity/ first.
# - --local: ansible-test itself runs in this python (the one `make setup` installed into). Every
#   sanity test that needs packages (pylint, yamllint, voluptuous, ...) still gets its own virtualenv
#   under ~/.ansible/test/venv with ansible-test's exact pins, installed from PyPI once and reused
#   by later runs (warm run about 30 s, cold about 1 min). --venv would add one more virtualenv to
#   delegate to, rebuilt in the fresh copy on every run (slower, nothing gained); --docker needs
#   images from a registry this machine can't reach. Nothing is installed into this python.
#   Those virtualenvs bootstrap pip with a get-pip script that is normally downloaded from a host
#   that is not reachable here: scripts/setup.sh places an offline stand-in in ~/.ansible/test/cache.
# - No tests/sanity/ignore-*.txt: every test must pass as it is.
# - A run takes a lock on ~/.ansible/test: two ansible-test runs on one machine share (and would
#   both rebuild) the same virtualenvs.
# - At the end, one line per sanity test: passed, skipped (and why) or failed.
set -euo pipefail

here="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
cd "$here"
python="${PYTHON:-python3}"
py_version=$("$python" -c 'import sys; print("%d.%d" % sys.version_info[:2])')
work="$here/.cache/sanity"
tree="$work/ansible_collections/slurm_exporter/incident_response"
test_home="$HOME/.ansible/test"

die() { echo "sanity.sh: $*" >&2; exit 2; }

# Fail early and clearly on what `make setup` would have provided, rather than with a download
# error from inside ansible-test, or a test that is quietly skipped.
command -v ansible-test >/dev/null || die "ansible-test not found: run 'make setup'"
pip_version=$("$python" "$here/scripts/ansible_test_pip_version.py")
[ -f "$test_home/cache/get_pip_${pip_version//./_}.py" ] \
  || die "no pip bootstrap for ansible-test in $test_home/cache (pip $pip_version): run 'make setup'"
if [ -n "$(git ls-files '*.sh')" ]; then
  command -v shellcheck >/dev/null || die "shellcheck not found (bindep.txt): run 'make setup'"
fi
if [ -n "$(git ls-files '*.ps1' '*.psm1' '*.psd1')" ]; then
  command -v pwsh >/dev/null || die "pwsh not found: the pslint sanity test would be skipped"
fi
for ignore in tests/sanity/ignore-*.txt; do
  [ -e "$ignore" ] || continue
  if grep -qv '^\s*\(#.*\)\?$' "$ignore"; then
    die "$ignore has entries: this project keeps none (fix the code, or say in the report why it can't be)"
  fi
done

mkdir -p "$test_home"
exec 9>"$test_home/.sanity.lock"
if command -v flock >/dev/null; then
  flock -w 1800 9 || die "another ansible-test run holds $test_home/.sanity.lock"
fi

rm -rf "$work"
mkdir -p "$tree"
git ls-files -z --cached --others --exclude-standard \
  | "$python" -c 'import os, sys; sys.stdout.write("".join(p + "\0" for p in sys.stdin.read().split("\0") if p and os.path.lexists(p)))' \
  | tar --null --files-from=- -cf - \
  | tar -xf - -C "$tree"
# ansible-test takes the file list from git when the collection is a repository
git -C "$tree" init -q && git -C "$tree" add -A

cd "$tree"
status=0
ansible-test sanity --local --python "$py_version" --color no --junit "$@" || status=$?

"$python" - tests/output/junit <<'PY' || true
import glob, os, sys
import xml.etree.ElementTree as ET

rows = []
for path in sorted(glob.glob(os.path.join(sys.argv[1], '*.xml'))):
    for case in ET.parse(path).iter('testcase'):
        name = case.get('name')
        if case.find('skipped') is not None:
            skipped = case.find('skipped')
            rows.append((name, 'skipped: ' + (skipped.get('message') or skipped.text or '').strip()))
        elif case.find('failure') is not None or case.find('error') is not None:
            rows.append((name, 'FAILED'))
        else:
            rows.append((name, 'passed'))
if rows:
    print('\nsanity tests:')
    for name, result in sorted(set(rows)):
        print('  %-24s %s' % (name, result))
PY
exit "$status"
