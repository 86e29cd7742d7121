# -*- coding: utf-8 -*-
# Copyright: contributors to slurm_exporter.incident_response
# GNU General Public License v3.0+ (see COPYING or https://www.gnu.org/licenses/gpl-3.0.txt)
# SPDX-License-Identifier: GPL-3.0-or-later
"""The emergency isolation NetworkPolicy: build it, apply it, lift it.

Used by the ``k8s_isolate`` and ``k8s_workload`` modules and, in-process, by the webhook
launcher's first response. The policy selects the workload's pods and denies all ingress and
egress except the peers responders name. It carries the incident-response labels, and is only
ever lifted (deleted) when it does: a policy this collection did not create is never touched.

Isolation is shared and reference-counted: the annotation ``incident-response/holders`` lists
the open incidents that hold it. Isolating adds the incident's hold; lifting removes only the
incident's own hold, and deletes the policy when no incident holds it any more. Every update
carries the resourceVersion it was computed from.
"""

from __future__ import annotations

import copy
import json

from ansible_collections.slurm_exporter.incident_response.plugins.module_utils.errors import ValidationError
from ansible_collections.slurm_exporter.incident_response.plugins.module_utils.k8s import KubernetesError, group_path, validate_name

ISOLATION_POLICY_NAME = 'incident-isolation'
MANAGED_BY = 'slurm_exporter.incident_response'
MANAGED_LABEL = 'app.kubernetes.io/managed-by'
INCIDENT_LABEL = 'incident-response/incident-id'
HOLDERS_ANNOTATION = 'incident-response/holders'
PURPOSE_LABEL = 'incident-response/purpose'
API_VERSION = 'networking.k8s.io/v1'
DEFAULT_SELECTOR = {'app': 'slurm-exporter'}


def _rules(rules, field, peer_key):
    if rules is None:
        return []
    if not isinstance(rules, (list, tuple)):
        raise ValidationError('%s: expected a list of NetworkPolicy rules, got %s' % (field, type(rules).__name__))
    checked = []
    for index, rule in enumerate(rules):
        where = '%s[%d]' % (field, index)
        if not isinstance(rule, dict):
            raise ValidationError('%s: expected a NetworkPolicy rule (a mapping with %s and/or ports)' % (where, peer_key))
        unknown = sorted(set(rule) - {peer_key, 'ports'})
        if unknown:
            raise ValidationError('%s: unknown key(s) %s; a rule has %s and ports' % (where, ', '.join(unknown), peer_key))
        peers = rule.get(peer_key)
        if peers is not None and (not isinstance(peers, list) or not peers):
            # An empty peer list would allow every source or destination: never in an isolation policy.
            raise ValidationError('%s.%s: expected a non-empty list of peers (an empty list would allow everything)' % (where, peer_key))
        if peers is None and not rule.get('ports'):
            raise ValidationError('%s: a rule without %s and ports would allow all traffic' % (where, peer_key))
        checked.append(copy.deepcopy(rule))
    return checked


def isolation_policy(namespace, incident_id=None, pod_selector=None, allow_ingress=None, allow_egress=None,
                     name=ISOLATION_POLICY_NAME):
    """The NetworkPolicy document: deny all, except the listed ingress and egress rules."""
    validate_name(namespace, 'namespace', namespace=True)
    validate_name(name, 'name')
    selector = DEFAULT_SELECTOR if pod_selector is None else pod_selector
    if not isinstance(selector, dict) or not selector or not all(isinstance(k, str) and isinstance(v, str) for k, v in selector.items()):
        raise ValidationError('pod_selector: expected a non-empty mapping of label names to values (an empty one would isolate every pod)')
    labels = {MANAGED_LABEL: MANAGED_BY, PURPOSE_LABEL: 'isolation'}
    if incident_id:
        labels[INCIDENT_LABEL] = incident_id
    return {
        'apiVersion': API_VERSION,
        'kind': 'NetworkPolicy',
        'metadata': {'name': name, 'namespace': namespace, 'labels': labels,
                     'annotations': {'incident-response/description': 'Emergency isolation: deny all traffic except responders'}},
        'spec': {
            'podSelector': {'matchLabels': dict(selector)},
            'policyTypes': ['Ingress', 'Egress'],
            'ingress': _rules(allow_ingress, 'allow_ingress', 'from'),
            'egress': _rules(allow_egress, 'allow_egress', 'to'),
        },
    }


def _path(namespace, name=None):
    return group_path(API_VERSION, namespace, 'networkpolicies', name)


def get_policy(kube, namespace, name=ISOLATION_POLICY_NAME):
    """The stored NetworkPolicy, or None."""
    try:
        document, _source = kube.get_json(_path(namespace, name))
    except KubernetesError as exc:
        if exc.status == 404:
            return None
        raise
    return document


def holders(policy):
    """The incidents holding the isolation (sorted); a policy from before holds were recorded: its incident label."""
    if not policy:
        return []
    metadata = policy.get('metadata') or {}
    raw = (metadata.get('annotations') or {}).get(HOLDERS_ANNOTATION)
    if raw is None:
        first = (metadata.get('labels') or {}).get(INCIDENT_LABEL)
        return [first] if first else []
    try:
        value = json.loads(raw)
    except ValueError:
        return []
    return sorted({item for item in value if isinstance(item, str) and item}) if isinstance(value, list) else []


def _with_holders(document, held_by):
    annotations = document.setdefault('metadata', {}).setdefault('annotations', {})
    annotations[HOLDERS_ANNOTATION] = json.dumps(sorted(held_by), separators=(',', ':'))
    return document


def _same(existing, wanted):
    labels = existing.get('metadata', {}).get('labels') or {}
    return (existing.get('spec') == wanted['spec']
            and all(labels.get(key) == value for key, value in wanted['metadata']['labels'].items() if key != INCIDENT_LABEL))


def _ours(existing):
    return (existing.get('metadata', {}).get('labels') or {}).get(MANAGED_LABEL) == MANAGED_BY


def _refuse_foreign(existing, namespace, name, verb):
    if existing is not None and not _ours(existing):
        raise ValidationError('NetworkPolicy %s/%s %s not created by this collection (no %s=%s label); %s'
                              % (namespace, name, 'exists and was' if verb == 'apply' else 'was', MANAGED_LABEL, MANAGED_BY,
                                 'choose another name' if verb == 'apply' else 'it is left in place'))


def apply_isolation(kube, namespace, incident_id=None, pod_selector=None, allow_ingress=(), allow_egress=(),  # pylint: disable=too-many-arguments
                    check_mode=False, name=ISOLATION_POLICY_NAME, _attempts=3):
    """Create the isolation policy, or add the incident's hold and bring it back to the wanted rules.

    A no-op when it is in place with the wanted rules and the incident already holds it. Returns
    ``{'changed', 'name', 'policy', 'operation', 'before', 'holders'}``; ``operation`` is created, replaced, held or none.
    """
    wanted = isolation_policy(namespace, incident_id, pod_selector, list(allow_ingress or []), list(allow_egress or []), name)
    existing = get_policy(kube, namespace, name)
    _refuse_foreign(existing, namespace, name, 'apply')
    held_by = set(holders(existing)) | ({incident_id} if incident_id else set())
    if existing is not None and _same(existing, wanted) and set(holders(existing)) == held_by:
        return {'changed': False, 'name': name, 'policy': existing, 'operation': 'none', 'before': existing,
                'holders': sorted(held_by)}
    operation = 'created' if existing is None else ('replaced' if not _same(existing, wanted) else 'held')
    if check_mode:
        return {'changed': True, 'name': name, 'policy': _with_holders(wanted, held_by), 'operation': operation,
                'before': existing, 'holders': sorted(held_by)}
    if existing is None:
        try:
            created, _source = kube.request_json('POST', _path(namespace), _with_holders(wanted, held_by))
        except KubernetesError as exc:
            if exc.status != 409 or _attempts <= 1:
                raise
            # Another responder (the launcher or a second run) created it in between: add the hold to theirs.
            return apply_isolation(kube, namespace, incident_id, pod_selector, allow_ingress, allow_egress, check_mode, name,
                                   _attempts - 1)
        return {'changed': True, 'name': name, 'policy': created, 'operation': 'created', 'before': None,
                'holders': sorted(held_by)}
    replacement = _with_holders(copy.deepcopy(wanted), held_by)
    replacement['metadata']['resourceVersion'] = existing['metadata'].get('resourceVersion')
    # Keep the incident that first isolated the pods on the label.
    first = (existing['metadata'].get('labels') or {}).get(INCIDENT_LABEL)
    if first:
        replacement['metadata']['labels'][INCIDENT_LABEL] = first
    try:
        replaced, _source = kube.request_json('PUT', _path(namespace, name), replacement)
    except KubernetesError as exc:
        if exc.status not in (404, 409) or _attempts <= 1:
            raise
        # Changed or lifted in between: start again from what is there now.
        return apply_isolation(kube, namespace, incident_id, pod_selector, allow_ingress, allow_egress, check_mode, name,
                               _attempts - 1)
    return {'changed': True, 'name': name, 'policy': replaced, 'operation': operation, 'before': existing,
            'holders': sorted(held_by)}


def lift_isolation(kube, namespace, incident_id=None, check_mode=False, name=ISOLATION_POLICY_NAME, force=False, _attempts=3):
    """Remove the incident's hold on the isolation; delete the policy when nobody holds it any more.

    Without ``incident_id`` only a policy that no incident holds is deleted, unless ``force`` (a person lifting it by
    hand). ``operation`` is deleted, released (the hold is gone, other incidents still hold the isolation) or none.
    Refuses to touch a policy this collection did not create.
    """
    validate_name(namespace, 'namespace', namespace=True)
    validate_name(name, 'name')
    existing = get_policy(kube, namespace, name)
    if existing is None:
        return {'changed': False, 'name': name, 'policy': None, 'operation': 'none', 'before': None, 'holders': []}
    _refuse_foreign(existing, namespace, name, 'lift')
    current = holders(existing)
    remaining = [holder for holder in current if holder != incident_id]
    if force:
        remaining = []
    elif incident_id is None and remaining:
        raise ValidationError('NetworkPolicy %s/%s is held by %s: name the incident whose hold to lift (incident_id), or force'
                              % (namespace, name, ', '.join(remaining)))
    if remaining:
        if remaining == current:
            return {'changed': False, 'name': name, 'policy': existing, 'operation': 'none', 'before': existing,
                    'holders': remaining}
        updated = _with_holders(copy.deepcopy(existing), remaining)
        if not check_mode:
            try:
                updated, _source = kube.request_json('PUT', _path(namespace, name), updated)
            except KubernetesError as exc:
                if exc.status not in (404, 409) or _attempts <= 1:
                    raise
                return lift_isolation(kube, namespace, incident_id, check_mode, name, force, _attempts - 1)
        return {'changed': True, 'name': name, 'policy': updated, 'operation': 'released', 'before': existing,
                'holders': remaining}
    if not check_mode:
        options = {'kind': 'DeleteOptions', 'apiVersion': 'v1',
                   'preconditions': {'resourceVersion': existing['metadata'].get('resourceVersion')}}
        try:
            kube.request_json('DELETE', _path(namespace, name), options)
        except KubernetesError as exc:
            if exc.status == 409 and _attempts > 1:
                # Someone added a hold in between: recompute.
                return lift_isolation(kube, namespace, incident_id, check_mode, name, force, _attempts - 1)
            if exc.status != 404:
                raise
    return {'changed': True, 'name': name, 'policy': existing, 'operation': 'deleted', 'before': existing, 'holders': []}
