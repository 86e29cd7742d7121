#!/usr/bin/python
# -*- coding: utf-8 -*-
# Copyright: contributors to slurm_exporter.incident_response
# GNU General Public License v3.0+ (see COPYING or https://www.gnu.org/licenses/gpl-3.0.txt)
# SPDX-License-Identifier: GPL-3.0-or-later

from __future__ import annotations

DOCUMENTATION = r'''
module: detection_rules
short_description: Generate the incident detection rules (PrometheusRule or Prometheus rules file)
version_added: 0.1.0
description:
  - Generates the Prometheus alerting rules that detect each incident type of the catalog, plus one alert per custom
    response rule, written against metrics the SLURM exporter really emits (collector errors by type, collection
    duration histogram, SLA violations, last collection time, collector health, HTTP status codes, process metrics
    and C(up)), kube-state-metrics and cAdvisor for the cluster and resources, and Falco events where present.
  - Every alert carries the labels C(incident_type), C(severity) and C(component=incident-response) that
    Alertmanager routes on and the collection classifies by, and the annotations C(summary), C(description) and
    C(runbook_url).
  - Output is the C(incident-detection-rules) PrometheusRule (prometheus-operator) or a plain Prometheus rules file,
    returned and optionally written to O(dest) (only when the content changes).
author:
  - slurm_exporter incident response maintainers (@slurm-exporter)
requirements:
  - PyYAML
attributes:
  check_mode:
    support: full
    description: Reports whether O(dest) would change; writes nothing.
  diff_mode:
    support: full
    description: Shows the file before and after.
options:
  catalog:
    description: Catalog overrides (C(incident_catalog)); C(types.<type>.detection) replaces a type's rules.
    type: dict
  custom_rules:
    description: Custom response rules; each becomes an alert C(IncidentResponseCustom<Name>).
    type: list
    elements: dict
    default: []
    suboptions:
      name:
        description: 'Rule name: lower-case letters, digits, C(-) and C(_) (C(exporter-memory-high) becomes C(IncidentResponseCustomExporterMemoryHigh)).'
        type: str
        required: true
      trigger:
        description: PromQL expression that fires the rule.
        type: str
        required: true
      duration:
        description: How long the expression must hold (the alert's C(for)).
        type: str
        default: 5m
      incident_type:
        description: Incident type the alert opens.
        type: str
        default: performance_degradation
      severity:
        description: Severity, instead of the type's.
        type: str
      actions:
        description: Actions of the response rule (carried in the description; run by the response playbook).
        type: list
        elements: str
        default: []
      summary:
        description: Alert summary.
        type: str
      description:
        description: Alert description.
        type: str
      runbook_url:
        description: The alert's C(runbook_url); by default C(<runbook_base_url>/custom-response-rule.md).
        type: str
  format:
    description: V(prometheusrule) for the PrometheusRule resource, V(rules) for a Prometheus rules file.
    type: str
    choices: [prometheusrule, rules]
    default: prometheusrule
  dest:
    description: File to write.
    type: path
  name:
    description: Name of the PrometheusRule.
    type: str
    default: incident-detection-rules
  namespace:
    description: Namespace of the exporter (and of the PrometheusRule).
    type: str
    default: slurm-exporter
  job:
    description: Prometheus job label of the exporter's targets.
    type: str
    default: slurm-exporter
  deployment:
    description: Name of the exporter's Deployment (and container).
    type: str
    default: slurm-exporter
  approved_images:
    description: Regular expression of the approved exporter images (compliance rule).
    type: str
    default: ghcr.io/jontk/slurm-exporter:.*
  runbook_base_url:
    description:
      - Base URL of the runbooks, for example where you publish the collection's C(docs/runbooks/) in your wiki.
      - Every alert's C(runbook_url) annotation is C(<runbook_base_url>/<alert>.md) (the collection has one page per alert
        it ships, in C(docs/runbooks/)); the alerts of custom response rules point at
        C(<runbook_base_url>/custom-response-rule.md). A catalog C(detection) entry or a custom rule with its own
        C(runbook_url) keeps it.
    type: str
    default: https://github.com/slurm-exporter/incident_response/blob/main/docs/runbooks
seealso:
  - module: slurm_exporter.incident_response.incident
'''

EXAMPLES = r'''
- name: PrometheusRule for the cluster
  slurm_exporter.incident_response.detection_rules:
    catalog: "{{ incident_catalog | default({}) }}"
    custom_rules: "{{ incident_response_rules | default([]) }}"
    dest: /tmp/incident-detection-rules.yaml
  register: rules

- name: Plain rules file for a Prometheus outside Kubernetes
  slurm_exporter.incident_response.detection_rules:
    format: rules
    job: slurm
    dest: /etc/prometheus/rules/incident-detection.yml
'''

RETURN = r'''
document:
  description: The generated PrometheusRule or rules file.
  returned: always
  type: dict
alerts:
  description: Names of the generated alerts with their incident type.
  returned: always
  type: list
  elements: dict
'''

from ansible.module_utils.basic import AnsibleModule, missing_required_lib  # noqa: E402

try:
    import yaml
    HAS_YAML = True
except ImportError:  # pragma: no cover - PyYAML comes with ansible-core on the controller
    HAS_YAML = False

from ansible_collections.slurm_exporter.incident_response.plugins.module_utils import detection  # noqa: E402
from ansible_collections.slurm_exporter.incident_response.plugins.module_utils.catalog import load_catalog  # noqa: E402
from ansible_collections.slurm_exporter.incident_response.plugins.module_utils.errors import IncidentResponseError  # noqa: E402
from ansible_collections.slurm_exporter.incident_response.plugins.module_utils.store import write_if_changed  # noqa: E402

ARGUMENT_SPEC = {
    'catalog': {'type': 'dict'},
    'custom_rules': {'type': 'list', 'elements': 'dict', 'default': [], 'options': {
        'name': {'type': 'str', 'required': True},
        'trigger': {'type': 'str', 'required': True},
        'duration': {'type': 'str', 'default': '5m'},
        'incident_type': {'type': 'str', 'default': 'performance_degradation'},
        'severity': {'type': 'str'},
        'actions': {'type': 'list', 'elements': 'str', 'default': []},
        'summary': {'type': 'str'},
        'description': {'type': 'str'},
        'runbook_url': {'type': 'str'},
    }},
    'format': {'type': 'str', 'choices': ['prometheusrule', 'rules'], 'default': 'prometheusrule'},
    'dest': {'type': 'path'},
    'name': {'type': 'str', 'default': 'incident-detection-rules'},
    'namespace': {'type': 'str', 'default': 'slurm-exporter'},
    'job': {'type': 'str', 'default': 'slurm-exporter'},
    'deployment': {'type': 'str', 'default': 'slurm-exporter'},
    'approved_images': {'type': 'str', 'default': 'ghcr.io/jontk/slurm-exporter:.*'},
    'runbook_base_url': {'type': 'str', 'default': detection.DEFAULT_RUNBOOK_BASE},
}


def main():
    module = AnsibleModule(argument_spec=ARGUMENT_SPEC, supports_check_mode=True)
    if not HAS_YAML:
        module.fail_json(msg=missing_required_lib('PyYAML'))
    params = module.params
    try:
        groups = detection.build_groups(load_catalog(params['catalog']), params['custom_rules'],
                                        {key: params[key] for key in ('job', 'namespace', 'deployment', 'approved_images')},
                                        params['runbook_base_url'])
    except IncidentResponseError as exc:
        module.fail_json(msg=exc.message)
    if params['format'] == 'prometheusrule':
        document = detection.prometheus_rule(groups, params['name'], params['namespace'])
    else:
        document = {'groups': groups}
    text = yaml.safe_dump(document, sort_keys=False, default_flow_style=False, width=1000)
    result = {'changed': False, 'document': document,
              'alerts': [{'alert': rule['alert'], 'incident_type': rule['labels']['incident_type']} for group in groups for rule in group['rules']]}
    if params['dest']:
        try:
            result['changed'], before = write_if_changed(params['dest'], text, 0o644, module.check_mode)
        except IncidentResponseError as exc:
            module.fail_json(msg=exc.message)
        if module._diff:  # pylint: disable=protected-access
            result['diff'] = {'before': before or '', 'after': text, 'before_header': params['dest'], 'after_header': params['dest']}
    module.exit_json(**result)


if __name__ == '__main__':
    main()
