#!/usr/bin/python
# -*- coding: utf-8 -*-
# Copyright: contributors to slurm_exporter.incident_response
# GNU General Public License v3.0+ (see COPYING or https://www.gnu.org/licenses/gpl-3.0.txt)
# SPDX-License-Identifier: GPL-3.0-or-later

from __future__ import annotations

DOCUMENTATION = r'''
module: incident_approval
short_description: Ask a person to approve a response action, wait for the answer, or record a person's decision
version_added: 0.1.0
description:
  - An action of a response plan can need a person's approval (the response role's C(incident_approvals)). With
    O(state=requested) this module records the request in the incident (the record's C(approvals) list, status
    C(pending)) and, with O(timeout), waits for a decision, polling the record; nothing is held while it waits (no store
    lock, no Lease).
  - With O(state=approved) or O(state=rejected) it records a person's decision, as O(actor). The webhook launcher does
    the same for Slack buttons, the C(/incident) slash command and PagerDuty notes (docs/people.md).
  - A request that times out stays C(pending) and is marked as timed out; a person can still approve it, and the next
    response run of the incident applies it. A decided approval is returned as it is by later requests; the opposite
    decision on a decided approval is refused.
  - Deciding an action that was not requested yet records the decision ahead, for any phase unless O(phase) is given.
author:
  - slurm_exporter incident response maintainers (@slurm-exporter)
extends_documentation_fragment:
  - slurm_exporter.incident_response.store
attributes:
  check_mode:
    support: full
    description: Reports the approval as it stands (or would be requested); writes nothing and does not wait.
  diff_mode:
    support: none
    description: Use the incident module's diff mode to see record changes.
options:
  id:
    description: The incident (C(INC-YYYYMMDD-NNNN)).
    type: str
    required: true
  action:
    description: The response action (for example C(scale_down)).
    type: str
    required: true
  phase:
    description:
      - The phase the action runs in (C(containment), C(eradication), ...). Required with O(state=requested).
      - For a decision, the phase of the pending request; left out, the newest request of O(action) in any phase.
    type: str
    choices: [detection, triage, containment, investigation, eradication, recovery, communication, escalation, lessons_learned]
  state:
    description:
      - V(requested) records the request (once) and waits up to O(timeout) seconds for a decision.
      - V(approved) and V(rejected) record a person's decision.
    type: str
    choices: [requested, approved, rejected]
    default: requested
  timeout:
    description:
      - With O(state=requested), how long the request waits for a decision, in seconds; recorded as the approval's
        C(expires_at) (and the response run's deadline moves past it, so that a waiting run is not taken for a dead
        one). V(0) records the request without a deadline and does not wait.
    type: float
    default: 0
  wait:
    description:
      - With O(state=requested) and a O(timeout), wait for the decision (until C(expires_at)); V(false) records the
        request and returns at once (to send the request to people, then wait with a second call).
    type: bool
    default: true
  poll_interval:
    description: Seconds between two reads of the record while waiting.
    type: float
    default: 2.0
  run:
    description: The response run that asks (its id, from the incident's C(runs)); recorded with the request.
    type: str
  reason:
    description: With a decision, why (recorded in the approval and the timeline).
    type: str
  actor:
    description:
      - Who asks (O(state=requested)) or who decides (a person, for O(state=approved) and O(state=rejected); for
        example C("{{ lookup('slurm_exporter.incident_response.audit_actor') }}"), which names the OS or AWX user).
    type: str
    default: ansible
seealso:
  - module: slurm_exporter.incident_response.incident
  - plugin: slurm_exporter.incident_response.audit_actor
    plugin_type: lookup
'''

EXAMPLES = r'''
- name: Ask for approval of scale_down (the request waits 15 minutes for an answer)
  slurm_exporter.incident_response.incident_approval:
    id: "{{ incident_id }}"
    action: scale_down
    phase: containment
    timeout: 900
    wait: false
  register: approval

- name: Tell the people who decide
  slurm_exporter.incident_response.incident_notify:
    id: "{{ incident_id }}"
    template: approval
    context:
      approval: "{{ approval.approval }}"
      description: "{{ approval.description }}"

- name: Wait for the decision (until the request's expires_at)
  slurm_exporter.incident_response.incident_approval:
    id: "{{ incident_id }}"
    action: scale_down
    phase: containment
    timeout: 900
  register: decision

- name: Approve it from the command line (as the OS user)
  slurm_exporter.incident_response.incident_approval:
    id: INC-20261124-0001
    action: scale_down
    state: approved
    reason: confirmed with the security lead
    actor: "{{ lookup('slurm_exporter.incident_response.audit_actor') }}"
'''

RETURN = r'''
approval:
  description:
    - The approval as recorded - C(action), C(phase), C(status) (pending, approved, rejected), C(requested_at),
      C(requested_by), C(expires_at), C(run), C(timed_out_at), C(decided_at), C(decided_by), C(reason), C(via).
    - C(null) in check mode for a request that would be created.
  returned: always
  type: dict
status:
  description: C(pending), C(approved) or C(rejected) after the call (C(pending) also after a time-out).
  returned: always
  type: str
  sample: approved
timed_out:
  description: Whether the wait ended without a decision.
  returned: always
  type: bool
waited:
  description: Seconds spent waiting.
  returned: always
  type: float
description:
  description: What the action does, in a sentence (for messages).
  returned: always
  type: str
'''

from ansible_collections.slurm_exporter.incident_response.plugins.module_utils import approvals  # noqa: E402
from ansible_collections.slurm_exporter.incident_response.plugins.module_utils.errors import ValidationError  # noqa: E402
from ansible_collections.slurm_exporter.incident_response.plugins.module_utils.module import IncidentResponseModule  # noqa: E402
from ansible_collections.slurm_exporter.incident_response.plugins.module_utils.record import PHASES  # noqa: E402

ARGUMENT_SPEC = {
    'id': {'type': 'str', 'required': True},
    'action': {'type': 'str', 'required': True},
    'phase': {'type': 'str', 'choices': list(PHASES)},
    'state': {'type': 'str', 'choices': ['requested', 'approved', 'rejected'], 'default': 'requested'},
    'timeout': {'type': 'float', 'default': 0.0},
    'wait': {'type': 'bool', 'default': True},
    'poll_interval': {'type': 'float', 'default': 2.0},
    'run': {'type': 'str'},
    'reason': {'type': 'str'},
    'actor': {'type': 'str', 'default': 'ansible'},
}


def run(module):
    params = module.params
    action = approvals.validate_action(params['action'])
    if params['timeout'] < 0 or params['poll_interval'] <= 0:
        raise ValidationError('timeout must be >= 0 and poll_interval > 0, got %r and %r' % (params['timeout'], params['poll_interval']))
    service = module.incident_service()
    store = service.store
    incident_id = service.find_id(params['id'])
    result = {'changed': False, 'timed_out': False, 'waited': 0.0, 'description': approvals.describe(action)}
    holder = {}
    if params['state'] == 'requested':
        if not params['phase']:
            raise ValidationError('phase: required with state=requested (the phase the action runs in)')

        def ask(record, now):
            holder['entry'], _created = approvals.request(record, action, params['phase'], now, service.actor, params['timeout'] or None,
                                                          params['run'])
        outcome = service.edit(incident_id, 'approval', ask)
        result['changed'] = outcome.changed
        entry = approvals.find(outcome.after, action, params['phase']) if outcome.after else None
        if entry is not None and entry['status'] == 'pending' and params['timeout'] > 0 and params['wait'] and not module.check_mode:
            entry, waited = approvals.await_decision(lambda: store.read(incident_id), action, params['phase'],
                                                     approvals.seconds_left(entry, params['timeout']), params['poll_interval'])
            result['waited'] = round(waited, 3)
            if entry['status'] == 'pending':
                result['timed_out'] = True
                timed = service.edit(incident_id, 'approval', lambda record, now: approvals.time_out(
                    record, action, params['phase'], now, service.actor, waited))
                entry = approvals.find(timed.after, action, params['phase'])
                result['changed'] = True
    else:
        def decide(record, now):
            holder['entry'], holder['changed'] = approvals.decide(record, action, params['phase'], params['state'], service.actor, now,
                                                                  reason=params['reason'], via='module')
        outcome = service.edit(incident_id, 'approval', decide)
        result['changed'] = outcome.changed
        entry = approvals.find(outcome.after, action, params['phase']) if outcome.after else holder.get('entry')
    result['approval'] = entry
    result['status'] = entry['status'] if entry else 'pending'
    return result


def main():
    module = IncidentResponseModule(argument_spec=ARGUMENT_SPEC, supports_check_mode=True)
    module.run(run)


if __name__ == '__main__':
    main()
