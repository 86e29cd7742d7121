#!/usr/bin/env bash
# Set up a machine to run and test the collection. Idempotent; safe to re-run.
#   - system packages listed for [test] in bindep.txt (apt, only when missing)
#   - Python packages from requirements.txt and requirements-test.txt
#   - this checkout linked as ~/.ansible/collections/ansible_collections/slurm_exporter/incident_response
#   - the pip bootstrap that ansible-test sanity would otherwise download (offline machines)
set -euo pipefail

here="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
cd "$here"
python="${PYTHON:-python3}"

step() { printf '\n== %s\n' "$*"; }

step "system packages (bindep.txt [test])"
if command -v apt-get >/dev/null 2>&1; then
  wanted=$(sed -n 's/^\([a-z0-9.+-]*\) \[.*platform:dpkg.*test.*\]$/\1/p' bindep.txt)
  missing=""
  for pkg in $wanted; do
    dpkg-query -W -f='${Status}' "$pkg" 2>/dev/null | grep -q 'install ok installed' || missing="$missing $pkg"
  done
  if [ -n "$missing" ]; then
    sudo_cmd=""
    [ "$(id -u)" -eq 0 ] || sudo_cmd="sudo"
    $sudo_cmd apt-get update -qq
    # shellcheck disable=SC2086
    DEBIAN_FRONTEND=noninteractive $sudo_cmd apt-get install -y -qq --no-install-recommends $missing
  else
    echo "all present"
  fi
else
  echo "apt-get not found: install these yourself: $(sed -n 's/^\([a-z0-9.+-]*\) \[.*test.*\]$/\1/p' bindep.txt | tr '\n' ' ')"
fi

step "Python packages"
"$python" -m pip install --disable-pip-version-check -q -r requirements.txt -r requirements-test.txt

step "collection link"
collections="${ANSIBLE_COLLECTIONS_HOME:-$HOME/.ansible/collections}/ansible_collections/slurm_exporter"
mkdir -p "$collections"
ln -sfn "$here" "$collections/incident_response"
echo "$collections/incident_response -> $here"

step "ansible-test pip bootstrap (offline stand-in for get-pip)"
# ansible-test bootstraps pip in each sanity virtualenv with get-pip.py, downloaded from a host
# that is not reachable here and cached as ~/.ansible/test/cache/get_pip_<version>.py. The
# stand-in below installs the same pip from its wheel (from PyPI) with the arguments ansible-test
# passes, which is what get-pip.py does.
pip_version=$("$python" - <<'PY'
import re, ansible_test, os
source = open(os.path.join(os.path.dirname(ansible_test.__file__), '_internal', 'python_requirements.py')).read()
print(re.search(r"pip='([0-9.]+)'", source).group(1))
PY
)
cache="$HOME/.ansible/test/cache"
mkdir -p "$cache"
wheel="$cache/pip-${pip_version}-py3-none-any.whl"
if [ ! -f "$wheel" ]; then
  "$python" -m pip download --disable-pip-version-check -q --no-deps --only-binary=:all: -d "$cache" "pip==${pip_version}"
fi
cat > "$cache/get_pip_${pip_version//./_}.py" <<PY
"""Stand-in for get-pip.py ${pip_version}: install pip from the cached wheel (written by scripts/setup.sh)."""
import sys

WHEEL = '${wheel}'
args = [arg for arg in sys.argv[1:] if arg not in ('--no-setuptools', '--no-wheel')]
sys.path.insert(0, WHEEL)
from pip._internal.cli.main import main  # noqa: E402

sys.exit(main(['install', '--upgrade', '--force-reinstall', '--find-links', '${cache}'] + args))
PY
echo "$cache/get_pip_${pip_version//./_}.py (pip ${pip_version})"

step "done"
"$python" -c 'import ansible, kubernetes; print("ansible-core", ansible.__version__, "/ kubernetes", kubernetes.__version__)'
