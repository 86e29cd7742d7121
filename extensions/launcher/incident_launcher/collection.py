# -*- coding: utf-8 -*-
# Copyright: contributors to slurm_exporter.incident_response
# GNU General Public License v3.0+ (see COPYING or https://www.gnu.org/licenses/gpl-3.0.txt)
# SPDX-License-Identifier: GPL-3.0-or-later
"""How ``python -m incident_launcher`` finds the collection it belongs to.

The launcher's modules import the collection's module_utils with ordinary imports
(``from ansible_collections.slurm_exporter.incident_response.plugins.module_utils.catalog import ...``).
Before the first of them, the entry point installs ansible-core's own collection loader, the one
``ansible-playbook`` uses: the collection is then importable wherever ansible-playbook finds it
(``collections_path`` of the launcher's configuration first, then ``ANSIBLE_COLLECTIONS_PATH`` or
``collections_path`` of ansible.cfg, ``~/.ansible/collections``, ``/usr/share/ansible/collections``,
and ``ansible_collections`` directories on ``sys.path`` such as the ``ansible`` package's).
Code that embeds the launcher (tests, benchmarks) makes the collection importable itself and never
calls this.
"""

from __future__ import annotations

import importlib

from incident_launcher import LauncherError

PACKAGE = 'ansible_collections.slurm_exporter.incident_response'


def use_collection_loader(roots=()):
    """Install ansible-core's collection loader with ``roots`` first; LauncherError when the collection is not found."""
    from ansible.plugins.loader import init_plugin_loader  # pylint: disable=import-outside-toplevel
    from ansible.utils.collection_loader import AnsibleCollectionConfig  # pylint: disable=import-outside-toplevel

    if AnsibleCollectionConfig.collection_finder is None:
        init_plugin_loader(list(roots))
    try:
        importlib.import_module(PACKAGE + '.plugins.module_utils.catalog')
    except ImportError as exc:
        raise LauncherError('the collection slurm_exporter.incident_response cannot be imported (%s): install it with ansible-galaxy, '
                            'or name its collections root in collections_path (configuration), ANSIBLE_COLLECTIONS_PATH or '
                            'ansible.cfg' % exc) from None
