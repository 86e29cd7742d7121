#!/usr/bin/python
# -*- coding: utf-8 -*-
# Copyright: contributors to slurm_exporter.incident_response
# GNU General Public License v3.0+ (see COPYING or https://www.gnu.org/licenses/gpl-3.0.txt)
# SPDX-License-Identifier: GPL-3.0-or-later

from __future__ import annotations

DOCUMENTATION = r'''
module: incident
short_description: Open, update, acknowledge, escalate and resolve incident records
version_added: 0.1.0
description:
  - Manages the incident records of the SLURM exporter incident response framework, one JSON file per
    incident in a store directory, written atomically under a lock and validated against the record schema
    on every write. Every change is appended to the store's audit log.
  - O(state=open) opens a new incident, or attaches the given alerts to the unresolved incident that already
    holds one of their fingerprints (Alertmanager re-sends and resolved notifications update the same incident).
  - With O(workload), alerts with new fingerprints are correlated (O(correlation)) - while an incident of the same type
    on the same workload is open, they attach to it; alerts of a related type attach to it as related alerts; a firing
    alert within the cool-down after that incident resolved reopens it. One problem, one incident.
  - With O(claim_run), O(state=open) also decides whether the caller's response runs the incident's plan (RV(run_plan)) -
    yes for a new or reopened incident and for an open one that no live run is handling and that does not wait for a
    person; and records the run in the same locked write, so two concurrent responses never run one plan twice.
  - IDs are C(INC-YYYYMMDD-NNNN), a sequence per UTC day that stays unique under concurrent writers.
  - The incident type comes from O(type), else from the first alert's C(incident_type) label when it names
    a catalog type, else from the catalog's match rules, else from the catalog's fallback type.
    Response and escalation due times come from the catalog.
  - The status follows C(investigating) -> C(identified) -> C(monitoring) -> C(resolved) (a resolved incident can be
    reopened to C(investigating)); a change the lifecycle does not allow fails with the allowed targets named.
    Operational incidents move to C(monitoring) when all their alerts resolve, unless their response failed or waits
    for a person; security incidents never change status on their own.
  - Ending a run with O(run) V(failed) or V(lost) hands the incident over to a person - its escalation is due at once.
author:
  - slurm_exporter incident response maintainers (@slurm-exporter)
extends_documentation_fragment:
  - slurm_exporter.incident_response.store
attributes:
  check_mode:
    support: full
    description: Computes the change (and the ID a new incident would get) and writes nothing.
  diff_mode:
    support: full
    description: Shows the record before and after as JSON.
options:
  state:
    description:
      - V(open) opens or attaches; V(update) changes an existing incident; V(acknowledge) records who took it;
        V(escalate) raises the escalation level; V(resolve) moves it to resolved (a O(resolution) is required).
    type: str
    choices: [open, update, acknowledge, escalate, resolve]
    default: open
  id:
    description:
      - The incident to change, C(INC-YYYYMMDD-NNNN). Required for every O(state) but V(open), unless O(fingerprint) is given.
    type: str
  fingerprint:
    description:
      - An alert fingerprint (hexadecimal). With O(state=open) and no O(alerts), the incident is keyed by it;
        with other states it selects the unresolved incident that holds it.
    type: str
  type:
    description:
      - Incident type from the catalog (for example V(security_breach)). Classified from O(alerts) when omitted.
    type: str
  severity:
    description:
      - Overrides the type's severity from the catalog (V(critical), V(high), V(medium), V(low) in the shipped catalog).
    type: str
  alerts:
    description:
      - Alertmanager alerts (webhook payload version 4 C(alerts) items) to open the incident with or attach.
      - Labels and annotations are stored as data; they are never templated or used in paths.
    type: list
    elements: dict
  drill:
    description:
      - Marks a new incident as a drill; drills are reported apart from real incidents and never correlated with real ones.
    type: bool
    default: false
  workload:
    description:
      - With O(state=open), the workload the response acts on, C(namespace/deployment) (from the response's settings,
        never from alert labels). Recorded in the incident; the correlation key with the incident type.
    type: str
  correlation:
    description:
      - With O(state=open) and O(workload), how alerts with new fingerprints are grouped into incidents.
    type: dict
    suboptions:
      enabled:
        description: Correlate by type and workload at all.
        type: bool
        default: true
      cooldown:
        description: Seconds after an incident resolved during which its alert firing again reopens it.
        type: int
        default: 900
      related:
        description:
          - Incident type to the types whose open incident on the same workload takes its alerts as related alerts
            (in both directions).
        type: dict
        default: {api_failure: [network_partition], network_partition: [api_failure]}
  claim_run:
    description:
      - With O(state=open), decide whether this response runs the plan and record the run (RV(run)).
    type: dict
    suboptions:
      deadline:
        description:
          - Seconds the run may take. A run still marked running after it is lost (its process died or was cut off),
            which hands the incident over to a person.
        type: int
        default: 3600
      id:
        description:
          - The run's id (1-64 letters, digits, C(.), C(_), C(-)); random when not given. A caller that resumes its own
            interrupted run (the webhook launcher after a restart) gives the same id and continues that run.
        type: str
  run:
    description: With O(state=update), end a response run.
    type: dict
    suboptions:
      id:
        description: The run's id (RV(run.id) of the O(state=open) that claimed it).
        type: str
        required: true
      outcome:
        description: How it ended. V(failed) and V(lost) hand the incident over to a person and make its escalation due now.
        type: str
        required: true
        choices: [completed, failed, lost]
      reason:
        description: What happened (for a failure, what failed and what was compensated).
        type: str
  title:
    description: Short title. Defaults to the type's description.
    type: str
  summary:
    description: What is happening.
    type: str
  impact:
    description: Who or what is affected.
    type: str
  status:
    description:
      - Target status. Moving to V(resolved) needs a O(resolution) (given now or earlier).
    type: str
    choices: [investigating, identified, monitoring, resolved]
  status_reason:
    description: Why the status changes; goes into the timeline entry.
    type: str
  root_cause:
    description: The root cause, once known.
    type: str
  resolution:
    description: What resolved the incident.
    type: str
  timeline:
    description: Entries to append to the incident's timeline.
    type: list
    elements: dict
    suboptions:
      text:
        description: What happened (the entry's C(message) in the record).
        type: str
        required: true
      phase:
        description: Response phase.
        type: str
        choices: [detection, triage, containment, investigation, eradication, recovery, communication, escalation, lessons_learned]
      kind:
        description: Kind of entry.
        type: str
        default: note
        choices: [opened, alert, status, action, evidence, notification, note, escalation, acknowledgement, root_cause, resolution, follow_up, update]
      actor:
        description: Who did it; defaults to O(actor).
        type: str
      details:
        description: Structured details.
        type: dict
  actions:
    description:
      - Outcomes of response actions. An action with the same O(actions[].name) and O(actions[].phase) as an
        earlier one replaces it, so a re-run that ends the same way changes nothing.
    type: list
    elements: dict
    suboptions:
      name:
        description: Action name, for example V(isolate_pods).
        type: str
        required: true
      phase:
        description: Response phase.
        type: str
        default: containment
        choices: [detection, triage, containment, investigation, eradication, recovery, communication, escalation, lessons_learned]
      result:
        description:
          - Outcome. V(suppressed) means the flapping guard held the action back (the same kind of change was made to the
            workload too recently); V(blocked) means a guardrail refused it (evidence not captured, the minimum of available
            replicas, a cumulative bound); V(needs_person) means automation cannot do it honestly and the details say how a
            person does it.
        type: str
        default: success
        choices: [success, failed, skipped, pending, suppressed, blocked, needs_person]
      changed:
        description: Whether the action changed the cluster.
        type: bool
        default: false
      details:
        description: Structured details.
        type: dict
  evidence:
    description: Evidence bundles to register.
    type: list
    elements: dict
    suboptions:
      path:
        description: Path of the bundle (or its archive).
        type: str
        required: true
      sha256:
        description: SHA-256 of the bundle's manifest or archive.
        type: str
        required: true
      details:
        description: Structured details (counts, errors).
        type: dict
  notifications:
    description: Notification sends to record.
    type: list
    elements: dict
    suboptions:
      channel:
        description: Channel name, for example V(slack) or V(outbox).
        type: str
        required: true
      template:
        description: Template used.
        type: str
      status:
        description: Outcome of the send.
        type: str
        default: sent
        choices: [sent, failed, skipped, pending, suppressed]
      attempts:
        description: Attempts made.
        type: int
        default: 1
      details:
        description: Structured details (never secrets).
        type: dict
  follow_ups:
    description: Follow-up items; an item with the same title replaces the earlier one.
    type: list
    elements: dict
    suboptions:
      title:
        description: What is to be done.
        type: str
        required: true
      owner:
        description: Who owns it.
        type: str
      due:
        description: Due date.
        type: str
      status:
        description: Progress.
        type: str
        default: open
        choices: [open, in_progress, done, wont_do]
  level:
    description: With O(state=escalate), the level to reach; defaults to one above the current level.
    type: int
  reason:
    description: With O(state=acknowledge) or O(state=escalate), why; goes into the timeline.
    type: str
  actor:
    description: Who makes the change, recorded in the timeline and the audit log.
    type: str
    default: ansible
notes:
  - Writes are atomic (temporary file, fsync, rename) and serialised by an exclusive lock on the store, so
    concurrent playbooks neither lose updates nor share an ID.
  - Invalid input, an unreadable record or an unusable store fails the task before anything is written.
seealso:
  - module: slurm_exporter.incident_response.incident_info
'''

EXAMPLES = r'''
- name: Open (or attach to) the incident for an Alertmanager payload
  slurm_exporter.incident_response.incident:
    store: /var/incident-response
    alerts: "{{ alertmanager_payload.alerts }}"
  register: opened

- name: Open a security breach by hand
  slurm_exporter.incident_response.incident:
    type: security_breach
    summary: Unknown client used the exporter's JWT against slurmrestd
    impact: SLURM accounting data may have been read

- name: Record containment and move to identified
  slurm_exporter.incident_response.incident:
    state: update
    id: "{{ opened.id }}"
    status: identified
    status_reason: Compromised token found in pod logs
    actions:
      - name: isolate_pods
        phase: containment
        changed: true
        details:
          networkpolicy: incident-isolation
    timeline:
      - text: Pods isolated by NetworkPolicy incident-isolation
        phase: containment

- name: Acknowledge
  slurm_exporter.incident_response.incident:
    state: acknowledge
    id: "{{ opened.id }}"
    actor: alice

- name: Resolve
  slurm_exporter.incident_response.incident:
    state: resolve
    id: "{{ opened.id }}"
    root_cause: JWT leaked through a debug log line
    resolution: Token rotated, known-good deployment restored
    follow_ups:
      - title: Remove token from debug logging
        owner: platform-team

- name: Shared settings for every module of the collection
  module_defaults:
    group/slurm_exporter.incident_response.incident_response:
      store: "{{ incident_store }}"
      catalog: "{{ incident_catalog | default({}) }}"
  block:
    - name: Escalate
      slurm_exporter.incident_response.incident:
        state: escalate
        id: INC-20260131-0001
        reason: No acknowledgement within 30 minutes
'''

RETURN = r'''
id:
  description: ID of the incident opened, attached or changed (predicted in check mode for a new incident).
  returned: success, unless a resolved alert matched no open incident
  type: str
  sample: INC-20260131-0001
created:
  description: Whether a new incident was opened.
  returned: always
  type: bool
attached:
  description: Whether O(state=open) attached the alerts to an existing unresolved incident.
  returned: always
  type: bool
correlated:
  description:
    - How O(state=open) matched the alerts to an existing incident - V(fingerprint), V(same_type) or V(related) (correlated
      on the workload), V(reopen) (within the cool-down after it resolved); null for a new incident.
  returned: with O(claim_run)
  type: str
run_plan:
  description: Whether this response should run the incident's plan now.
  returned: with O(claim_run)
  type: bool
plan_reason:
  description: Why (or why not) the plan runs, for example V(response run 3f2a... is in progress).
  returned: with O(claim_run)
  type: str
run:
  description: The run recorded for this response when RV(run_plan) (else null).
  returned: with O(claim_run)
  type: dict
  contains:
    id:
      description: The run's id; end the run with O(run) and this id.
      type: str
    started_at:
      description: When it started (UTC).
      type: str
    deadline_at:
      description: When it counts as lost if it has not ended.
      type: str
    outcome:
      description: V(running) until it ends.
      type: str
    actor:
      description: Who runs it.
      type: str
skipped_reason:
  description:
    - Why nothing was opened (resolved alerts that match no open incident).
    - In check mode, also why a change to an incident that an earlier task of the run would open was not computed.
  returned: when nothing was opened, or for a planned incident in check mode
  type: str
planned:
  description:
    - Check mode only; the incident does not exist yet because an earlier task of this run would open it.
    - The task reports a change and RV(incident) is V(null); the rest of a playbook can run in check mode after an open.
  returned: in check mode, for a planned incident
  type: bool
  sample: true
incident:
  description: The incident record after the change (schema version 1).
  returned: success, unless a resolved alert matched no open incident
  type: dict
  contains:
    id:
      description: Incident ID.
      type: str
    type:
      description: Incident type from the catalog.
      type: str
    category:
      description: security, operational or infrastructure.
      type: str
    severity:
      description: Severity level.
      type: str
    priority:
      description: P1..P4.
      type: str
    status:
      description: investigating, identified, monitoring or resolved.
      type: str
    drill:
      description: Whether this is a drill.
      type: bool
    created_at:
      description: When it was opened (UTC, RFC 3339).
      type: str
    response_due_at:
      description: When a response is due, from the type's response time.
      type: str
    escalation_due_at:
      description: When it escalates if still open, from the severity's policy.
      type: str
    escalation_level:
      description: Current escalation level (0 = not escalated).
      type: int
    alerts:
      description: Alerts with fingerprint, status, labels, annotations, startsAt, endsAt.
      type: list
      elements: dict
    timeline:
      description: Timeline entries (time, phase, kind, message, actor, details).
      type: list
      elements: dict
    actions:
      description: Action outcomes (name, phase, result, changed, time, details).
      type: list
      elements: dict
    evidence:
      description: Evidence bundles (path, sha256, time, details).
      type: list
      elements: dict
    notifications:
      description: Notification sends (channel, template, status, attempts, time).
      type: list
      elements: dict
    revision:
      description: Write counter of the record.
      type: int
'''

import json  # noqa: E402  pylint: disable=wrong-import-position

from ansible_collections.slurm_exporter.incident_response.plugins.module_utils.module import IncidentResponseModule  # noqa: E402

PHASES = ['detection', 'triage', 'containment', 'investigation', 'eradication', 'recovery', 'communication', 'escalation',
          'lessons_learned']
KINDS = ['opened', 'alert', 'status', 'action', 'evidence', 'notification', 'note', 'escalation', 'acknowledgement',
         'root_cause', 'resolution', 'follow_up', 'update']

ARGUMENT_SPEC = {
    'state': {'type': 'str', 'choices': ['open', 'update', 'acknowledge', 'escalate', 'resolve'], 'default': 'open'},
    'id': {'type': 'str'},
    'fingerprint': {'type': 'str'},
    'type': {'type': 'str'},
    'severity': {'type': 'str'},
    'alerts': {'type': 'list', 'elements': 'dict'},
    'drill': {'type': 'bool', 'default': False},
    'workload': {'type': 'str'},
    'correlation': {'type': 'dict', 'options': {
        'enabled': {'type': 'bool', 'default': True},
        'cooldown': {'type': 'int', 'default': 900},
        'related': {'type': 'dict', 'default': {'api_failure': ['network_partition'], 'network_partition': ['api_failure']}},
    }},
    'claim_run': {'type': 'dict', 'options': {'deadline': {'type': 'int', 'default': 3600}, 'id': {'type': 'str'}}},
    'run': {'type': 'dict', 'options': {
        'id': {'type': 'str', 'required': True},
        'outcome': {'type': 'str', 'required': True, 'choices': ['completed', 'failed', 'lost']},
        'reason': {'type': 'str'},
    }},
    'title': {'type': 'str'},
    'summary': {'type': 'str'},
    'impact': {'type': 'str'},
    'status': {'type': 'str', 'choices': ['investigating', 'identified', 'monitoring', 'resolved']},
    'status_reason': {'type': 'str'},
    'root_cause': {'type': 'str'},
    'resolution': {'type': 'str'},
    'timeline': {'type': 'list', 'elements': 'dict', 'options': {
        'text': {'type': 'str', 'required': True},
        'phase': {'type': 'str', 'choices': PHASES},
        'kind': {'type': 'str', 'choices': KINDS, 'default': 'note'},
        'actor': {'type': 'str'},
        'details': {'type': 'dict'},
    }},
    'actions': {'type': 'list', 'elements': 'dict', 'options': {
        'name': {'type': 'str', 'required': True},
        'phase': {'type': 'str', 'choices': PHASES, 'default': 'containment'},
        'result': {'type': 'str', 'choices': ['success', 'failed', 'skipped', 'pending', 'suppressed', 'blocked', 'needs_person'],
                   'default': 'success'},
        'changed': {'type': 'bool', 'default': False},
        'details': {'type': 'dict'},
    }},
    'evidence': {'type': 'list', 'elements': 'dict', 'options': {
        'path': {'type': 'str', 'required': True},
        'sha256': {'type': 'str', 'required': True},
        'details': {'type': 'dict'},
    }},
    'notifications': {'type': 'list', 'elements': 'dict', 'options': {
        'channel': {'type': 'str', 'required': True},
        'template': {'type': 'str'},
        'status': {'type': 'str', 'choices': ['sent', 'failed', 'skipped', 'pending', 'suppressed'], 'default': 'sent'},
        'attempts': {'type': 'int', 'default': 1},
        'details': {'type': 'dict'},
    }},
    'follow_ups': {'type': 'list', 'elements': 'dict', 'options': {
        'title': {'type': 'str', 'required': True},
        'owner': {'type': 'str'},
        'due': {'type': 'str'},
        'status': {'type': 'str', 'choices': ['open', 'in_progress', 'done', 'wont_do'], 'default': 'open'},
    }},
    'level': {'type': 'int'},
    'reason': {'type': 'str'},
    'actor': {'type': 'str', 'default': 'ansible'},
}

EDIT_KEYS = ('title', 'summary', 'impact', 'root_cause', 'resolution', 'status', 'status_reason', 'timeline', 'actions',
             'evidence', 'notifications', 'follow_ups', 'run')


def run(module):
    params = module.params
    service = module.incident_service()
    edits = {key: params[key] for key in EDIT_KEYS if params[key] is not None}
    if 'timeline' in edits:
        # 'message' is reserved for module options, so the option says 'text'.
        edits['timeline'] = [dict(entry, message=entry.pop('text')) for entry in edits['timeline']]
    state = params['state']
    if state == 'open':
        title, summary, impact = (edits.pop(key, None) for key in ('title', 'summary', 'impact'))
        outcome = service.open(params['type'], params['alerts'], params['fingerprint'], params['severity'], params['drill'],
                               title=title, summary=summary, impact=impact, edits=edits, workload=params['workload'],
                               correlation=params['correlation'], claim_run=params['claim_run'])
    else:
        if not params['id'] and not params['fingerprint']:
            module.fail_json(msg='state=%s needs id (INC-YYYYMMDD-NNNN) or fingerprint' % state)
        incident_id = service.find_id(params['id'], params['fingerprint'])
        if state == 'update':
            outcome = service.update(incident_id, edits)
        elif state == 'acknowledge':
            outcome = service.acknowledge(incident_id, params['reason'])
        elif state == 'escalate':
            outcome = service.escalate(incident_id, params['level'], params['reason'])
        else:
            outcome = service.resolve(incident_id, edits=edits)
    result = outcome.as_result()
    if module._diff:  # pylint: disable=protected-access
        result['diff'] = {
            'before': json.dumps(outcome.before, indent=2, sort_keys=True) + '\n' if outcome.before else '',
            'after': json.dumps(outcome.after, indent=2, sort_keys=True) + '\n' if outcome.after else '',
            'before_header': outcome.before['id'] if outcome.before else '(new incident)',
            'after_header': (outcome.after or {}).get('id', '(nothing)'),
        }
    return result


def main():
    module = IncidentResponseModule(argument_spec=ARGUMENT_SPEC, supports_check_mode=True)
    module.run(run)


if __name__ == '__main__':
    main()
