#!/usr/bin/env bash
# Set up a machine to run and test the collection. Idempotent; safe (and quick) to re-run.
#   1. system packages: the dpkg entries of bindep.txt (the controller's and the [test] ones), with apt, only those missing
#   2. Python packages: requirements.txt and requirements-test.txt, into the python that runs this
#   3. this checkout linked as ~/.ansible/collections/ansible_collections/slurm_exporter/incident_response
#   4. the pip bootstrap that ansible-test sanity would otherwise download (offline stand-in)
#   5. the real control plane of the real-cluster tests (tests/kube): built with Go from the module proxy, or the
#      cached build reused (~/.cache/slurm-ir-kube/<version>); without Go those tests are skipped, with the reason
# PYTHON=/path/to/python picks another interpreter (default: python3 on PATH, 3.11 or newer).
set -euo pipefail

here="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
cd "$here"
python="${PYTHON:-python3}"

step() { printf '\n== setup: %s\n' "$*"; }

"$python" -c 'import sys; sys.exit(sys.version_info < (3, 11))' \
  || { echo "setup.sh: $("$python" --version 2>&1) is too old: ansible-core 2.19 needs Python 3.11+" >&2; exit 2; }

step "system packages (bindep.txt: the controller's and the test profile's)"
# bindep.txt lines look like `name [platform:dpkg test]`: adding a package is adding a line there. Entries of another
# platform only (platform:rpm, for the execution environment) are left out.
mapfile -t wanted < <(awk '
  /^[[:space:]]*(#|$)/ { next }
  {
    name = $1; profiles = ""
    if (match($0, /\[[^]]*\]/)) profiles = substr($0, RSTART + 1, RLENGTH - 2)
    n = split(profiles, p, /[[:space:]]+/); other_platform = 0
    for (i = 1; i <= n; i++) {
      if (p[i] ~ /^platform:/ && p[i] != "platform:dpkg") other_platform = 1
    }
    if (!other_platform) print name
  }' bindep.txt)
if command -v dpkg-query >/dev/null 2>&1 && command -v apt-get >/dev/null 2>&1; then
  missing=()
  for pkg in "${wanted[@]}"; do
    dpkg-query -W -f='${Status}' "$pkg" 2>/dev/null | grep -q 'install ok installed' || missing+=("$pkg")
  done
  if [ "${#missing[@]}" -gt 0 ]; then
    sudo_cmd=()
    [ "$(id -u)" -eq 0 ] || sudo_cmd=(sudo)
    echo "installing: ${missing[*]}"
    "${sudo_cmd[@]}" apt-get update -qq
    "${sudo_cmd[@]}" env DEBIAN_FRONTEND=noninteractive \
      apt-get install -y -qq --no-install-recommends "${missing[@]}"
  else
    echo "all present: ${wanted[*]}"
  fi
else
  echo "no apt here: install these yourself: ${wanted[*]}"
fi

step "Python packages (requirements.txt, requirements-test.txt) for $("$python" -c 'import sys; print(sys.executable)')"
"$python" -m pip install --disable-pip-version-check --root-user-action=ignore --progress-bar off -q \
  -r requirements.txt -r requirements-test.txt

step "collection link"
collections="$HOME/.ansible/collections/ansible_collections/slurm_exporter"
mkdir -p "$collections"
if [ -d "$collections/incident_response" ] && [ ! -L "$collections/incident_response" ]; then
  echo "setup.sh: $collections/incident_response is a directory (an installed copy?): remove it first" >&2
  exit 2
fi
ln -sfn "$here" "$collections/incident_response"
echo "$collections/incident_response -> $here"

step "ansible-test pip bootstrap (offline stand-in for get-pip)"
# ansible-test bootstraps pip in each sanity virtualenv by running get-pip.py, which it downloads
# from a host that is not reachable here and caches as ~/.ansible/test/cache/get_pip_<version>.py.
# It runs that file as `<venv python> <wrapper> --disable-pip-version-check pip==<version>
# [--no-setuptools] [--no-wheel]`. The stand-in does what get-pip.py does with those arguments: it
# runs pip from pip's own wheel (taken from PyPI) to install that wheel into the venv.
pip_version=$("$python" scripts/ansible_test_pip_version.py)
cache="$HOME/.ansible/test/cache"
mkdir -p "$cache"
wheel="$cache/pip-${pip_version}-py3-none-any.whl"
if [ ! -f "$wheel" ]; then
  "$python" -m pip download --disable-pip-version-check --progress-bar off -q \
    --no-deps --only-binary=:all: -d "$cache" "pip==${pip_version}"
fi
stand_in="$cache/get_pip_${pip_version//./_}.py"
cat > "$stand_in.tmp" <<PY
"""Stand-in for get-pip.py ${pip_version} (written by scripts/setup.sh): pip from the cached wheel installs itself."""
import sys

WHEEL = '${wheel}'
# get-pip.py options that pip install does not know; setuptools and wheel are not wanted anyway
args = [arg for arg in sys.argv[1:] if arg not in ('--no-setuptools', '--no-wheel')]
sys.path.insert(0, WHEEL)
from pip._internal.cli.main import main  # noqa: E402

sys.exit(main(['install', '--upgrade', '--force-reinstall', '--find-links', '${cache}'] + args))
PY
mv -f "$stand_in.tmp" "$stand_in"
echo "$stand_in (pip ${pip_version})"

step "the real Kubernetes control plane for tests/realkube (tests/kube: build, or reuse the cache)"
# A cold build compiles kube-apiserver, kube-controller-manager, kube-scheduler, etcd and kwok (see README.md for
# how long); later runs find the cache and take a second. A failed build does not stop the setup: `make test` then
# skips the real-cluster tier and says why.
if ! "$python" -m tests.kube build; then
  echo "setup.sh: WARNING: the real control plane could not be built; the real-cluster tests will be skipped" >&2
fi

step "check"
"$python" - <<'PY'
import ansible, ansible_runner, kubernetes, jinja2, requests, yaml  # noqa: F401
from ansible.release import __version__
print('ansible-core', __version__, '/ kubernetes', kubernetes.__version__)
PY
ansible-galaxy collection list slurm_exporter.incident_response 2>/dev/null | tail -n 1
ansible-galaxy collection list kubernetes.core 2>/dev/null | tail -n 1
