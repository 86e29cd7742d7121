# -*- coding: utf-8 -*-
# Copyright: contributors to slurm_exporter.incident_response
# GNU General Public License v3.0+ (see COPYING or https://www.gnu.org/licenses/gpl-3.0.txt)
# SPDX-License-Identifier: GPL-3.0-or-later
"""incident_notify: render the notification templates on the controller, then send with the module."""

from __future__ import annotations

from ansible.errors import AnsibleActionFail
from ansible.plugins.action import ActionBase

from ansible_collections.slurm_exporter.incident_response.plugins.module_utils.catalog import load_catalog
from ansible_collections.slurm_exporter.incident_response.plugins.module_utils.errors import IncidentResponseError
from ansible_collections.slurm_exporter.incident_response.plugins.module_utils.messages import check_link_settings
from ansible_collections.slurm_exporter.incident_response.plugins.plugin_utils.render import render_notification

MODULE = 'slurm_exporter.incident_response.incident_notify'
INFO = 'slurm_exporter.incident_response.incident_info'


def read_incident(action, args, task_vars):
    """The record, read through incident_info on the target (where the store is)."""
    info_args = {'id': args.get('id')}
    for key in ('store', 'store_backend', 'store_namespace', 'store_kubernetes', 'lock_timeout'):
        if args.get(key) is not None:
            info_args[key] = args[key]
    result = action._execute_module(module_name=INFO, module_args=info_args, task_vars=task_vars)  # pylint: disable=protected-access
    if result.get('failed'):
        raise AnsibleActionFail(result.get('msg', 'cannot read incident %s' % args.get('id')))
    return result['incident']  # None in check mode for an incident an earlier task would open (planned)


def planned_result(args, what):
    """Check mode, for the incident an earlier task of the run would open: say what would happen."""
    return {'changed': True, 'planned': True, 'id': args.get('id'),
            'msg': 'check mode: incident %s would be opened by an earlier task of this run; %s' % (args.get('id'), what)}


def profile_for(args, record):
    try:
        return load_catalog(args.get('catalog')).profile(record['type'], record['severity'])
    except IncidentResponseError as exc:
        raise AnsibleActionFail(exc.message) from None


def link_settings(args):
    """The ``links`` option, checked on the controller (report_url with {id}, grafana_url)."""
    links = args.get('links')
    if links is None:
        return {}
    if not isinstance(links, dict):
        raise AnsibleActionFail('links: expected a mapping with report_url and/or grafana_url')
    unknown = sorted(set(links) - {'report_url', 'grafana_url'})
    if unknown:
        raise AnsibleActionFail('links: unknown option(s) %s; use report_url, grafana_url' % ', '.join(unknown))
    try:
        return check_link_settings(links)
    except IncidentResponseError as exc:
        raise AnsibleActionFail(exc.message) from None


class ActionModule(ActionBase):
    """Render, then hand the rendered messages to the module that sends and records them."""

    TRANSFERS_FILES = False

    def run(self, tmp=None, task_vars=None):
        result = super().run(tmp, task_vars)
        del tmp
        args = dict(self._task.args)
        if not args.get('id'):
            raise AnsibleActionFail('id: the incident to notify about is required (INC-YYYYMMDD-NNNN)')
        if args.get('messages') is None:
            record = read_incident(self, args, task_vars)
            if record is None:
                result.update(planned_result(args, 'the %s notification would be sent' % (args.get('template') or 'initial')))
                return result
            args['messages'] = render_notification(args.get('template') or 'initial', record, profile_for(args, record),
                                                   args.get('context'), args.get('template_dir'), links=link_settings(args))
        result.update(self._execute_module(module_name=MODULE, module_args=args, task_vars=task_vars))
        return result
