#!/usr/bin/env bash
# Run ansible-test sanity on this checkout.
# ansible-test must run from .../ansible_collections/<namespace>/<name> and resolves symlinks, so
# the files git knows (tracked, plus untracked ones that are not ignored) are copied to such a tree
# under .cache/ first. Extra arguments go to ansible-test (e.g. --test pylint).
set -euo pipefail

here="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
cd "$here"
python="${PYTHON:-python3}"
py_version=$("$python" -c 'import sys; print("%d.%d" % sys.version_info[:2])')
tree="$here/.cache/sanity/ansible_collections/slurm_exporter/incident_response"

rm -rf "$here/.cache/sanity"
mkdir -p "$tree"
git ls-files -z --cached --others --exclude-standard | while IFS= read -r -d '' file; do
  [ -e "$file" ] || continue  # deleted but not yet committed
  mkdir -p "$tree/$(dirname "$file")"
  cp -p "$file" "$tree/$file"
done
# ansible-test reads the file list from git when there is a repository
git -C "$tree" init -q && git -C "$tree" add -A

cd "$tree"
exec ansible-test sanity --python "$py_version" --color no "$@"
