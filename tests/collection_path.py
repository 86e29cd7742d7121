# -*- coding: utf-8 -*-
# Copyright: contributors to slurm_exporter.incident_response
# GNU General Public License v3.0+ (see COPYING or https://www.gnu.org/licenses/gpl-3.0.txt)
# SPDX-License-Identifier: GPL-3.0-or-later
"""Make ``ansible_collections.slurm_exporter.incident_response`` import from this checkout.

Used by tests/conftest.py and the benchmark scripts: a private collections root
(``<tmp>/slurm-ir-collections-<hash of the checkout path>/ansible_collections/slurm_exporter/incident_response``
-> this checkout) is put first on sys.path, so whatever is installed in
~/.ansible/collections, tests and benchmarks exercise this working tree.
"""

from __future__ import annotations

import hashlib
import os
import sys
import tempfile

REPO_ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
COLLECTIONS_ROOT = os.path.join(tempfile.gettempdir(),
                                'slurm-ir-collections-%s' % hashlib.sha256(REPO_ROOT.encode()).hexdigest()[:12])


def link_collection():
    """Create the private collections root (idempotent) and put it on sys.path; returns its path."""
    namespace_dir = os.path.join(COLLECTIONS_ROOT, 'ansible_collections', 'slurm_exporter')
    os.makedirs(namespace_dir, exist_ok=True)
    link = os.path.join(namespace_dir, 'incident_response')
    if os.path.islink(link) and os.readlink(link) != REPO_ROOT:
        os.unlink(link)
    if not os.path.islink(link):
        os.symlink(REPO_ROOT, link)
    if COLLECTIONS_ROOT not in sys.path:
        sys.path.insert(0, COLLECTIONS_ROOT)
    # ansible_collections is a namespace package spread over several roots (site-packages holds the
    # kubernetes.core and community.general of the ansible bundle); make it pick up the new root.
    module = sys.modules.get('ansible_collections')
    if module is not None and hasattr(module, '__path__'):
        path = os.path.join(COLLECTIONS_ROOT, 'ansible_collections')
        if path not in list(module.__path__):
            module.__path__.append(path)
    return COLLECTIONS_ROOT
