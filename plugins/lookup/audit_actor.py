# -*- coding: utf-8 -*-
# Copyright: contributors to slurm_exporter.incident_response
# GNU General Public License v3.0+ (see COPYING or https://www.gnu.org/licenses/gpl-3.0.txt)
# SPDX-License-Identifier: GPL-3.0-or-later

from __future__ import annotations

DOCUMENTATION = r'''
name: audit_actor
version_added: 0.1.0
short_description: Who runs this playbook, for the incident record's audit trail
description:
  - Names the real actor of the run from its environment, for the C(actor) of the incident modules (the response role's
    C(incident_actor) defaults to it).
  - "AWX / Automation Controller jobs: the job variables AWX sets (C(awx_job_id), C(awx_job_template_name), C(awx_user_name),
    C(awx_schedule_name), C(awx_workflow_job_name), or their C(tower_*) names): C(awx:admin (job 123, template respond)),
    C(awx:schedule every-minute (job 124, template escalate)) for a scheduled job."
  - "The webhook launcher (its runner backend sets C(incident_launched_by) and C(response_run_id)):
    C(launcher:incident-launcher (run launcher-0a1b2c3d))."
  - "Event-Driven Ansible (C(ansible_eda.ruleset) and C(ansible_eda.rule)): C(eda:<ruleset>/<rule>)."
  - "Otherwise the command line: C(cli:<the controller's OS user>); C(ansible) when no user can be found."
  - Values are cleaned (control characters dropped, at most 80 characters each); nothing is templated.
author:
  - slurm_exporter incident response maintainers (@slurm-exporter)
options: {}
seealso:
  - module: slurm_exporter.incident_response.incident
'''

EXAMPLES = r'''
- name: Acknowledge as whoever runs this playbook
  slurm_exporter.incident_response.incident:
    state: acknowledge
    id: "{{ incident_id }}"
    actor: "{{ lookup('slurm_exporter.incident_response.audit_actor') }}"
'''

RETURN = r'''
_raw:
  description: One actor string, for example C(cli:alice) or C(awx:admin (job 123, template respond)).
  type: list
  elements: str
'''

import getpass  # noqa: E402

from ansible.plugins.lookup import LookupBase  # noqa: E402

from ansible_collections.slurm_exporter.incident_response.plugins.module_utils.people import audit_actor  # noqa: E402

NAMES = ('awx_job_id', 'tower_job_id', 'awx_job_template_name', 'tower_job_template_name', 'awx_user_name', 'tower_user_name',
         'awx_schedule_name', 'tower_schedule_name', 'awx_workflow_job_name', 'tower_workflow_job_name', 'incident_launched_by',
         'response_run_id', 'ansible_eda')


def os_user():
    try:
        return getpass.getuser()
    except (KeyError, OSError, ImportError):
        return None


class LookupModule(LookupBase):
    """The actor of this run (module_utils/people.py, audit_actor)."""

    def run(self, terms, variables=None, **kwargs):
        variables = variables or {}
        found = {}
        for name in NAMES:
            # Read as data: the values are printed into the record, never templated.
            if name in variables:
                found[name] = variables[name]
        return [audit_actor(found, os_user())]
