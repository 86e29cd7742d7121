# -*- coding: utf-8 -*-
# Copyright: contributors to slurm_exporter.incident_response
# GNU General Public License v3.0+ (see COPYING or https://www.gnu.org/licenses/gpl-3.0.txt)
# SPDX-License-Identifier: GPL-3.0-or-later
"""The launcher package (extensions/launcher) on the import path, and helpers shared by its unit tests."""

from __future__ import annotations

import os
import sys

import pytest

LAUNCHER_DIR = os.path.join(os.path.dirname(os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))),
                            'extensions', 'launcher')
HERE = os.path.dirname(os.path.abspath(__file__))
for _path in (LAUNCHER_DIR, HERE):
    if _path not in sys.path:
        sys.path.insert(0, _path)

from launcher_testlib import alert, payload  # noqa: E402  pylint: disable=wrong-import-position


@pytest.fixture
def make_alert():
    return alert


@pytest.fixture
def make_payload():
    return payload
