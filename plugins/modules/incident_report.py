#!/usr/bin/python
# -*- coding: utf-8 -*-
# Copyright: contributors to slurm_exporter.incident_response
# GNU General Public License v3.0+ (see COPYING or https://www.gnu.org/licenses/gpl-3.0.txt)
# SPDX-License-Identifier: GPL-3.0-or-later

from __future__ import annotations

DOCUMENTATION = r'''
module: incident_report
short_description: Write the post-incident report, or the monthly trends report
version_added: 0.1.0
description:
  - "O(kind=incident): the post-incident report of one incident, filled from its record: the facts (opened,
    acknowledged and by whom, mitigated, resolved, escalation level), links (report, runbook, alert source, Grafana),
    what needs a person (failed actions, actions a person must do, health not verified, evidence with gaps),
    executive summary, timeline, root cause analysis, contributing factors, response evaluation (time to acknowledge,
    mitigate and resolve, computed; the response SLA of the severity met or missed; actions with their results and
    compensations; evidence bundles with their manifest digests and gaps; notifications), action items, lessons
    learned, and the review meeting due within 48 hours of resolution. Written as Markdown and as a self-contained
    HTML page to C(<store>/reports/<id>/) and registered in the record."
  - "The HTML page has a timeline figure whose layout is computed so that no label overlaps a marker or another
    label (long labels wrap; entries of the same second stack), with the response SLA as a marker of its own."
  - "O(kind=trends): incidents per type and severity, MTTA and MTTR per month and per type, response SLA attainment,
    drills apart with their scores, and the follow-ups still open across incidents, for the monthly review. Written
    to C(<store>/reports/) as Markdown and as an HTML page with charts (inline SVG, no external asset)."
  - Templates are rendered on the controller by the action plugin, with the record as data (nothing in it is
    evaluated); your own templates (C(incident.md.j2), C(incident.html.j2), C(trends.md.j2)) in O(template_dir) win.
author:
  - slurm_exporter incident response maintainers (@slurm-exporter)
extends_documentation_fragment:
  - slurm_exporter.incident_response.store
attributes:
  check_mode:
    support: full
    description: Renders and returns the report; writes nothing.
  diff_mode:
    support: none
    description: Writes new files.
  action:
    support: full
    description: An action plugin renders the templates on the controller.
options:
  kind:
    description: Which report.
    type: str
    choices: [incident, trends]
    default: incident
  id:
    description: The incident, for O(kind=incident).
    type: str
  since:
    description: For O(kind=trends), incidents created at or after this time (RFC 3339).
    type: str
  until:
    description: For O(kind=trends), incidents created at or before this time (RFC 3339).
    type: str
  context:
    description: Extra template variables, for example C(contributing_factors) and C(lessons) (lists of text).
    type: dict
    default: {}
  template_dir:
    description: Directory with your own report templates, searched before the collection's C(templates/reports/).
    type: path
  output_dir:
    description: Where to write instead of C(<store>/reports).
    type: path
  links:
    description:
      - Links shown at the top of the incident report besides the alert's runbook (C(runbook_url) annotation) and
        source (C(generatorURL)); the same option as incident_notify's O(slurm_exporter.incident_response.incident_notify#module:links).
    type: dict
    suboptions:
      report_url:
        description: URL where people read the report; C({id}) is replaced by the incident ID.
        type: str
      grafana_url:
        description: URL of a Grafana dashboard; the incident's time range is added as C(from) and C(to).
        type: str
  rendered:
    description: The rendered report; the action plugin fills it.
    type: dict
  actor:
    description: Who writes it, for the timeline.
    type: str
    default: ansible
seealso:
  - module: slurm_exporter.incident_response.incident_notify
'''

EXAMPLES = r'''
- name: Post-incident report
  slurm_exporter.incident_response.incident_report:
    id: "{{ incident.id }}"
    context:
      contributing_factors:
        - Token logged at debug level
      lessons:
        - Capture evidence before scaling down
  register: report

- name: Post-incident report with a link to the exporter's Grafana dashboard over the incident
  slurm_exporter.incident_response.incident_report:
    id: "{{ incident.id }}"
    links:
      grafana_url: https://grafana.example.org/d/slurm-exporter/slurm-exporter?orgId=1

- name: Trends for the monthly review (trends-20260101-20260131.md and .html)
  slurm_exporter.incident_response.incident_report:
    kind: trends
    since: "2026-01-01T00:00:00Z"
    until: "2026-01-31T23:59:59Z"
'''

RETURN = r'''
planned:
  description: Check mode only; the incident does not exist yet because an earlier task of this run would open it, so nothing was rendered.
  returned: in check mode, for a planned incident
  type: bool
  sample: true
markdown:
  description: Path of the Markdown report.
  returned: success, not in check mode
  type: str
html:
  description: Path of the HTML report (or trends page).
  returned: success, not in check mode
  type: str
metrics:
  description: Times to acknowledge, mitigate and resolve (seconds and text), the SLA verdict, the review due date.
  returned: O(kind=incident)
  type: dict
figures:
  description: The trends - per month (C(months)), per type (C(by_type)), drills (C(drill_runs)) and the open follow-ups (C(follow_ups)).
  returned: O(kind=trends)
  type: dict
content:
  description: The rendered Markdown.
  returned: always
  type: str
registered:
  description: Whether the report was registered in the incident.
  returned: always
  type: bool
'''

import hashlib  # noqa: E402  pylint: disable=wrong-import-position
import os  # noqa: E402  pylint: disable=wrong-import-position
import re  # noqa: E402  pylint: disable=wrong-import-position

from ansible_collections.slurm_exporter.incident_response.plugins.module_utils.module import IncidentResponseModule  # noqa: E402
from ansible_collections.slurm_exporter.incident_response.plugins.module_utils import record as rec  # noqa: E402
from ansible_collections.slurm_exporter.incident_response.plugins.module_utils.store import atomic_write  # noqa: E402

ARGUMENT_SPEC = {
    'kind': {'type': 'str', 'choices': ['incident', 'trends'], 'default': 'incident'},
    'id': {'type': 'str'},
    'since': {'type': 'str'},
    'until': {'type': 'str'},
    'context': {'type': 'dict', 'default': {}},
    'template_dir': {'type': 'path'},
    'output_dir': {'type': 'path'},
    'rendered': {'type': 'dict'},
    'links': {'type': 'dict', 'options': {
        'report_url': {'type': 'str'},
        'grafana_url': {'type': 'str'},
    }},
    'actor': {'type': 'str', 'default': 'ansible'},
}


def write(directory, name, text):
    os.makedirs(directory, mode=0o750, exist_ok=True)
    path = os.path.join(directory, name)
    data = text.encode('utf-8')
    atomic_write(path, data)
    return path, hashlib.sha256(data).hexdigest()


def run(module):
    params = module.params
    rendered = params['rendered'] or {}
    if not isinstance(rendered.get('markdown'), str):
        module.fail_json(msg='rendered: missing; run the module through its action plugin (slurm_exporter.incident_response.incident_report)')
    store = module.incident_store()
    base = params['output_dir'] or store.path('reports')
    result = {'changed': False, 'content': rendered['markdown'], 'registered': False}
    if params['kind'] == 'trends':
        result['figures'] = rendered.get('figures') or {}
        if module.check_mode:
            return result
        label = '-'.join(re.sub(r'[^0-9]', '', value)[:8] for value in (params['since'], params['until']) if value) or 'all'
        result['markdown'], _digest = write(base, 'trends-%s.md' % label, rendered['markdown'])
        if isinstance(rendered.get('html'), str):
            result['html'], _digest = write(base, 'trends-%s.html' % label, rendered['html'])
        result['changed'] = True
        return result
    incident_id = rec.validate_id(params['id'])
    store.read(incident_id)
    result['metrics'] = rendered.get('metrics') or {}
    if module.check_mode:
        return result
    directory = os.path.join(base, incident_id)
    result['markdown'], md_digest = write(directory, 'report.md', rendered['markdown'])
    reports = [{'kind': 'markdown', 'path': result['markdown'], 'sha256': md_digest}]
    if isinstance(rendered.get('html'), str):
        result['html'], html_digest = write(directory, 'report.html', rendered['html'])
        reports.append({'kind': 'html', 'path': result['html'], 'sha256': html_digest})
    module.incident_service(store).update(incident_id, {'reports': reports})
    result.update(changed=True, registered=True)
    return result


def main():
    module = IncidentResponseModule(argument_spec=ARGUMENT_SPEC, supports_check_mode=True)
    module.run(run)


if __name__ == '__main__':
    main()
