#!/usr/bin/python
# -*- coding: utf-8 -*-
# Copyright: contributors to slurm_exporter.incident_response
# GNU General Public License v3.0+ (see COPYING or https://www.gnu.org/licenses/gpl-3.0.txt)
# SPDX-License-Identifier: GPL-3.0-or-later

from __future__ import annotations

DOCUMENTATION = r'''
module: k8s_evidence
short_description: Capture a hashed, verifiable forensic evidence bundle from a Kubernetes namespace
version_added: 0.1.0
description:
  - Captures, read-only, what responders and auditors need from the affected workload before anything is scaled
    down or deleted, into a bundle directory under the store's C(evidence/) directory, plus a C(.tar.gz) of it.
  - "Pods: full objects, owner chain (ReplicaSets, Deployments with their revision history), image digests from
    C(containerStatuses[].imageID)."
  - Logs of every container (init containers included), current and previous (restarted containers), streamed to
    disk with API timestamps, never held whole in memory; O(tail_lines), O(limit_bytes), O(since) and O(until)
    bound them and every truncation is recorded.
  - Events of the namespace and of the nodes; Services, Endpoints, NetworkPolicies, Ingresses, HPAs, PVCs and
    ConfigMaps; the pods' ServiceAccounts and every RoleBinding or ClusterRoleBinding that names them, with the
    roles they grant; the Nodes hosting the pods (conditions, kubelet version).
  - Secrets as metadata only (name, type, keys, SHA-256 and size of each value). No secret value is written or
    returned, and the C(last-applied-configuration) annotation (which would repeat them) is dropped.
  - On other objects that annotation is replaced by its SHA-256, since after an edit that was not an apply it can
    still hold a literal credential that was removed from the object.
  - Optionally the results of Prometheus queries, and kubelet checkpoints of the containers (recorded as
    unsupported where the cluster does not offer the API).
  - C(manifest.json) lists every file with its path, size, SHA-256, API source and UTC collection time, the
    collector's identity and versions, and every failed call; C(manifest.json.sha256) holds the SHA-256 of the
    manifest. Files are created 0600, directories 0700.
  - One failing call (403, 404, 500, time-out) is recorded in the manifest and capture goes on; the task fails only
    when nothing at all could be captured.
  - With O(incident_id), the bundle is registered in the incident's record (path and manifest SHA-256).
author:
  - slurm_exporter incident response maintainers (@slurm-exporter)
extends_documentation_fragment:
  - slurm_exporter.incident_response.store
  - slurm_exporter.incident_response.k8s_auth
attributes:
  check_mode:
    support: full
    description: Lists what would be captured (pods, container logs) and writes nothing.
  diff_mode:
    support: none
    description: Captures evidence; there is nothing to diff.
options:
  namespace:
    description: Namespace of the affected workload. Everything captured is read from it (plus the pods' nodes and cluster role bindings).
    type: str
    required: true
  label_selectors:
    description:
      - Label selectors for the pods, joined with commas (for example V(app=slurm-exporter)).
      - With neither O(label_selectors) nor O(objects), every pod of the namespace is captured.
    type: list
    elements: str
  objects:
    description: Named objects whose pods to capture.
    type: list
    elements: dict
    suboptions:
      kind:
        description: Kind of the object.
        type: str
        required: true
        choices: [Pod, Deployment, StatefulSet, DaemonSet, ReplicaSet]
      name:
        description: Name of the object.
        type: str
        required: true
  since:
    description: Capture log lines and count events from this time on (RFC 3339).
    type: str
  until:
    description: Drop log lines after this time (RFC 3339); events after it are kept in C(events.json) and left out of C(events-in-window.json).
    type: str
  tail_lines:
    description:
      - At most this many of the last lines of each log.
      - A log that fills the quota is recorded as truncated (reason V(tail_lines)), since earlier lines may exist.
    type: int
  limit_bytes:
    description: At most this many bytes of each log (the rest is recorded as truncated); V(0) for no limit.
    type: int
    default: 104857600
  previous:
    description: Also capture the previous log of restarted containers.
    type: bool
    default: true
  incident_id:
    description: Incident to register the bundle in (C(INC-YYYYMMDD-NNNN)); the bundle goes under C(evidence/<incident_id>/).
    type: str
  workers:
    description: API requests in flight at once.
    type: int
    default: 8
  archive:
    description: Also write C(<bundle>.tar.gz).
    type: bool
    default: true
  prometheus_url:
    description: Prometheus base URL for O(prometheus_queries).
    type: str
  prometheus_queries:
    description: Queries whose results are saved in C(prometheus.json).
    type: list
    elements: dict
    default: []
    suboptions:
      name:
        description: A name for the result.
        type: str
      query:
        description: PromQL expression.
        type: str
        required: true
      start:
        description: Range start (RFC 3339 or Unix time); makes it a range query.
        type: str
      end:
        description: Range end.
        type: str
      step:
        description: Range step.
        type: str
        default: 30s
  checkpoint:
    description: Ask the kubelets for a checkpoint of each container (alpha Kubernetes feature; recorded as unsupported otherwise).
    type: bool
    default: false
  actor:
    description: Who captured it, for the incident timeline.
    type: str
    default: ansible
notes:
  - Secret values are hashed with unsalted SHA-256 so that a responder can tell whether a value changed or matches
    a known leaked value; a low-entropy value could be guessed from its hash, so treat bundles as confidential.
  - Verify a bundle later with M(slurm_exporter.incident_response.k8s_evidence_verify).
seealso:
  - module: slurm_exporter.incident_response.k8s_evidence_verify
  - module: slurm_exporter.incident_response.incident
'''

EXAMPLES = r'''
- name: Capture evidence before containment changes anything
  slurm_exporter.incident_response.k8s_evidence:
    namespace: slurm-exporter
    label_selectors:
      - app=slurm-exporter
    incident_id: "{{ incident.id }}"
    since: "{{ alert_started_at }}"
  register: evidence

- name: The pods of one deployment, last 5000 lines of each log, with metrics
  slurm_exporter.incident_response.k8s_evidence:
    kubeconfig: /etc/incident-response/kubeconfig
    namespace: slurm-exporter
    objects:
      - kind: Deployment
        name: slurm-exporter
    tail_lines: 5000
    prometheus_url: http://prometheus.monitoring:9090
    prometheus_queries:
      - name: auth_errors
        query: increase(slurm_exporter_collector_errors_total{error_type="authentication"}[15m])
'''

RETURN = r'''
gaps:
  description:
    - What the capture missed - C(logs), the pods whose current log could not be read (C(*) when the pods could not be
      listed), C(previous_logs), and C(other), the kinds of object that could not be read. Empty lists when complete.
    - The response's evidence gate blocks actions that would destroy those logs (scale to 0, restarts).
  returned: always
  type: dict
  sample: {logs: [slurm-exporter-7d9c-abcde], previous_logs: [], other: []}
bundle:
  description: Path of the bundle directory.
  returned: success, not in check mode
  type: str
  sample: /var/incident-response/evidence/INC-20260131-0001/20260131T120501Z-3fa2c1
archive:
  description: Path of the bundle's .tar.gz.
  returned: when O(archive=true), not in check mode
  type: str
archive_sha256:
  description: SHA-256 of the archive.
  returned: when O(archive=true), not in check mode
  type: str
manifest_sha256:
  description: SHA-256 of manifest.json (also in manifest.json.sha256 and, with O(incident_id), in the incident record).
  returned: success, not in check mode
  type: str
counts:
  description: Objects captured per kind (pods, logs, previous_logs, events, services, secrets, nodes, ...).
  returned: success, not in check mode
  type: dict
files:
  description: Number of files in the bundle (manifest excluded).
  returned: success, not in check mode
  type: int
bytes:
  description: Bytes in the bundle's files.
  returned: success, not in check mode
  type: int
truncated:
  description: Files cut short by O(limit_bytes), O(until) or O(tail_lines), with the reason.
  returned: success, not in check mode
  type: list
  elements: dict
errors:
  description: Calls that failed (kind, name, source, status, reason); capture went on.
  returned: always
  type: list
  elements: dict
registered:
  description: Whether the bundle was registered in the incident.
  returned: always
  type: bool
would_capture:
  description:
    - In check mode, what would be captured, from list calls only; nothing is written and nothing registered.
    - C(pods), C(container_logs), C(previous_logs), C(nodes), C(pod_names), C(objects) (items per listed kind,
      for example C(services), C(configmaps), C(secrets), C(events)) and C(errors).
  returned: check mode
  type: dict
  sample: {pods: 3, container_logs: 6, previous_logs: 1, nodes: 2, objects: {services: 2, secrets: 3}}
'''

import json  # noqa: E402  pylint: disable=wrong-import-position
import shutil  # noqa: E402  pylint: disable=wrong-import-position
import urllib.parse  # noqa: E402  pylint: disable=wrong-import-position

from ansible.module_utils.urls import open_url  # noqa: E402
from ansible.module_utils.common.text.converters import to_native  # noqa: E402

from ansible_collections.slurm_exporter.incident_response.plugins.module_utils import evidence  # noqa: E402
from ansible_collections.slurm_exporter.incident_response.plugins.module_utils.errors import IncidentResponseError  # noqa: E402
from ansible_collections.slurm_exporter.incident_response.plugins.module_utils.k8s import (  # noqa: E402
    HAS_KUBERNETES, K8S_AUTH_ARGUMENT_SPEC, KUBERNETES_IMPORT_ERROR, Kubernetes)
from ansible_collections.slurm_exporter.incident_response.plugins.module_utils.module import IncidentResponseModule  # noqa: E402
from ansible_collections.slurm_exporter.incident_response.plugins.module_utils import record as rec  # noqa: E402

ARGUMENT_SPEC = dict(K8S_AUTH_ARGUMENT_SPEC, **{
    'namespace': {'type': 'str', 'required': True},
    'label_selectors': {'type': 'list', 'elements': 'str'},
    'objects': {'type': 'list', 'elements': 'dict', 'options': {
        'kind': {'type': 'str', 'required': True, 'choices': ['Pod', 'Deployment', 'StatefulSet', 'DaemonSet', 'ReplicaSet']},
        'name': {'type': 'str', 'required': True},
    }},
    'since': {'type': 'str'},
    'until': {'type': 'str'},
    'tail_lines': {'type': 'int'},
    'limit_bytes': {'type': 'int', 'default': 104857600},
    'previous': {'type': 'bool', 'default': True},
    'incident_id': {'type': 'str'},
    'workers': {'type': 'int', 'default': 8},
    'archive': {'type': 'bool', 'default': True},
    'prometheus_url': {'type': 'str'},
    'prometheus_queries': {'type': 'list', 'elements': 'dict', 'default': [], 'options': {
        'name': {'type': 'str'},
        'query': {'type': 'str', 'required': True},
        'start': {'type': 'str'},
        'end': {'type': 'str'},
        'step': {'type': 'str', 'default': '30s'},
    }},
    'checkpoint': {'type': 'bool', 'default': False},
    'actor': {'type': 'str', 'default': 'ansible'},
})


def prometheus_getter(timeout):
    def get(url, params):
        try:
            response = open_url(url + '?' + urllib.parse.urlencode({k: v for k, v in params.items() if v is not None}),
                                timeout=timeout, method='GET')
            return json.loads(response.read())
        except Exception as exc:  # pylint: disable=broad-exception-caught
            raise IncidentResponseError('Prometheus query failed: %s' % to_native(exc)) from None
    return get


def run(module):
    params = module.params
    if not HAS_KUBERNETES:
        module.fail_json(msg=module.missing_required_lib('kubernetes'), exception=str(KUBERNETES_IMPORT_ERROR))
    for key in ('tail_lines', 'limit_bytes', 'workers'):
        if params[key] is not None and params[key] < (1 if key == 'workers' else 0):
            module.fail_json(msg='%s: must be %s' % (key, 'at least 1' if key == 'workers' else 'zero or more'))
    if params['prometheus_queries'] and not params['prometheus_url']:
        module.fail_json(msg='prometheus_queries needs prometheus_url')
    incident_id = rec.validate_id(params['incident_id'], 'incident_id') if params['incident_id'] else None
    store = module.incident_store()
    if incident_id:
        # Fail before capturing (or planning) when the incident does not exist; in check mode an incident
        # that an earlier task of the run would open is fine.
        store.read_or_planned(incident_id)
    kube = Kubernetes(params)
    prometheus = None
    if params['prometheus_url']:
        prometheus = {'url': params['prometheus_url'], 'queries': params['prometheus_queries'],
                      'get': prometheus_getter(params['request_timeout'])}
    collector = evidence.EvidenceCollector(
        kube, params['namespace'], ','.join(params['label_selectors'] or []) or None, params['objects'], params['since'],
        params['until'], params['tail_lines'], params['limit_bytes'] or None, params['previous'], params['workers'],
        prometheus, params['checkpoint'])
    try:
        if module.check_mode:
            plan = collector.plan()
            if not plan['pods']:
                module.warn('no pod of namespace %s matches the selection' % params['namespace'])
            return {'changed': False, 'would_capture': plan, 'errors': plan['errors'], 'gaps': evidence.gaps(plan['errors']),
                    'registered': False}
        store.ensure()
        bundle_dir = evidence.new_bundle_dir(store.root, incident_id)
        manifest, digest = collector.capture(bundle_dir, incident_id)
    finally:
        kube.close()
    captured = manifest['files']
    if not kube.successful_calls:
        shutil.rmtree(bundle_dir, ignore_errors=True)
        module.fail_json(msg='nothing could be captured from namespace %s: %s' % (
            params['namespace'], '; '.join('%s %s: %s' % (e['kind'], e['name'], e['reason']) for e in manifest['errors'][:5])),
            errors=manifest['errors'], registered=False)
    if not manifest['counts'].get('pods'):
        module.warn('no pod of namespace %s was captured (none matched, or listing them failed: see errors)' % params['namespace'])
    result = {
        'changed': True, 'bundle': bundle_dir, 'manifest_sha256': digest, 'counts': manifest['counts'], 'files': len(captured),
        'bytes': sum(entry['size'] for entry in captured), 'errors': manifest['errors'], 'gaps': evidence.gaps(manifest['errors']),
        'truncated': [{'path': e['path'], 'reason': e['truncated']} for e in captured if e.get('truncated')], 'registered': False,
    }
    if params['archive']:
        result['archive'], result['archive_sha256'] = evidence.make_archive(bundle_dir)
    if incident_id:
        try:
            module.incident_service(store).update(incident_id, {'evidence': [{'path': bundle_dir, 'sha256': digest, 'details': {
                'archive': result.get('archive'), 'archive_sha256': result.get('archive_sha256'), 'counts': manifest['counts'],
                'errors': len(manifest['errors']), 'gaps': result['gaps'], 'namespace': params['namespace']}}]})
        except IncidentResponseError as exc:
            # The bundle exists: say where, so that it can be registered by hand rather than lost.
            module.fail_json(msg='evidence captured in %s (manifest SHA-256 %s) but not registered in %s: %s' % (
                bundle_dir, digest, incident_id, exc.message), **result)
        result['registered'] = True
    return result


def main():
    module = IncidentResponseModule(argument_spec=ARGUMENT_SPEC, supports_check_mode=True)
    module.run(run)


if __name__ == '__main__':
    main()
