#!/usr/bin/python
# -*- coding: utf-8 -*-
# Copyright: contributors to slurm_exporter.incident_response
# GNU General Public License v3.0+ (see COPYING or https://www.gnu.org/licenses/gpl-3.0.txt)
# SPDX-License-Identifier: GPL-3.0-or-later

from __future__ import annotations

DOCUMENTATION = r'''
module: incident_info
short_description: Read incident records and list them with filters
version_added: 0.1.0
description:
  - Returns one incident record by O(id), or a list of incident summaries filtered by status, type,
    severity, drill flag, creation time range, fingerprint and overdue state.
  - Listing reads the store's index and re-reads only records whose file changed since it was indexed,
    so it stays fast on large stores and is still correct after a crash or a hand-copied record.
  - Unreadable record files are reported in RV(invalid_records) with the reason; they are never modified.
author:
  - slurm_exporter incident response maintainers (@slurm-exporter)
extends_documentation_fragment:
  - slurm_exporter.incident_response.store
attributes:
  check_mode:
    support: full
    description: Read-only; runs the same in check mode.
  diff_mode:
    support: none
    description: Changes nothing, so there is no diff.
options:
  id:
    description: Return this incident (C(INC-YYYYMMDD-NNNN)) in RV(incident); fails if it does not exist.
    type: str
  status:
    description: Keep incidents in any of these statuses.
    type: list
    elements: str
    choices: [investigating, identified, monitoring, resolved]
  type:
    description: Keep incidents of any of these catalog types.
    type: list
    elements: str
  severity:
    description: Keep incidents of any of these severities.
    type: list
    elements: str
  drill:
    description: V(true) keeps only drills, V(false) only real incidents; unset keeps both.
    type: bool
  since:
    description: Keep incidents created at or after this time (RFC 3339, for example V(2026-01-31T00:00:00Z)).
    type: str
  until:
    description: Keep incidents created at or before this time (RFC 3339).
    type: str
  overdue:
    description:
      - V(true) keeps unresolved incidents that are past C(response_due_at) without acknowledgement or past
        C(escalation_due_at); V(false) keeps the others.
    type: bool
  fingerprint:
    description: Keep incidents that hold this alert fingerprint.
    type: str
  details:
    description: Return full records instead of summaries in RV(incidents).
    type: bool
    default: false
  limit:
    description: Return at most this many incidents (the newest); 0 means no limit.
    type: int
    default: 0
seealso:
  - module: slurm_exporter.incident_response.incident
'''

EXAMPLES = r'''
- name: One incident
  slurm_exporter.incident_response.incident_info:
    id: INC-20260131-0001
  register: found

- name: Open critical incidents that are overdue (for the escalation job)
  slurm_exporter.incident_response.incident_info:
    status: [investigating, identified, monitoring]
    severity: [critical]
    overdue: true
  register: overdue

- name: Real security incidents of January, full records
  slurm_exporter.incident_response.incident_info:
    type: [security_breach, malware_detection, vulnerability_exploit, compliance_violation]
    drill: false
    since: "2026-01-01T00:00:00Z"
    until: "2026-01-31T23:59:59Z"
    details: true
'''

RETURN = r'''
incident:
  description:
    - The record asked for with O(id).
    - V(null) in check mode for the incident an earlier task of the same run would have opened (see RV(planned)).
  returned: when O(id) is given
  type: dict
planned:
  description: Check mode only; O(id) is the incident an earlier task of this run would open, so it does not exist yet.
  returned: when O(id) is given, in check mode, and the incident is only planned
  type: bool
  sample: true
incidents:
  description: Matching incidents, oldest first; summaries unless O(details=true).
  returned: when O(id) is not given
  type: list
  elements: dict
  contains:
    id:
      description: Incident ID.
      type: str
    type:
      description: Incident type.
      type: str
    severity:
      description: Severity.
      type: str
    status:
      description: Status.
      type: str
    drill:
      description: Whether it is a drill.
      type: bool
    created_at:
      description: Creation time (UTC).
      type: str
    response_due_at:
      description: Response due time.
      type: str
    escalation_due_at:
      description: Escalation due time.
      type: str
    overdue:
      description: Whether it is overdue now.
      type: bool
    fingerprints:
      description: Fingerprints of its alerts.
      type: list
      elements: str
count:
  description: Number of incidents returned.
  returned: when O(id) is not given
  type: int
  sample: 3
invalid_records:
  description: Record files that could not be read, with the reason (they are left untouched).
  returned: when O(id) is not given
  type: list
  elements: dict
'''

from ansible_collections.slurm_exporter.incident_response.plugins.module_utils.module import IncidentResponseModule  # noqa: E402
from ansible_collections.slurm_exporter.incident_response.plugins.module_utils import query  # noqa: E402
from ansible_collections.slurm_exporter.incident_response.plugins.module_utils import timeutil  # noqa: E402

ARGUMENT_SPEC = {
    'id': {'type': 'str'},
    'status': {'type': 'list', 'elements': 'str', 'choices': ['investigating', 'identified', 'monitoring', 'resolved']},
    'type': {'type': 'list', 'elements': 'str'},
    'severity': {'type': 'list', 'elements': 'str'},
    'drill': {'type': 'bool'},
    'since': {'type': 'str'},
    'until': {'type': 'str'},
    'overdue': {'type': 'bool'},
    'fingerprint': {'type': 'str'},
    'details': {'type': 'bool', 'default': False},
    'limit': {'type': 'int', 'default': 0},
}


def run(module):
    params = module.params
    store = module.incident_store()
    if params['id']:
        record = store.read_or_planned(params['id'])
        if record is None:
            # Check mode: the incident an earlier task of this run would have opened.
            return {'changed': False, 'incident': None, 'planned': True,
                    'msg': 'check mode: incident %s does not exist yet; an earlier task of this run would open it' % params['id']}
        return {'changed': False, 'incident': record}
    if params['limit'] < 0:
        module.fail_json(msg='limit: must be 0 (no limit) or more')
    now = timeutil.utcnow()
    predicate = query.build_filter(module.incident_catalog, params['status'], params['type'], params['severity'],
                                   params['drill'], params['since'], params['until'], params['overdue'],
                                   params['fingerprint'], now)
    summaries, invalid = store.list(predicate)
    if params['limit']:
        summaries = summaries[-params['limit']:]
    for summary in summaries:
        summary['overdue'] = query.is_overdue(summary, now)
    incidents = [store.read(summary['id']) for summary in summaries] if params['details'] else summaries
    for path_error in invalid:
        module.warn('skipped unreadable record: %s' % path_error['error'])
    return {'changed': False, 'incidents': incidents, 'count': len(incidents), 'invalid_records': invalid}


def main():
    module = IncidentResponseModule(argument_spec=ARGUMENT_SPEC, supports_check_mode=True)
    module.run(run)


if __name__ == '__main__':
    main()
