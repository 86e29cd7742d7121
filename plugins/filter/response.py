# -*- coding: utf-8 -*-
# Copyright: contributors to slurm_exporter.incident_response
# GNU General Public License v3.0+ (see COPYING or https://www.gnu.org/licenses/gpl-3.0.txt)
# SPDX-License-Identifier: GPL-3.0-or-later
"""Filters for the response, drill and chaos playbooks: the decisions, in plugins/module_utils/ (response, restore, drill,
chaos, slurm_jwt)."""

from __future__ import annotations

from ansible.errors import AnsibleFilterError

from ansible_collections.slurm_exporter.incident_response.plugins.module_utils import approvals, chaos, drill, response, restore, runs, slurm_jwt
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


def close_decision(record, catalog=None, auto_resolve=None, resolve_on_success=True, plan_ran=True):
    """What the end of a response does with the incident: ``{monitor, resolve, reason}`` (module_utils/runs.py)."""
    if not isinstance(record, dict) or 'type' not in record:
        raise AnsibleFilterError('close_decision: expected an incident record')
    if auto_resolve is not None and not isinstance(auto_resolve, dict):
        raise AnsibleFilterError('close_decision: auto_resolve must map incident types to true or false, got %r' % (auto_resolve,))
    loaded = load_catalog(catalog or None)
    for type_name, allowed in (auto_resolve or {}).items():
        loaded.require_type(type_name)
        if not isinstance(allowed, bool):
            raise AnsibleFilterError('close_decision: auto_resolve.%s must be true or false, got %r' % (type_name, allowed))
    category = loaded.categories.get(record.get('category'), {})
    return runs.close_decision(record, bool(category.get('auto_resolve', False)), auto_resolve, bool(resolve_on_success), bool(plan_ran))


def approval_required(settings, incident_type, action, catalog=None):
    """Whether ``action`` needs a person's approval for ``incident_type`` (incident_approvals; types checked against the catalog)."""
    approvals.validate_settings(settings, set(load_catalog(catalog or None).types))
    return approvals.required(settings, incident_type, action)


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
            'restore_plan': _wrap(restore.restore_plan),
            'apply_outcome': _wrap(restore.apply_outcome),
            'drill_score': _wrap(drill_score),
            'close_decision': _wrap(close_decision),
            'jwt_key_location': _wrap(slurm_jwt.jwt_key_location),
            'jwt_signed_with': _wrap(slurm_jwt.jwt_signed_with),
            'jwt_key_fingerprint': _wrap(slurm_jwt.key_fingerprint),
            'jwt_rotation_plan': _wrap(slurm_jwt.rotation_plan),
            'approval_required': _wrap(approval_required),
        }
