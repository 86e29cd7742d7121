# -*- coding: utf-8 -*-
# Copyright: contributors to slurm_exporter.incident_response
# GNU General Public License v3.0+ (see COPYING or https://www.gnu.org/licenses/gpl-3.0.txt)
# SPDX-License-Identifier: GPL-3.0-or-later
"""The launcher package (extensions/launcher) on the import path for its unit tests; alerts come from tests/alerts.py."""

from __future__ import annotations

import os
import sys

LAUNCHER_DIR = os.path.join(os.path.dirname(os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))),
                            'extensions', 'launcher')
if LAUNCHER_DIR not in sys.path:
    sys.path.insert(0, LAUNCHER_DIR)
