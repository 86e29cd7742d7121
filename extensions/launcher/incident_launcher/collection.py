# -*- coding: utf-8 -*-
# Copyright: contributors to slurm_exporter.incident_response
# GNU General Public License v3.0+ (see COPYING or https://www.gnu.org/licenses/gpl-3.0.txt)
# SPDX-License-Identifier: GPL-3.0-or-later
"""Access to the collection's module_utils (catalog, record, store, service, k8s, containment).

The launcher ships inside the collection (extensions/launcher) and reuses its code in-process.
:func:`ensure_collection` makes ``ansible_collections.slurm_exporter.incident_response`` importable:
as it is (installed or already on sys.path), else from a collections root named in the
configuration, ``ANSIBLE_COLLECTIONS_PATH`` or the default roots.
"""

from __future__ import annotations

import importlib
import os
import sys

from incident_launcher import LauncherError

PACKAGE = 'ansible_collections.slurm_exporter.incident_response'
DEFAULT_ROOTS = ('~/.ansible/collections', '/usr/share/ansible/collections')


def module_utils(name):
    """``plugins.module_utils.<name>`` of the collection (imported once)."""
    return importlib.import_module('%s.plugins.module_utils.%s' % (PACKAGE, name))


def _importable():
    try:
        module_utils('catalog')
    except ImportError:
        return False
    return True


def ensure_collection(roots=()):
    """Make the collection importable; returns the collections root used (or None when it already was)."""
    if _importable():
        return None
    candidates = list(roots)
    candidates += [path for path in os.environ.get('ANSIBLE_COLLECTIONS_PATH', '').split(os.pathsep) if path]
    candidates += list(DEFAULT_ROOTS)
    for root in candidates:
        root = os.path.abspath(os.path.expanduser(root))
        if os.path.basename(root) == 'ansible_collections':
            root = os.path.dirname(root)
        if not os.path.isdir(os.path.join(root, 'ansible_collections', 'slurm_exporter', 'incident_response', 'plugins', 'module_utils')):
            continue
        if root not in sys.path:
            sys.path.insert(0, root)
        namespace = sys.modules.get('ansible_collections')
        if namespace is not None and hasattr(namespace, '__path__'):
            path = os.path.join(root, 'ansible_collections')
            if path not in list(namespace.__path__):
                namespace.__path__.append(path)
        for name in [name for name in sys.modules if name.startswith('ansible_collections.slurm_exporter')]:
            del sys.modules[name]
        importlib.invalidate_caches()
        if _importable():
            return root
    raise LauncherError('the collection slurm_exporter.incident_response cannot be imported; install it, or name its collections '
                        'root in collections_path or ANSIBLE_COLLECTIONS_PATH (searched: %s)' % ', '.join(candidates))
