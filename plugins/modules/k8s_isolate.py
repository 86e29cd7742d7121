#!/usr/bin/python
# -*- coding: utf-8 -*-
# Copyright: contributors to slurm_exporter.incident_response
# GNU General Public License v3.0+ (see COPYING or https://www.gnu.org/licenses/gpl-3.0.txt)
# SPDX-License-Identifier: GPL-3.0-or-later

from __future__ import annotations

DOCUMENTATION = r'''
module: k8s_isolate
short_description: Isolate a workload's pods with an emergency NetworkPolicy, or lift the isolation
version_added: 0.1.0
description:
  - Applies a NetworkPolicy that selects the workload's pods and denies all ingress and egress except the rules that
    responders need (O(allow_ingress), O(allow_egress)); with O(state=absent) deletes it again.
  - The policy is labelled C(app.kubernetes.io/managed-by=slurm_exporter.incident_response) and with the incident ID.
    A policy of the same name without that label is never replaced or deleted; the task fails instead.
  - Idempotent; a policy that drifted from the wanted rules is replaced. Two responders applying it at the same time
    converge on one policy.
  - Isolation is shared and reference-counted. The annotation C(incident-response/holders) lists the incidents that hold it;
    O(state=present) adds O(incident_id)'s hold, O(state=absent) removes only that hold and deletes the policy when no
    incident holds it any more. Without O(incident_id), O(state=absent) deletes only a policy nobody holds, unless O(force).
  - The response role changes isolation through P(slurm_exporter.incident_response.k8s_workload#module), which also
    holds the workload's Lease; this module is for people and custom playbooks.
  - One API round trip per call without the kubernetes client's discovery, which matters for the first containment
    step; the same code runs in-process in the webhook launcher's first response.
  - Peers with an empty list (which Kubernetes reads as "everything") are refused.
author:
  - slurm_exporter incident response maintainers (@slurm-exporter)
extends_documentation_fragment:
  - slurm_exporter.incident_response.k8s_auth
attributes:
  check_mode:
    support: full
    description: Reads the current policy and reports what would change; sends no write request.
  diff_mode:
    support: full
    description: Shows the policy before and after.
options:
  namespace:
    description: Namespace of the workload. The policy is created there and nowhere else.
    type: str
    required: true
  state:
    description: V(present) isolates, V(absent) lifts the isolation.
    type: str
    choices: [present, absent]
    default: present
  name:
    description: Name of the NetworkPolicy.
    type: str
    default: incident-isolation
  pod_selector:
    description: Labels of the pods to isolate. An empty selector (every pod of the namespace) is refused.
    type: dict
    default: {app: slurm-exporter}
  allow_ingress:
    description:
      - NetworkPolicy ingress rules (C(from), C(ports)) that stay open, for example the responders' namespace.
      - An empty list denies all ingress.
    type: list
    elements: dict
    default: []
  allow_egress:
    description:
      - NetworkPolicy egress rules (C(to), C(ports)) that stay open, for example DNS.
      - An empty list denies all egress.
    type: list
    elements: dict
    default: []
  incident_id:
    description:
      - Incident whose response isolates the pods (or lifts its isolation). Its hold is added to (or removed from) the
        policy's holders; the first incident is also recorded as a label.
    type: str
  force:
    description: With O(state=absent), delete the policy whatever incidents still hold it (a person lifting it by hand).
    type: bool
    default: false
'''

EXAMPLES = r'''
- name: Containment - isolate the exporter pods, allowing only the responders' namespace in
  slurm_exporter.incident_response.k8s_isolate:
    namespace: slurm-exporter
    incident_id: "{{ incident_id }}"
    allow_ingress:
      - from:
          - namespaceSelector:
              matchLabels:
                kubernetes.io/metadata.name: incident-response

- name: Recovery - lift this incident's isolation (the policy stays while another incident holds it)
  slurm_exporter.incident_response.k8s_isolate:
    namespace: slurm-exporter
    incident_id: "{{ incident_id }}"
    state: absent

- name: A person lifts the isolation whoever holds it
  slurm_exporter.incident_response.k8s_isolate:
    namespace: slurm-exporter
    state: absent
    force: true
'''

RETURN = r'''
name:
  description: Name of the NetworkPolicy.
  returned: always
  type: str
  sample: incident-isolation
operation:
  description: What was done (or would be in check mode).
  returned: always
  type: str
  sample: created
  choices: [created, replaced, held, released, deleted, none]
policy:
  description: The policy as stored by the API server (the wanted one in check mode; the deleted one for O(state=absent)).
  returned: always
  type: dict
holders:
  description: The incidents that hold the isolation afterwards.
  returned: always
  type: list
  elements: str
  sample: [INC-20261202-0001]
'''

import json  # noqa: E402

from ansible_collections.slurm_exporter.incident_response.plugins.module_utils import containment  # noqa: E402
from ansible_collections.slurm_exporter.incident_response.plugins.module_utils.k8s import (  # noqa: E402
    HAS_KUBERNETES, K8S_AUTH_ARGUMENT_SPEC, KUBERNETES_IMPORT_ERROR, Kubernetes)
from ansible_collections.slurm_exporter.incident_response.plugins.module_utils import record as rec  # noqa: E402
from ansible.module_utils.basic import AnsibleModule  # noqa: E402
from ansible_collections.slurm_exporter.incident_response.plugins.module_utils.errors import IncidentResponseError  # noqa: E402

ARGUMENT_SPEC = dict(K8S_AUTH_ARGUMENT_SPEC, **{
    'namespace': {'type': 'str', 'required': True},
    'state': {'type': 'str', 'choices': ['present', 'absent'], 'default': 'present'},
    'name': {'type': 'str', 'default': containment.ISOLATION_POLICY_NAME},
    'pod_selector': {'type': 'dict', 'default': dict(containment.DEFAULT_SELECTOR)},
    'allow_ingress': {'type': 'list', 'elements': 'dict', 'default': []},
    'allow_egress': {'type': 'list', 'elements': 'dict', 'default': []},
    'incident_id': {'type': 'str'},
    'force': {'type': 'bool', 'default': False},
})


def run(module):
    params = module.params
    if params['incident_id']:
        rec.validate_id(params['incident_id'], 'incident_id')
    kube = Kubernetes(params)
    try:
        if params['state'] == 'present':
            result = containment.apply_isolation(kube, params['namespace'], params['incident_id'], params['pod_selector'],
                                                 params['allow_ingress'], params['allow_egress'], module.check_mode, params['name'])
        else:
            result = containment.lift_isolation(kube, params['namespace'], params['incident_id'], module.check_mode, params['name'],
                                                force=params['force'])
        before = result.pop('before')
    finally:
        kube.close()
    if module._diff:  # pylint: disable=protected-access
        after = None if params['state'] == 'absent' else result['policy']
        result['diff'] = {'before': json.dumps(before, indent=2, sort_keys=True) + '\n' if before else '',
                          'after': json.dumps(after, indent=2, sort_keys=True) + '\n' if after else ''}
    return result


def main():
    module = AnsibleModule(argument_spec=ARGUMENT_SPEC, supports_check_mode=True)
    if not HAS_KUBERNETES:
        module.fail_json(msg=module.missing_required_lib('kubernetes'), exception=str(KUBERNETES_IMPORT_ERROR))
    try:
        module.exit_json(**run(module))
    except IncidentResponseError as exc:
        module.fail_json(msg=exc.message)


if __name__ == '__main__':
    main()
