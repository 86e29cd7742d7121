#!/usr/bin/python
# -*- coding: utf-8 -*-
# Copyright: contributors to slurm_exporter.incident_response
# GNU General Public License v3.0+ (see COPYING or https://www.gnu.org/licenses/gpl-3.0.txt)
# SPDX-License-Identifier: GPL-3.0-or-later

from __future__ import annotations

DOCUMENTATION = r'''
module: k8s_workload
short_description: Change the protected workload safely, under its Lease and the response guardrails
version_added: 0.1.0
description:
  - Runs one response action that writes to Kubernetes (scale, restart, roll back, raise limits, debug logging,
    isolation, Secret rotation, ConfigMap and NetworkPolicy restore) for one incident, with the guarantees listed in
    the collection's docs/response.md (Safety guarantees). The response role calls it for every such action.
  - B(Serialised per workload.) The workload's Lease C(incident-response-<deployment>) (coordination.k8s.io/v1) is held
    for the whole step; its holder identity names the incident; it expires O(lease_duration) seconds after the last
    renewal, so a responder that died blocks the others only until then. Waits for another holder are returned in
    the C(lease) entry of RV(details).
  - B(Reference-counted containment.) Isolation is held per incident on the NetworkPolicy; a scale-down is held per
    incident on the Deployment (annotation C(incident-response/holds)), which also keeps the replica count from before
    the first holder. O(action=lift_isolation) and O(action=scale_restore) remove only this incident's hold; the last
    holder deletes the policy or restores the replicas (never to a default).
  - B(Flapping guard.) A change of one kind (C(scale), C(restart), C(rollback), C(limits), C(logging), C(rotation),
    C(config), C(network)) is not repeated for the workload by another incident within O(min_interval); the result is
    V(suppressed) with who made the last change when.
  - B(Evidence before destruction.) Actions that destroy pod logs (scale to 0, restarts, pod deletion, template changes)
    are V(blocked) when the incident's evidence capture could not read those logs (its action details C(gaps.logs)), or,
    for a security incident, when no capture succeeded, unless O(allow_evidence_loss).
  - B(Minimum available.) In operational incidents every action that restarts pods keeps O(min_available) replicas
    available (a Recreate strategy counts as all pods at once), else V(blocked).
  - B(Cumulative bound.) O(action=raise_limits) never goes above the ceilings (C(ceilings) in O(params)) nor O(resource_max_factor) times the
    limits from before the first raise of O(resource_window).
  - B(Transient faults are retried.) 429 (honouring Retry-After), 5xx, refused or reset connections and time-outs are
    retried with bounded exponential backoff (O(retries)) by the Kubernetes client's urllib3 Retry; every write is
    idempotent or carries a resourceVersion precondition. Each retry is listed in the C(retries) entry of RV(details).
  - O(action=compensate) undoes, after a failed response, what the incident's recorded actions declare - debug logging
    is reverted, a scale-down is restored unless the pods stay isolated; isolation itself stays.
author:
  - slurm_exporter incident response maintainers (@slurm-exporter)
extends_documentation_fragment:
  - slurm_exporter.incident_response.k8s_auth
attributes:
  check_mode:
    support: full
    description: Reads the workload, its Lease and policies, evaluates every guard and reports what would happen; sends no
      write request of any kind (no Lease, no server-side dry run).
  diff_mode:
    support: none
    description: The outcome's details say what changed.
options:
  action:
    description:
      - The response action. Each is described in docs/response.md; the parameters it reads from O(params) are listed
        under O(params).
    type: str
    required: true
    choices: [isolate_pods, lift_isolation, scale_down, scale_restore, rollout_restart, restart_deployment, restart_pod,
              delete_infected_pods, reschedule_from_failed_nodes, cleanup_evicted_pods, raise_limits, increase_logging,
              revert_logging, restore_known_good, rollback_if_unavailable, rotate_credentials, rotate_tls,
              restore_configmap, restore_network_policy, compensate]
  incident:
    description:
      - The incident record the action is taken for (as the P(slurm_exporter.incident_response.incident#module) module
        returns it). C(id) is required; C(category) decides the guards (security incidents may scale to 0 and are not
        held to O(min_available)); C(actions) holds the evidence capture the evidence gate reads and, for
        O(action=compensate), what to undo.
    type: dict
    required: true
  namespace:
    description: Namespace of the workload. Every write goes there.
    type: str
    required: true
  deployment:
    description: The workload's Deployment; also names its Lease.
    type: str
    required: true
  pod_selector:
    description: Labels of the workload's pods. Defaults to C(app=<deployment>).
    type: dict
  container:
    description: The exporter's container (for O(action=raise_limits), O(action=increase_logging)). Defaults to O(deployment).
    type: str
  params:
    description:
      - Parameters of the action.
      - C(isolate_pods) - C(allow_ingress), C(allow_egress) (NetworkPolicy rules that stay open), C(policy) (name).
      - C(scale_restore) - C(fallback_replicas), the count the incident recorded, used only when the workload has no
        record of the count before the first scale-down.
      - C(restart_pod) - C(candidates), pod names (from the alert) preferred when they are pods of the workload.
      - C(delete_infected_pods), C(reschedule_from_failed_nodes), C(cleanup_evicted_pods) - C(pods), names; only pods of
        the workload are deleted, others are listed in the C(notes) entry of RV(details).
      - 'C(raise_limits) - C(factor), C(ceilings) (for example C({cpu: "2", memory: 2Gi})).'
      - C(increase_logging) - C(level) (default V(debug)).
      - C(restore_known_good) - C(template) (the pod template), C(revision), C(current), C(replicaset) (for the record).
      - C(rotate_credentials) - C(name) (the Secret), C(source) (where the token came from). C(rotate_tls) - C(name),
        C(issuer), C(valid_days). Values go in O(secret_data).
      - C(restore_configmap) - C(name), C(source) (the known-good copy). C(restore_network_policy) - C(policy) (manifest).
    type: dict
    default: {}
  secret_data:
    description: For O(action=rotate_credentials) and O(action=rotate_tls), the Secret's new C(data) (base64 values). Never logged.
    type: dict
  min_interval:
    description:
      - Per kind of change, the seconds within which another incident's change of the same kind suppresses this one.
        V(0) turns the guard off for a kind. Kinds not given keep their defaults (scale, restart, rollback, logging,
        config, network 600; limits 1800; rotation 3600).
    type: dict
    default: {}
  min_available:
    description: Replicas that must stay available while an operational incident restarts pods.
    type: int
    default: 1
  allow_evidence_loss:
    description: Let actions destroy logs that the evidence capture could not read.
    type: bool
    default: false
  lease_duration:
    description: Seconds the Lease stays valid after its last renewal (renewed every third of it while the step runs).
    type: int
    default: 60
  lease_wait_timeout:
    description: Seconds to wait for another holder of the Lease before failing.
    type: float
    default: 900
  wait:
    description: Wait for scale-downs to finish and for restored or rolled back workloads to become available.
    type: bool
    default: true
  wait_timeout:
    description: Seconds to wait for that.
    type: int
    default: 300
  resource_max_factor:
    description: O(action=raise_limits) never raises limits above this factor of the limits before the first raise of the window.
    type: float
    default: 2.0
  resource_window:
    description: Seconds after the first raise during which O(resource_max_factor) applies.
    type: int
    default: 86400
  retries:
    description: How transient API failures are retried (urllib3 Retry with exponential backoff).
    type: dict
    default: {}
    suboptions:
      total:
        description: Retries per request.
        type: int
        default: 4
      backoff_factor:
        description: Backoff factor in seconds (the n-th retry waits factor * 2^(n-1)).
        type: float
        default: 0.5
      backoff_max:
        description: Longest wait between retries, in seconds.
        type: float
        default: 8.0
'''

EXAMPLES = r'''
- name: Containment - scale the exporter to 0 for this incident (held until its scale_restore)
  slurm_exporter.incident_response.k8s_workload:
    action: scale_down
    incident: "{{ incident_record }}"
    namespace: slurm-exporter
    deployment: slurm-exporter
  register: scaled

- name: Recovery - give the hold back; the last holder restores the replica count from before the first scale-down
  slurm_exporter.incident_response.k8s_workload:
    action: scale_restore
    incident: "{{ incident_record }}"
    namespace: slurm-exporter
    deployment: slurm-exporter

- name: Recovery - raise the limits at most to 2x the limits before the first raise, never above the ceilings
  slurm_exporter.incident_response.k8s_workload:
    action: raise_limits
    incident: "{{ incident_record }}"
    namespace: slurm-exporter
    deployment: slurm-exporter
    params:
      factor: 1.5
      ceilings: {cpu: "2", memory: 2Gi}
    min_interval:
      limits: 1800
'''

RETURN = r'''
result:
  description: V(success); V(suppressed) (flapping guard), V(blocked) (a guardrail), V(needs_person) (the details say what
    a person does), V(skipped) (nothing to do for this incident).
  returned: always
  type: str
  sample: success
summary:
  description: One line for the incident timeline.
  returned: always
  type: str
  sample: Deployment slurm-exporter/slurm-exporter scaled from 3 to 0 replicas
details:
  description: What the action did and why (no secret values), with C(lease) (name, waits for other holders), C(retries)
    (each request that needed more than one attempt) and, for a guard, C(guard) and its reason.
  returned: always
  type: dict
'''

from ansible_collections.slurm_exporter.incident_response.plugins.module_utils import record as rec  # noqa: E402
from ansible_collections.slurm_exporter.incident_response.plugins.module_utils.errors import IncidentResponseError  # noqa: E402
from ansible_collections.slurm_exporter.incident_response.plugins.module_utils.k8s import (  # noqa: E402
    HAS_KUBERNETES, K8S_AUTH_ARGUMENT_SPEC, KUBERNETES_IMPORT_ERROR, RETRY_SPEC, Kubernetes)
from ansible_collections.slurm_exporter.incident_response.plugins.module_utils import workload  # noqa: E402
from ansible.module_utils.basic import AnsibleModule  # noqa: E402

ARGUMENT_SPEC = dict(K8S_AUTH_ARGUMENT_SPEC, **{
    'action': {'type': 'str', 'required': True, 'choices': sorted(workload.POLICIES) + ['compensate']},
    'incident': {'type': 'dict', 'required': True},
    'namespace': {'type': 'str', 'required': True},
    'deployment': {'type': 'str', 'required': True},
    'pod_selector': {'type': 'dict'},
    'container': {'type': 'str'},
    'params': {'type': 'dict', 'default': {}},
    'secret_data': {'type': 'dict', 'no_log': True},
    'min_interval': {'type': 'dict', 'default': {}},
    'min_available': {'type': 'int', 'default': 1},
    'allow_evidence_loss': {'type': 'bool', 'default': False},
    'lease_duration': {'type': 'int', 'default': 60},
    'lease_wait_timeout': {'type': 'float', 'default': 900},
    'wait': {'type': 'bool', 'default': True},
    'wait_timeout': {'type': 'int', 'default': 300},
    'resource_max_factor': {'type': 'float', 'default': 2.0},
    'resource_window': {'type': 'int', 'default': 86400},
    'retries': RETRY_SPEC,
})


def run(module):
    params = module.params
    incident = params['incident']
    rec.validate_id(incident.get('id'), 'incident.id')
    settings = workload.Settings(
        min_interval=params['min_interval'], min_available=params['min_available'],
        allow_evidence_loss=params['allow_evidence_loss'], lease_duration=params['lease_duration'],
        lease_wait_timeout=params['lease_wait_timeout'], wait=params['wait'], wait_timeout=params['wait_timeout'],
        resource_ceilings=(params['params'] or {}).get('ceilings'), resource_max_factor=params['resource_max_factor'],
        resource_window=params['resource_window'])
    kube = Kubernetes(params, retry=params['retries'])
    try:
        target = workload.Workload(kube, params['namespace'], params['deployment'], incident, params['pod_selector'],
                                   params['container'], settings, check_mode=module.check_mode)
        outcome = target.perform(params['action'], params['params'], params['secret_data'])
    finally:
        kube.close()
    return {'changed': bool(outcome['changed']), 'result': outcome['result'], 'summary': outcome['summary'],
            'details': outcome['details']}


def main():
    module = AnsibleModule(argument_spec=ARGUMENT_SPEC, supports_check_mode=True)
    if not HAS_KUBERNETES:
        module.fail_json(msg=module.missing_required_lib('kubernetes'), exception=str(KUBERNETES_IMPORT_ERROR))
    try:
        result = run(module)
    except IncidentResponseError as exc:
        # What happened before the failure (lease waits, retries) goes into the incident's record with the error.
        module.fail_json(msg=exc.message, details=exc.details.get('details') or {})
    module.exit_json(**result)


if __name__ == '__main__':
    main()
