# -*- coding: utf-8 -*-
# Copyright: contributors to slurm_exporter.incident_response
# GNU General Public License v3.0+ (see COPYING or https://www.gnu.org/licenses/gpl-3.0.txt)
# SPDX-License-Identifier: GPL-3.0-or-later
"""The API resources the emulator serves, and the discovery documents built from them."""

from __future__ import annotations

import collections

# ``crd``: the name of the CustomResourceDefinition that serves the resource (None for the built-in ones).
Resource = collections.namedtuple('Resource', 'group version plural kind namespaced subresources short_names crd', defaults=(None,))

VERBS = ['create', 'delete', 'deletecollection', 'get', 'list', 'patch', 'update', 'watch']

RESOURCES = [
    Resource('', 'v1', 'namespaces', 'Namespace', False, ('status',), ('ns',)),
    Resource('', 'v1', 'nodes', 'Node', False, ('status',), ('no',)),
    Resource('', 'v1', 'pods', 'Pod', True, ('log', 'status'), ('po',)),
    Resource('', 'v1', 'services', 'Service', True, ('status',), ('svc',)),
    Resource('', 'v1', 'endpoints', 'Endpoints', True, (), ('ep',)),
    Resource('', 'v1', 'serviceaccounts', 'ServiceAccount', True, (), ('sa',)),
    Resource('', 'v1', 'secrets', 'Secret', True, (), ()),
    Resource('', 'v1', 'configmaps', 'ConfigMap', True, (), ('cm',)),
    Resource('', 'v1', 'events', 'Event', True, (), ('ev',)),
    Resource('', 'v1', 'persistentvolumeclaims', 'PersistentVolumeClaim', True, ('status',), ('pvc',)),
    Resource('', 'v1', 'resourcequotas', 'ResourceQuota', True, ('status',), ('quota',)),
    Resource('', 'v1', 'limitranges', 'LimitRange', True, (), ('limits',)),
    Resource('apps', 'v1', 'deployments', 'Deployment', True, ('scale', 'status'), ('deploy',)),
    Resource('apps', 'v1', 'replicasets', 'ReplicaSet', True, ('scale', 'status'), ('rs',)),
    Resource('apps', 'v1', 'statefulsets', 'StatefulSet', True, ('scale', 'status'), ('sts',)),
    Resource('apps', 'v1', 'daemonsets', 'DaemonSet', True, ('status',), ('ds',)),
    Resource('apps', 'v1', 'controllerrevisions', 'ControllerRevision', True, (), ()),
    Resource('networking.k8s.io', 'v1', 'networkpolicies', 'NetworkPolicy', True, (), ('netpol',)),
    Resource('networking.k8s.io', 'v1', 'ingresses', 'Ingress', True, ('status',), ('ing',)),
    Resource('autoscaling', 'v2', 'horizontalpodautoscalers', 'HorizontalPodAutoscaler', True, ('status',), ('hpa',)),
    Resource('autoscaling.k8s.io', 'v1', 'verticalpodautoscalers', 'VerticalPodAutoscaler', True, ('status',), ('vpa',)),
    Resource('policy', 'v1', 'poddisruptionbudgets', 'PodDisruptionBudget', True, ('status',), ('pdb',)),
    Resource('rbac.authorization.k8s.io', 'v1', 'roles', 'Role', True, (), ()),
    Resource('rbac.authorization.k8s.io', 'v1', 'rolebindings', 'RoleBinding', True, (), ()),
    Resource('rbac.authorization.k8s.io', 'v1', 'clusterroles', 'ClusterRole', False, (), ()),
    Resource('rbac.authorization.k8s.io', 'v1', 'clusterrolebindings', 'ClusterRoleBinding', False, (), ()),
    Resource('batch', 'v1', 'jobs', 'Job', True, ('status',), ()),
    Resource('batch', 'v1', 'cronjobs', 'CronJob', True, ('status',), ('cj',)),
    Resource('events.k8s.io', 'v1', 'events', 'Event', True, (), ('ev',)),
    Resource('coordination.k8s.io', 'v1', 'leases', 'Lease', True, (), ()),
    Resource('monitoring.coreos.com', 'v1', 'prometheusrules', 'PrometheusRule', True, (), ('promrule',)),
    Resource('chaos-mesh.org', 'v1alpha1', 'podchaos', 'PodChaos', True, (), ()),
    Resource('chaos-mesh.org', 'v1alpha1', 'networkchaos', 'NetworkChaos', True, (), ()),
    Resource('chaos-mesh.org', 'v1alpha1', 'schedules', 'Schedule', True, (), ()),
    Resource('apiextensions.k8s.io', 'v1', 'customresourcedefinitions', 'CustomResourceDefinition', False, ('status',), ('crd', 'crds')),
]

BY_PATH = {(r.group, r.version, r.plural): r for r in RESOURCES}
BY_KIND = {}
for _resource in RESOURCES:
    BY_KIND.setdefault((('%s/%s' % (_resource.group, _resource.version)) if _resource.group else _resource.version,
                        _resource.kind), _resource)


def api_version(resource):
    return '%s/%s' % (resource.group, resource.version) if resource.group else resource.version


def resource_list(group, version, custom=()):
    """APIResourceList for one group/version (the built-in resources and ``custom``, those of the CRDs), or None."""
    entries = []
    for resource in list(RESOURCES) + list(custom):
        if (resource.group, resource.version) != (group, version):
            continue
        entries.append({
            'name': resource.plural, 'singularName': resource.kind.lower(), 'namespaced': resource.namespaced,
            'kind': resource.kind, 'verbs': VERBS, 'shortNames': list(resource.short_names),
        })
        for sub in resource.subresources:
            kind = {'scale': 'Scale', 'log': 'Pod'}.get(sub, resource.kind)
            entries.append({'name': '%s/%s' % (resource.plural, sub), 'singularName': '', 'namespaced': resource.namespaced,
                            'kind': kind, 'verbs': ['get', 'patch', 'update'] if sub != 'log' else ['get'],
                            **({'group': 'autoscaling', 'version': 'v1'} if sub == 'scale' else {})})
    if not entries:
        return None
    return {'kind': 'APIResourceList', 'apiVersion': 'v1', 'groupVersion': '%s/%s' % (group, version) if group else version,
            'resources': entries}


def group_list(custom=()):
    groups = collections.OrderedDict()
    for resource in list(RESOURCES) + list(custom):
        if resource.group:
            groups.setdefault(resource.group, [])
            if resource.version not in groups[resource.group]:
                groups[resource.group].append(resource.version)
    return {
        'kind': 'APIGroupList', 'apiVersion': 'v1',
        'groups': [{
            'name': name,
            'versions': [{'groupVersion': '%s/%s' % (name, v), 'version': v} for v in versions],
            'preferredVersion': {'groupVersion': '%s/%s' % (name, versions[0]), 'version': versions[0]},
        } for name, versions in groups.items()],
    }
