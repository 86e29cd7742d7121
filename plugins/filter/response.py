# -*- coding: utf-8 -*-
# Copyright: contributors to slurm_exporter.incident_response
# GNU General Public License v3.0+ (see COPYING or https://www.gnu.org/licenses/gpl-3.0.txt)
# SPDX-License-Identifier: GPL-3.0-or-later
"""Filters for the response, drill and chaos playbooks: the decisions, in plugins/module_utils/ (response, drill, chaos)."""

from __future__ import annotations

from ansible.errors import AnsibleFilterError

from ansible_collections.slurm_exporter.incident_response.plugins.module_utils import chaos, drill, response
from ansible_collections.slurm_exporter.incident_response.plugins.module_utils.catalog import load_catalog
from ansible_collections.slurm_exporter.incident_response.plugins.module_utils.errors import IncidentResponseError


def _wrap(function):
    def filter_function(*args, **kwargs):
        try:
            return function(*args, **kwargs)
        except IncidentResponseError as exc:
            raise AnsibleFilterError('%s: %s' % (function.__name__, exc.message)) from None
    filter_function.__name__ = function.__name__
    filter_function.__doc__ = function.__doc__
    return filter_function


def drill_score(record, catalog=None):
    """Score a drill record against the (overridden) catalog's targets."""
    profile = load_catalog(catalog or None).profile(record.get('type'), record.get('severity'))
    return drill.score(record, profile)


class FilterModule:
    """The response playbooks' decisions."""

    def filters(self):
        return {
            'chaos_verdict': _wrap(chaos.verdict),
            'known_good_revision': _wrap(response.known_good_revision),
            'raised_limits': _wrap(response.raised_limits),
            'jwt_expiry': _wrap(response.jwt_expiry),
            'image_findings': _wrap(response.image_findings),
            'restart_allowed': _wrap(response.restart_allowed),
            'scoped_manifests': _wrap(response.scoped_manifests),
            'not_ready_nodes': _wrap(response.not_ready_nodes),
            'drill_score': _wrap(drill_score),
        }
