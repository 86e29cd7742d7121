# -*- coding: utf-8 -*-
# Copyright: contributors to slurm_exporter.incident_response
# GNU General Public License v3.0+ (see COPYING or https://www.gnu.org/licenses/gpl-3.0.txt)
# SPDX-License-Identifier: GPL-3.0-or-later
"""Sample Alertmanager payloads built at run time (plugins/module_utils/detection.py), for trying the response."""

from __future__ import annotations

import datetime

from ansible.errors import AnsibleFilterError

from ansible_collections.slurm_exporter.incident_response.plugins.module_utils import detection
from ansible_collections.slurm_exporter.incident_response.plugins.module_utils.catalog import load_catalog
from ansible_collections.slurm_exporter.incident_response.plugins.module_utils.errors import IncidentResponseError


def sample_alert(incident_type, catalog=None, starts_at=None, runbook_base_url=None):
    """The Alertmanager payload of one firing alert of ``incident_type``, starting now unless ``starts_at`` is given."""
    if starts_at is None:
        starts_at = datetime.datetime.now(datetime.timezone.utc).strftime('%Y-%m-%dT%H:%M:%S.%fZ')
    try:
        return detection.sample_payload(load_catalog(catalog or None), incident_type, starts_at,
                                        runbook_base_url or detection.DEFAULT_RUNBOOK_BASE)
    except IncidentResponseError as exc:
        raise AnsibleFilterError('sample_alert: %s' % exc.message) from None


class FilterModule:
    """Sample payloads."""

    def filters(self):
        return {'sample_alert': sample_alert}
