# -*- coding: utf-8 -*-
# Copyright: contributors to slurm_exporter.incident_response
# GNU General Public License v3.0+ (see COPYING or https://www.gnu.org/licenses/gpl-3.0.txt)
# SPDX-License-Identifier: GPL-3.0-or-later
"""Decisions the response playbooks take, as pure functions (used through the collection's filters).

Nothing here talks to a cluster: the playbooks read objects with kubernetes.core.k8s_info,
hand them to these functions, and act on the answer. Each function validates its input and
raises ValidationError with the field that is wrong.
"""

from __future__ import annotations

import base64
import binascii
import copy
import datetime
import json
import re

from ansible_collections.slurm_exporter.incident_response.plugins.module_utils.errors import ValidationError
from ansible_collections.slurm_exporter.incident_response.plugins.module_utils import timeutil

REVISION_ANNOTATION = 'deployment.kubernetes.io/revision'
HASH_LABEL = 'pod-template-hash'


def _when(value, field):
    if isinstance(value, datetime.datetime):
        return value if value.tzinfo else value.replace(tzinfo=timeutil.UTC)
    try:
        return timeutil.parse_ts(value)
    except Exception:  # pylint: disable=broad-exception-caught
        raise ValidationError('%s: %r is not an RFC 3339 time' % (field, value)) from None


def _owned_by(replicaset, deployment):
    return any(ref.get('kind') == 'Deployment' and ref.get('name') == deployment
               for ref in replicaset.get('metadata', {}).get('ownerReferences') or [])


def _revision(replicaset):
    try:
        return int((replicaset.get('metadata', {}).get('annotations') or {}).get(REVISION_ANNOTATION, '0'))
    except ValueError:
        return 0


def known_good_revision(replicasets, deployment, before, current_revision=None):
    """The deployment revision that was live before ``before``: ``{revision, template, current, changed}``.

    ``replicasets`` are ReplicaSet objects (k8s_info resources). The known-good revision is the
    highest one whose ReplicaSet was created before ``before``. ``changed`` says whether the
    deployment's current revision differs. The template is returned without the controller's
    ``pod-template-hash`` label, ready to be put back into the Deployment.
    """
    if not isinstance(replicasets, list):
        raise ValidationError('replicasets: expected a list of ReplicaSet objects, got %s' % type(replicasets).__name__)
    moment = _when(before, 'before')
    owned = [rs for rs in replicasets if isinstance(rs, dict) and _owned_by(rs, deployment)]
    if not owned:
        raise ValidationError('no ReplicaSet of Deployment %s was found: there is no revision to restore' % deployment)
    candidates = []
    for replicaset in owned:
        created = replicaset.get('metadata', {}).get('creationTimestamp')
        if created and _when(created, 'creationTimestamp') <= moment:
            candidates.append(replicaset)
    if not candidates:
        raise ValidationError('Deployment %s has no revision older than %s (revisions: %s); name a known-good manifest instead'
                              % (deployment, timeutil.format_ts(moment), ', '.join(str(_revision(rs)) for rs in owned)))
    chosen = max(candidates, key=_revision)
    latest = max(_revision(rs) for rs in owned)
    current = int(current_revision) if current_revision not in (None, '') else latest
    template = copy.deepcopy(chosen.get('spec', {}).get('template') or {})
    labels = template.get('metadata', {}).get('labels')
    if labels:
        labels.pop(HASH_LABEL, None)
    return {'revision': _revision(chosen), 'current': current, 'changed': _revision(chosen) != current,
            'replicaset': chosen['metadata']['name'], 'template': template}


_QUANTITY = re.compile(r'^([0-9.]+)([a-zA-Z]*)$')
_FACTORS = {
    '': 1, 'm': 0.001, 'k': 1e3, 'M': 1e6, 'G': 1e9, 'T': 1e12,
    'Ki': 1024, 'Mi': 1024 ** 2, 'Gi': 1024 ** 3, 'Ti': 1024 ** 4,
}


def parse_quantity(value, field='quantity'):
    """A Kubernetes quantity (``500m``, ``512Mi``, ``2``) as a float of base units."""
    match = _QUANTITY.match(str(value).strip())
    if not match or match.group(2) not in _FACTORS:
        raise ValidationError('%s: %r is not a Kubernetes quantity' % (field, value))
    return float(match.group(1)) * _FACTORS[match.group(2)]


def format_quantity(amount, resource):
    if resource == 'cpu':
        return '%dm' % int(round(amount * 1000))
    return '%dMi' % int(-(-amount // (1024 ** 2)))


def raised_limits(container, factor, ceilings):
    """New limits (and requests kept at or below them) for one container, capped by ``ceilings``.

    Returns ``{limits, requests, changed, capped, before}``; ``capped`` lists the resources that
    reached their ceiling (nothing more can be given without raising it).
    """
    try:
        factor = float(factor)
    except (TypeError, ValueError):
        raise ValidationError('factor: expected a number, got %r' % (factor,)) from None
    if factor <= 1:
        raise ValidationError('factor: must be greater than 1, got %s' % factor)
    if not isinstance(ceilings, dict) or not ceilings:
        raise ValidationError('ceilings: expected a mapping such as {cpu: "2", memory: 2Gi}')
    resources = container.get('resources') or {}
    limits = dict(resources.get('limits') or {})
    requests = dict(resources.get('requests') or {})
    before = {'limits': dict(limits), 'requests': dict(requests)}
    capped = []
    for resource, ceiling in sorted(ceilings.items()):
        top = parse_quantity(ceiling, 'ceilings.%s' % resource)
        current = limits.get(resource)
        if current is None:
            continue
        now = parse_quantity(current, 'limits.%s' % resource)
        wanted = min(now * factor, top)
        if wanted <= now:
            capped.append(resource)
            continue
        limits[resource] = format_quantity(wanted, resource)
        if wanted >= top:
            capped.append(resource)
    changed = limits != before['limits']
    return {'limits': limits, 'requests': requests, 'changed': changed, 'capped': capped, 'before': before}


def _b64url(segment):
    padded = segment + '=' * (-len(segment) % 4)
    return base64.urlsafe_b64decode(padded.encode('ascii'))


def jwt_expiry(token, now=None, min_remaining=0):
    """``{valid, expires_at, remaining, expired}`` from a JWT's ``exp`` claim; the token is never returned.

    The signature is not checked (slurmrestd does that); this only reads when the token stops
    working. A token that is not a JWT, or has no ``exp``, counts as expired.
    """
    now = _when(now, 'now') if now is not None else timeutil.utcnow()
    try:
        parts = str(token or '').strip().split('.')
        if len(parts) != 3:
            raise ValueError('not three segments')
        claims = json.loads(_b64url(parts[1]))
        exp = int(claims['exp'])
    except (ValueError, KeyError, TypeError, binascii.Error, UnicodeDecodeError) as exc:
        return {'valid': False, 'expires_at': None, 'remaining': 0, 'expired': True,
                'reason': 'not a JWT with an exp claim (%s)' % type(exc).__name__}
    expires = datetime.datetime.fromtimestamp(exp, tz=timeutil.UTC)
    remaining = int((expires - now).total_seconds())
    return {'valid': True, 'expires_at': timeutil.format_ts(expires), 'remaining': remaining,
            'expired': remaining <= int(min_remaining), 'reason': 'expires in %ds' % remaining if remaining > 0 else 'expired'}


def _digest(image_ref):
    return image_ref.split('@', 1)[1] if '@' in (image_ref or '') else None


def image_findings(deployment, pods):
    """Compare running image digests with the Deployment's images.

    A container whose image is pinned (``name@sha256:...``) must run exactly that digest; an
    unpinned image is reported (nothing to compare with) unless all pods agree on one digest.
    Returns ``{mismatched_pods, findings, pinned}``.
    """
    containers = {c['name']: c.get('image', '') for c in deployment.get('spec', {}).get('template', {}).get('spec', {}).get('containers', [])}
    findings = []
    mismatched = []
    seen = {}
    for pod in pods:
        name = pod.get('metadata', {}).get('name')
        for status in pod.get('status', {}).get('containerStatuses') or []:
            expected_image = containers.get(status.get('name'))
            running = _digest(status.get('imageID') or '')
            if expected_image is None:
                findings.append({'pod': name, 'container': status.get('name'), 'finding': 'container not in the Deployment'})
                mismatched.append(name)
                continue
            pinned = _digest(expected_image)
            seen.setdefault(status['name'], set()).add(running)
            if pinned and running != pinned:
                findings.append({'pod': name, 'container': status['name'], 'finding': 'digest differs from the pinned image',
                                 'expected': pinned, 'running': running})
                mismatched.append(name)
    for container, image in sorted(containers.items()):
        if not _digest(image):
            digests = sorted(d for d in seen.get(container, ()) if d)
            findings.append({'container': container, 'finding': 'image %s is not pinned by digest' % image,
                             'running': digests})
            if len(digests) > 1:
                findings.append({'container': container, 'finding': 'pods run different digests of %s' % image, 'running': digests})
    return {'mismatched_pods': sorted(set(mismatched)), 'findings': findings,
            'pinned': all(_digest(image) for image in containers.values())}


def restart_allowed(deployment, min_available):
    """Whether a rolling restart keeps at least ``min_available`` replicas available (or none are available anyway)."""
    spec = deployment.get('spec', {})
    status = deployment.get('status', {})
    replicas = int(spec.get('replicas', 1))
    available = int(status.get('availableReplicas') or 0)
    rolling = (spec.get('strategy') or {}).get('rollingUpdate') or {}
    unavailable = rolling.get('maxUnavailable', '25%')
    if isinstance(unavailable, str) and unavailable.endswith('%'):
        max_unavailable = int(replicas * int(unavailable[:-1]) // 100)
    else:
        max_unavailable = int(unavailable)
    if (spec.get('strategy') or {}).get('type') == 'Recreate':
        max_unavailable = replicas
    projected = available - max_unavailable
    allowed = available == 0 or projected >= int(min_available)
    return {'allowed': allowed, 'available': available, 'projected': max(projected, 0), 'max_unavailable': max_unavailable,
            'reason': ('no replica is available; a restart cannot make it worse' if available == 0 else
                       'at least %d of %d replicas stay available' % (projected, replicas) if allowed else
                       'a restart could leave %d available replicas, below the minimum of %d' % (max(projected, 0), int(min_available)))}


def scoped_manifests(documents, namespace, allowed_kinds=None):
    """Manifests forced into ``namespace``: refuses cluster-scoped kinds and objects of another namespace."""
    cluster_scoped = {'Namespace', 'Node', 'ClusterRole', 'ClusterRoleBinding', 'PersistentVolume', 'StorageClass',
                      'CustomResourceDefinition', 'PriorityClass', 'MutatingWebhookConfiguration', 'ValidatingWebhookConfiguration'}
    scoped = []
    for index, document in enumerate(documents or []):
        if document is None:
            continue
        if not isinstance(document, dict) or 'kind' not in document or 'apiVersion' not in document:
            raise ValidationError('manifest %d: not a Kubernetes object (needs apiVersion and kind)' % index)
        kind = document['kind']
        name = document.get('metadata', {}).get('name', '?')
        if kind == 'List':
            scoped.extend(scoped_manifests(document.get('items') or [], namespace, allowed_kinds))
            continue
        if kind in cluster_scoped:
            raise ValidationError('manifest %d (%s %s): cluster-scoped objects are outside the response scope' % (index, kind, name))
        if allowed_kinds and kind not in allowed_kinds:
            raise ValidationError('manifest %d (%s %s): kind not allowed here (allowed: %s)' % (index, kind, name, ', '.join(allowed_kinds)))
        declared = document.get('metadata', {}).get('namespace')
        if declared not in (None, '', namespace):
            raise ValidationError('manifest %d (%s %s): namespace %s is outside the configured namespace %s'
                                  % (index, kind, name, declared, namespace))
        document = copy.deepcopy(document)
        metadata = document.setdefault('metadata', {})
        metadata['namespace'] = namespace
        for key in ('resourceVersion', 'uid', 'creationTimestamp', 'generation', 'managedFields', 'selfLink'):
            metadata.pop(key, None)
        document.pop('status', None)
        scoped.append(document)
    return scoped


def not_ready_nodes(nodes):
    """Names of the nodes whose Ready condition is not True (unknown counts as not ready)."""
    names = []
    for node in nodes or []:
        conditions = node.get('status', {}).get('conditions') or []
        ready = [c for c in conditions if c.get('type') == 'Ready']
        if not ready or ready[-1].get('status') != 'True':
            names.append(node.get('metadata', {}).get('name'))
    return names
