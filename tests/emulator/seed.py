# -*- coding: utf-8 -*-
# Copyright: contributors to slurm_exporter.incident_response
# GNU General Public License v3.0+ (see COPYING or https://www.gnu.org/licenses/gpl-3.0.txt)
# SPDX-License-Identifier: GPL-3.0-or-later
"""Seed the emulated cluster from the slurm-exporter manifests, plus what a live cluster would add.

From tests/fixtures/slurm-exporter/kubernetes-ha/ (the upstream manifests, unchanged): the
namespace, Deployment (3 replicas), Services, ServiceAccount, ClusterRole/Binding,
NetworkPolicies, Secrets, ConfigMaps, HPA, PDB, ResourceQuota and LimitRange (the VPA is declared
as autoscaling/v2, which no cluster serves, so it is skipped with a warning). Then what
controllers and kubelets would create: the ReplicaSet and its pods (scheduled on two Nodes,
running, with a log per container; the first pod's exporter container restarted once, with a
previous log), Endpoints for the Services, and a few Events.
"""

from __future__ import annotations

import glob
import hashlib
import logging
import os
import uuid

import yaml

from tests.emulator.resources import BY_KIND
from tests.emulator.state import ApiError, now_ts

FIXTURES = os.path.join(os.path.dirname(os.path.dirname(os.path.abspath(__file__))), 'fixtures', 'slurm-exporter', 'kubernetes-ha')
NAMESPACE = 'slurm-exporter'
DEPLOYMENT = 'slurm-exporter'
NODES = ('node-a', 'node-b')
LOG = logging.getLogger(__name__)


def load_documents(seed_dir=None):
    """Every Kubernetes object in the manifests of ``seed_dir`` (sorted so that namespaces come first).

    The bundled copies are named ``*.yaml.upstream``: they are multi-document files kept byte for
    byte as upstream wrote them, which ansible-test's yamllint would refuse as ``.yaml``.
    """
    documents = []
    directory = seed_dir or FIXTURES
    paths = glob.glob(os.path.join(directory, '*.yaml')) + glob.glob(os.path.join(directory, '*.yml')) + \
        glob.glob(os.path.join(directory, '*.yaml.upstream'))
    for path in sorted(paths):
        with open(path, encoding='utf-8') as handle:
            for document in yaml.safe_load_all(handle):
                if isinstance(document, dict) and document.get('kind'):
                    documents.append(document)
    documents.sort(key=lambda doc: doc['kind'] != 'Namespace')
    return documents


def corrected(document):
    """The one correction made to the upstream manifests, by this seed and by the real cluster's (tests/kube).

    A real API server refuses the upstream LimitRange (two items of type Container: "spec.limits[1].type: Duplicate
    value"), and with the minimum of its second item it would refuse the Deployment's pods (the init container
    requests cpu 10m and memory 16Mi, below 50m and 64Mi). The Container items are merged into one, without ``min``.
    """
    if document.get('kind') != 'LimitRange':
        return document
    limits = document.get('spec', {}).get('limits') or []
    merged = {}
    for item in limits:
        if item.get('type') == 'Container':
            merged.update({key: value for key, value in item.items() if key != 'min'})
    document['spec']['limits'] = ([merged] if merged else []) + [item for item in limits if item.get('type') != 'Container']
    return document


def seed(state, seed_dir=None, extra_pods=0):
    """Load the manifests into ``state`` and add nodes, pods, endpoints and events."""
    with state.lock:
        for name in NODES:
            node = {'metadata': {'name': name, 'labels': {'kubernetes.io/hostname': name, 'kubernetes.io/os': 'linux'}},
                    'spec': {'podCIDR': '10.244.%d.0/24' % NODES.index(name), 'providerID': 'emulator://%s' % name},
                    'status': {'nodeInfo': {'kubeletVersion': 'v1.30.2', 'kubeProxyVersion': 'v1.30.2',
                                            'containerRuntimeVersion': 'containerd://1.7.13', 'osImage': 'Debian GNU/Linux 12 (bookworm)',
                                            'kernelVersion': '6.1.0-18-amd64', 'operatingSystem': 'linux', 'architecture': 'amd64',
                                            'machineID': hashlib.md5(name.encode()).hexdigest(),  # nosec - an identifier, not security
                                            'systemUUID': str(uuid.uuid5(uuid.NAMESPACE_DNS, name)),
                                            'bootID': str(uuid.uuid5(uuid.NAMESPACE_URL, name))},
                               'capacity': {'cpu': '8', 'memory': '32Gi', 'pods': '110'},
                               'allocatable': {'cpu': '7800m', 'memory': '31Gi', 'pods': '110'},
                               'conditions': [{'type': 'Ready', 'status': 'True', 'reason': 'KubeletReady'},
                                              {'type': 'MemoryPressure', 'status': 'False'},
                                              {'type': 'DiskPressure', 'status': 'False'}],
                               'addresses': [{'type': 'InternalIP', 'address': '10.0.0.%d' % (NODES.index(name) + 1)}]}}
            state.create(BY_KIND[('v1', 'Node')], None, node)
        for document in load_documents(seed_dir):
            resource = BY_KIND.get((document['apiVersion'], document['kind']))
            if resource is None:
                LOG.warning('skipping %s %s (%s): the emulator does not serve that kind in that API version (neither would a cluster)',
                            document['kind'], document['metadata'].get('name'), document['apiVersion'])
                continue
            namespace = document['metadata'].get('namespace') or (NAMESPACE if resource.namespaced else None)
            try:
                state.create(resource, namespace, corrected(document))
            except ApiError as exc:
                LOG.warning('skipping %s %s: %s', document['kind'], document['metadata'].get('name'), exc.message)
        pods = pods_of(state)
        if pods:
            first = pods[0]['metadata']['name']
            container = pods[0]['spec']['containers'][0]['name']
            state.restart_container(NAMESPACE, first, container)
        if extra_pods:
            add_pods(state, extra_pods)
        _endpoints(state)
        _events(state)


def pods_of(state, namespace=NAMESPACE, deployment=DEPLOYMENT):
    items, _rv = state.list(BY_KIND[('v1', 'Pod')], namespace, 'app=%s' % deployment)
    return sorted(items, key=lambda pod: pod['metadata']['name'])


def add_pods(state, count, namespace=NAMESPACE, deployment=DEPLOYMENT):
    """``count`` more pods of the deployment's current ReplicaSet (for benchmarks), without changing its spec."""
    with state.lock:
        replicasets, _rv = state.list(BY_KIND[('apps/v1', 'ReplicaSet')], namespace)
        owned = [rs for rs in replicasets if rs['metadata'].get('name', '').startswith(deployment + '-') and rs['spec'].get('replicas')]
        if not owned:
            raise ValueError('deployment %s/%s has no active ReplicaSet' % (namespace, deployment))
        rs = state.get(BY_KIND[('apps/v1', 'ReplicaSet')], namespace, owned[0]['metadata']['name'])
        return [state.add_pod(namespace, rs) for _index in range(count)]


def _endpoints(state):
    services, _rv = state.list(BY_KIND[('v1', 'Service')], NAMESPACE)
    pods = pods_of(state)
    for service in services:
        selector = service.get('spec', {}).get('selector') or {}
        members = [pod for pod in pods if all(pod['metadata'].get('labels', {}).get(k) == v for k, v in selector.items())] if selector else []
        ports = [{'name': port.get('name', ''), 'port': port.get('targetPort') if isinstance(port.get('targetPort'), int) else port.get('port'),
                  'protocol': port.get('protocol', 'TCP')} for port in service.get('spec', {}).get('ports', [])]
        endpoints = {'metadata': {'name': service['metadata']['name'], 'namespace': NAMESPACE,
                                  'labels': dict(service['metadata'].get('labels', {}))},
                     'subsets': [{'addresses': [{'ip': pod['status']['podIP'], 'nodeName': pod['spec'].get('nodeName'),
                                                 'targetRef': {'kind': 'Pod', 'name': pod['metadata']['name'], 'namespace': NAMESPACE}}
                                                for pod in members], 'ports': ports}] if members else []}
        state.create(BY_KIND[('v1', 'Endpoints')], NAMESPACE, endpoints)


def _events(state):
    pods = pods_of(state)
    stamp = now_ts()
    specs = [('Normal', 'ScalingReplicaSet', 'Deployment', DEPLOYMENT, 'Scaled up replica set to 3')]
    for pod in pods[:3]:
        specs.append(('Normal', 'Started', 'Pod', pod['metadata']['name'], 'Started container slurm-exporter'))
    if pods:
        specs.append(('Warning', 'BackOff', 'Pod', pods[0]['metadata']['name'], 'Back-off restarting failed container slurm-exporter'))
        specs.append(('Warning', 'Unhealthy', 'Pod', pods[0]['metadata']['name'], 'Readiness probe failed: HTTP probe failed with statuscode: 503'))
    for number, (kind, reason, object_kind, name, message) in enumerate(specs):
        event = {
            'metadata': {'name': '%s.%x' % (name, 0x17a0000000000000 + number), 'namespace': NAMESPACE},
            'type': kind, 'reason': reason, 'message': message, 'count': 1,
            'involvedObject': {'kind': object_kind, 'name': name, 'namespace': NAMESPACE,
                               'apiVersion': 'apps/v1' if object_kind == 'Deployment' else 'v1'},
            'source': {'component': 'deployment-controller' if object_kind == 'Deployment' else 'kubelet'},
            'firstTimestamp': stamp, 'lastTimestamp': stamp, 'reportingComponent': 'kube-emulator',
        }
        state.create(BY_KIND[('v1', 'Event')], NAMESPACE, event)
        # The same event as events.k8s.io/v1 shows it (a cluster serves one store through both APIs).
        state.create(BY_KIND[('events.k8s.io/v1', 'Event')], NAMESPACE, {
            'metadata': dict(event['metadata']), 'type': kind, 'reason': reason, 'note': message,
            'regarding': dict(event['involvedObject']), 'eventTime': stamp.replace('Z', '.000000Z'),
            'reportingController': event['source']['component'], 'reportingInstance': 'kube-emulator',
            'action': 'Scaling' if object_kind == 'Deployment' else 'Running'})
