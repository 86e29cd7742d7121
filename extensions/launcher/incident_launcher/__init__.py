# -*- coding: utf-8 -*-
# Copyright: contributors to slurm_exporter.incident_response
# GNU General Public License v3.0+ (see COPYING or https://www.gnu.org/licenses/gpl-3.0.txt)
# SPDX-License-Identifier: GPL-3.0-or-later
"""incident_launcher: accept Alertmanager webhooks and launch the collection's response.

Run it with ``PYTHONPATH=extensions/launcher python -m incident_launcher --config FILE``.
See docs/launcher.md.
"""

from __future__ import annotations

__version__ = '1.0.0'


class LauncherError(Exception):
    """A clear, user-facing failure of the launcher (configuration, spool, backend)."""
