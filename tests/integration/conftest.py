# -*- coding: utf-8 -*-
# Copyright: contributors to slurm_exporter.incident_response
# GNU General Public License v3.0+ (see COPYING or https://www.gnu.org/licenses/gpl-3.0.txt)
# SPDX-License-Identifier: GPL-3.0-or-later
"""The integration tier's order: the longest files first.

pytest-xdist hands tests to its workers in collection order, so a long test collected last keeps one worker busy
while the others have nothing left to do. The files below hold the longest tests of the tier (see the --durations
list that ``make integration`` prints); they go first, the rest keeps its order.
"""

from __future__ import annotations

LONGEST_FIRST = ('tests/integration/test_safety.py', 'tests/integration/test_docs.py',
                 'tests/integration/test_alertmanager_e2e.py', 'tests/integration/test_controller_config.py')


def rank(nodeid):
    """The position of the file of ``nodeid`` in LONGEST_FIRST, or after all of them."""
    return next((index for index, prefix in enumerate(LONGEST_FIRST) if nodeid.startswith(prefix + '::')), len(LONGEST_FIRST))


def pytest_collection_modifyitems(items):
    items.sort(key=lambda item: rank(item.nodeid))
