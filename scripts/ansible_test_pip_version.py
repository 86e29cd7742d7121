"""Print the pip version that ansible-test bootstraps into its virtualenvs for this Python.

ansible-test looks for ~/.ansible/test/cache/get_pip_<version with underscores>.py before it tries to
download get-pip; scripts/setup.sh writes an offline stand-in under that name.
"""
from __future__ import annotations

import os
import re
import sys
import types


def main() -> int:
    version = '%d.%d' % sys.version_info[:2]
    try:
        from ansible_test._internal.python_requirements import get_venv_packages
        print(get_venv_packages(types.SimpleNamespace(version=version))['pip'])
        return 0
    except (ImportError, AttributeError, KeyError, TypeError):
        pass
    # Fallback for an ansible-test whose internals moved: read the default from the source.
    import ansible_test
    source_path = os.path.join(os.path.dirname(ansible_test.__file__), '_internal', 'python_requirements.py')
    with open(source_path, encoding='utf-8') as source:
        match = re.search(r"pip='([0-9.]+)'", source.read())
    if not match:
        print('cannot tell which pip ansible-test bootstraps (%s)' % source_path, file=sys.stderr)
        return 1
    print(match.group(1))
    return 0


if __name__ == '__main__':
    sys.exit(main())
