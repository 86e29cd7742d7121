# -*- coding: utf-8 -*-
# Copyright: contributors to slurm_exporter.incident_response
# GNU General Public License v3.0+ (see COPYING or https://www.gnu.org/licenses/gpl-3.0.txt)
# SPDX-License-Identifier: GPL-3.0-or-later
from __future__ import annotations

import datetime

import pytest

from ansible_collections.slurm_exporter.incident_response.plugins.module_utils import timeutil
from ansible_collections.slurm_exporter.incident_response.plugins.module_utils.errors import ValidationError


@pytest.mark.parametrize('text, seconds', [
    ('15m', 900), ('2h', 7200), ('1h 30m', 5400), ('15 minutes', 900), ('2 hours', 7200), ('1d', 86400), (45, 45), ('30', 30),
])
def test_durations(text, seconds):
    assert timeutil.parse_duration(text) == seconds


@pytest.mark.parametrize('text', ['soon', '15 parsecs', '', '-5m', True, None, '5m later'])
def test_bad_durations(text):
    with pytest.raises(ValidationError, match='duration'):
        timeutil.parse_duration(text, 'duration')


def test_alertmanager_timestamps():
    parsed = timeutil.parse_ts('2026-11-24T10:00:00.123456789Z')
    assert parsed == datetime.datetime(2026, 11, 24, 10, 0, 0, 123456, tzinfo=timeutil.UTC)
    assert timeutil.format_ts(timeutil.parse_ts('2026-11-24T12:00:00+02:00')) == '2026-11-24T10:00:00Z'
    assert timeutil.parse_ts('0001-01-01T00:00:00Z').year == 1
    with pytest.raises(ValidationError, match='endsAt'):
        timeutil.parse_ts('yesterday', 'endsAt')
