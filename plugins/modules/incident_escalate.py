#!/usr/bin/python
# -*- coding: utf-8 -*-
# Copyright: contributors to slurm_exporter.incident_response
# GNU General Public License v3.0+ (see COPYING or https://www.gnu.org/licenses/gpl-3.0.txt)
# SPDX-License-Identifier: GPL-3.0-or-later

from __future__ import annotations

DOCUMENTATION = r'''
module: incident_escalate
short_description: Escalate the open incidents that are overdue, one level per run
version_added: 0.1.0
description:
  - Finds the unresolved incidents that are past C(escalation_due_at), or were never escalated and are past
    C(response_due_at) without an acknowledgement, and raises each one by exactly one level.
  - C(escalation_due_at) comes from the severity's C(escalate_after) in the catalog (P1 30 minutes, P2 2 hours,
    P3 the next business day at the start of business, P4 the weekly review day) and is reset from the escalation
    time by every escalation, so running this every minute escalates each incident once per level.
  - The target level is explicit, so two runs that race (cron, an AWX schedule, the CronJob) raise an incident
    once; the second reports it in RV(skipped).
  - Drill incidents are never escalated (escalation pages people).
  - A response run still marked running past its deadline (its ansible-playbook was killed or cut off) is first recorded
    as lost, which hands its incident over to a person and makes its escalation due now (RV(lost));
    C(playbooks/escalate.yml) then compensates and tells the responders.
  - Every escalation is recorded in the incident (level, new due time, a timeline entry with the reason and the
    next tier). Notifying the tier is the job of M(slurm_exporter.incident_response.incident_notify) with
    the C(escalation) template, as C(playbooks/escalate.yml) does.
author:
  - slurm_exporter incident response maintainers (@slurm-exporter)
extends_documentation_fragment:
  - slurm_exporter.incident_response.store
attributes:
  check_mode:
    support: full
    description: Lists what would be escalated (RV(escalated), with the levels) and writes nothing.
  diff_mode:
    support: none
    description: The escalations are listed in the result.
options:
  tiers:
    description:
      - Who is told at each level, lowest first; level N notifies the Nth entry, and the last one stays for
        higher levels.
    type: list
    elements: str
    default: [team lead, management, executive]
  ids:
    description: Only consider these incidents (C(INC-YYYYMMDD-NNNN)); all unresolved incidents when not given.
    type: list
    elements: str
  actor:
    description: Who escalates, for the timeline and the audit log.
    type: str
    default: escalation-job
seealso:
  - module: slurm_exporter.incident_response.incident
  - module: slurm_exporter.incident_response.incident_info
  - module: slurm_exporter.incident_response.incident_notify
'''

EXAMPLES = r'''
- name: Escalate what is overdue
  slurm_exporter.incident_response.incident_escalate:
    store: /var/incident-response
    tiers: [team lead, security lead, CISO]
  register: escalation

- name: Tell the next tier
  slurm_exporter.incident_response.incident_notify:
    id: "{{ item.id }}"
    template: escalation
    store: /var/incident-response
    context:
      tier: "{{ item.tier }}"
      level: "{{ item.to }}"
      reason: "{{ item.reason }}"
  loop: "{{ escalation.escalated }}"
  loop_control:
    label: "{{ item.id }} -> level {{ item.to }}"
'''

RETURN = r'''
escalated:
  description: The incidents escalated by this run (in check mode, the ones that would be), oldest first.
  returned: always
  type: list
  elements: dict
  contains:
    id:
      description: Incident ID.
      type: str
      sample: INC-20261124-0001
    type:
      description: Incident type.
      type: str
    severity:
      description: Severity.
      type: str
    priority:
      description: Priority (P1-P4).
      type: str
    from:
      description: Level before.
      type: int
    to:
      description: Level after.
      type: int
    tier:
      description: Who is told at the new level (from O(tiers)).
      type: str
      sample: team lead
    reason:
      description: Why it was due.
      type: str
      sample: open past escalation_due_at 2026-11-24T10:30:00Z
    escalation_due_at:
      description: When it escalates again if still open.
      type: str
skipped:
  description: Due incidents another run escalated first (same shape as RV(escalated)).
  returned: always
  type: list
  elements: dict
lost:
  description: Incidents whose response runs were past their deadline and are now recorded as lost (handed over).
  returned: always
  type: list
  elements: dict
  contains:
    id:
      description: Incident ID.
      type: str
    runs:
      description: The runs recorded as lost.
      type: list
      elements: str
    drill:
      description: Whether the incident is a drill (a lost drill run is recorded, never escalated).
      type: bool
count:
  description: Number of incidents escalated.
  returned: always
  type: int
  sample: 1
'''

from ansible_collections.slurm_exporter.incident_response.plugins.module_utils.module import IncidentResponseModule  # noqa: E402
from ansible_collections.slurm_exporter.incident_response.plugins.module_utils import escalation  # noqa: E402
from ansible_collections.slurm_exporter.incident_response.plugins.module_utils import record as rec  # noqa: E402
from ansible_collections.slurm_exporter.incident_response.plugins.module_utils import timeutil  # noqa: E402

ARGUMENT_SPEC = {
    'tiers': {'type': 'list', 'elements': 'str', 'default': list(escalation.DEFAULT_TIERS)},
    'ids': {'type': 'list', 'elements': 'str'},
    'actor': {'type': 'str', 'default': 'escalation-job'},
}


def run(module):
    params = module.params
    tiers = escalation.validate_tiers(params['tiers'])
    ids = set(rec.validate_id(item) for item in params['ids'] or ())
    store = module.incident_store()
    lost = []
    escalated, skipped = escalation.run(module.incident_service(store), store, timeutil.utcnow(), tiers, ids, lost)
    return {'changed': bool(escalated or lost), 'escalated': escalated, 'skipped': skipped, 'count': len(escalated), 'lost': lost}


def main():
    module = IncidentResponseModule(argument_spec=ARGUMENT_SPEC, supports_check_mode=True)
    module.run(run)


if __name__ == '__main__':
    main()
