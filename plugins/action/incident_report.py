# -*- coding: utf-8 -*-
# Copyright: contributors to slurm_exporter.incident_response
# GNU General Public License v3.0+ (see COPYING or https://www.gnu.org/licenses/gpl-3.0.txt)
# SPDX-License-Identifier: GPL-3.0-or-later
"""incident_report: compute and render the report on the controller, then write and register it with the module."""

from __future__ import annotations

from ansible.errors import AnsibleActionFail
from ansible.plugins.action import ActionBase

from ansible_collections.slurm_exporter.incident_response.plugins.action.incident_notify import (
    INFO, link_settings, planned_result, profile_for, read_incident)
from ansible_collections.slurm_exporter.incident_response.plugins.module_utils.catalog import load_catalog
from ansible_collections.slurm_exporter.incident_response.plugins.module_utils.errors import IncidentResponseError
from ansible_collections.slurm_exporter.incident_response.plugins.plugin_utils.report import render_incident_report, render_trends

MODULE = 'slurm_exporter.incident_response.incident_report'


class ActionModule(ActionBase):
    """Render the Markdown and HTML report (or the trends report, also both) and hand it to the module."""

    TRANSFERS_FILES = False

    def run(self, tmp=None, task_vars=None):
        result = super().run(tmp, task_vars)
        del tmp
        args = dict(self._task.args)
        kind = args.get('kind') or 'incident'
        if args.get('rendered') is None:
            if kind == 'incident':
                if not args.get('id'):
                    raise AnsibleActionFail('id: required for kind=incident (INC-YYYYMMDD-NNNN)')
                record = read_incident(self, args, task_vars)
                if record is None:
                    result.update(planned_result(args, 'its report would be written'))
                    return result
                rendered = render_incident_report(record, profile_for(args, record), args.get('context'), args.get('template_dir'),
                                                  links=link_settings(args))
                args['rendered'] = {'markdown': rendered['markdown'], 'html': rendered['html'], 'metrics': rendered['metrics']}
            elif kind == 'trends':
                info_args = {'details': True}
                for key in ('store', 'store_backend', 'store_namespace', 'store_kubernetes', 'lock_timeout', 'since', 'until', 'catalog'):
                    if args.get(key) is not None:
                        info_args[key] = args[key]
                listing = self._execute_module(module_name=INFO, module_args=info_args, task_vars=task_vars)
                if listing.get('failed'):
                    raise AnsibleActionFail(listing.get('msg', 'cannot list incidents'))
                try:
                    catalog = load_catalog(args.get('catalog'))
                except IncidentResponseError as exc:
                    raise AnsibleActionFail(exc.message) from None
                rendered = render_trends(listing['incidents'], args.get('since'), args.get('until'), args.get('template_dir'),
                                         profile_for=lambda record: catalog.profile(record['type'], record['severity']))
                args['rendered'] = {'markdown': rendered['markdown'], 'html': rendered['html'], 'figures': rendered['figures']}
            else:
                raise AnsibleActionFail('kind: expected incident or trends, got %r' % kind)
        result.update(self._execute_module(module_name=MODULE, module_args=args, task_vars=task_vars))
        return result
