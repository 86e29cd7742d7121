# -*- coding: utf-8 -*-
# Copyright: contributors to slurm_exporter.incident_response
# GNU General Public License v3.0+ (see COPYING or https://www.gnu.org/licenses/gpl-3.0.txt)
# SPDX-License-Identifier: GPL-3.0-or-later
"""Disaster recovery from a directory of manifests, as pure functions (used through the collection's filters).

``restore_plan`` decides, before anything is written, what a namespace restore applies and in which
order, and what it leaves alone and why: cluster-scoped and RBAC objects, and documents whose API
group/version and kind the API server does not serve (from its discovery, as kubernetes.core's
k8s_cluster_info returns it). ``apply_outcome`` reads the registered results of the kubernetes.core.k8s
loops that applied them: which objects changed, and for each failed one its kind/name and the API
server's answer (HTTP status, reason, message). A Secret's failure is reported by kind, name, status and
reason only: its message is never returned, since an API server or an admission webhook may quote a value.
"""

from __future__ import annotations

import ast
import json
import re

from ansible_collections.slurm_exporter.incident_response.plugins.module_utils.errors import ValidationError
from ansible_collections.slurm_exporter.incident_response.plugins.module_utils.response import scoped_manifests

# Applied first: what the workloads run as or mount. Then the Secrets (apart), then everything else, and
# the workloads (what starts pods) last.
FIRST_KINDS = ('ServiceAccount', 'ConfigMap')
LAST_KINDS = ('Deployment', 'StatefulSet', 'DaemonSet', 'ReplicaSet', 'Job', 'CronJob', 'HorizontalPodAutoscaler')
# Never applied by a namespace restore, whatever discovery says (a backup may hold them; scoped_manifests refuses them).
CLUSTER_SCOPED = ('Namespace', 'Node', 'ClusterRole', 'ClusterRoleBinding', 'PersistentVolume', 'StorageClass',
                  'CustomResourceDefinition', 'PriorityClass', 'MutatingWebhookConfiguration',
                  'ValidatingWebhookConfiguration', 'APIService')
WITHHELD = 'withheld (Secret)'
MESSAGE_LIMIT = 1000


def label(document):
    """``Kind/name`` of a Kubernetes object (``?`` for what is missing)."""
    document = document if isinstance(document, dict) else {}
    metadata = document.get('metadata') if isinstance(document.get('metadata'), dict) else {}
    return '%s/%s' % (document.get('kind') or '?', metadata.get('name') or '?')


def _plain(document):
    """A plain copy (dicts, lists, str, numbers): cheap to copy and to hand back to Ansible as a fact."""
    return json.loads(json.dumps(document, default=str))


def _flatten(documents, where='document'):
    flat = []
    for index, document in enumerate(documents or []):
        if document is None:
            continue
        if not isinstance(document, dict) or not document.get('kind') or not document.get('apiVersion'):
            raise ValidationError('%s %d of the backup is not a Kubernetes object (needs apiVersion and kind)' % (where, index))
        if document['kind'] == 'List':
            flat.extend(_flatten(document.get('items') or [], 'item of %s' % label(document)))
        else:
            flat.append(_plain(document))
    return flat


def _served(served):
    if not isinstance(served, dict) or not served:
        raise ValidationError('served: the API server\'s discovery (k8s_cluster_info apis) is empty; nothing can be checked')
    return {str(version): (kinds if isinstance(kinds, dict) else {}) for version, kinds in served.items()}


def restore_plan(documents, namespace, served, unrestored_kinds=None):
    """What a namespace restore applies, in order, and what it leaves alone (and why).

    ``documents``: the backup's objects (a ``List`` is expanded, empty documents dropped);
    ``served``: ``{"group/version": {"Kind": {"namespaced": bool, ...}}}`` (k8s_cluster_info's ``apis``);
    ``unrestored_kinds``: kinds left to an administrator (cluster-scoped and RBAC kinds).

    Returns ``first`` (ServiceAccounts and ConfigMaps), ``secrets``, ``rest`` (other objects, workloads last), all
    forced into ``namespace``; ``skipped_cluster_scoped`` (``Kind/name``: the unrestored kinds and what discovery
    says is cluster-scoped); ``skipped_unserved`` (``object``, ``apiVersion``, ``served_as``: the group/versions
    that do serve the kind, ``reason``). A document of another namespace raises ValidationError: nothing is applied.
    """
    if not isinstance(namespace, str) or not namespace:
        raise ValidationError('namespace: a namespace name is required')
    served = _served(served)
    unrestored = set(unrestored_kinds or []) | set(CLUSTER_SCOPED)
    kept, skipped_scope, skipped_unserved = [], [], []
    for document in _flatten(documents):
        kind, version, name = document['kind'], str(document['apiVersion']), label(document)
        declared = (document.get('metadata') or {}).get('namespace')
        entry = served.get(version, {}).get(kind)
        if kind in unrestored or (isinstance(entry, dict) and entry.get('namespaced') is False):
            skipped_scope.append(name)
            continue
        if declared not in (None, '', namespace):
            raise ValidationError('%s (%s): namespace %s is outside the configured namespace %s; nothing was applied'
                                  % (name, version, declared, namespace))
        if entry is None:
            alternatives = sorted(other for other, kinds in served.items() if kind in kinds)
            skipped_unserved.append({
                'object': name, 'apiVersion': version, 'served_as': alternatives,
                'reason': 'the API server serves no %s in %s%s' % (
                    kind, version, ('; it serves %s as %s (not converted: another API version is another schema, '
                                    'a person decides)' % (kind, ', '.join(alternatives))) if alternatives else ''),
            })
            continue
        kept.append(document)
    kept = scoped_manifests(kept, namespace)
    return {
        'first': [d for d in kept if d['kind'] in FIRST_KINDS],
        'secrets': [d for d in kept if d['kind'] == 'Secret'],
        'rest': ([d for d in kept if d['kind'] not in FIRST_KINDS + LAST_KINDS + ('Secret',)]
                 + [d for d in kept if d['kind'] in LAST_KINDS]),
        'skipped_cluster_scoped': skipped_scope,
        'skipped_unserved': skipped_unserved,
    }


def _status_body(message):
    """The Kubernetes ``Status`` object inside a kubernetes.core failure message, or {}.

    kubernetes.core formats it as ``Failed to apply object: b'{"kind":"Status",...}'`` (the bytes' repr).
    """
    if not isinstance(message, str):
        return {}
    found = re.search(r"""(b'.*'|b".*")\s*$""", message, re.DOTALL)
    candidates = []
    if found:
        try:
            candidates.append(ast.literal_eval(found.group(1)).decode('utf-8', 'replace'))
        except (ValueError, SyntaxError):
            pass
    if '{' in message:
        candidates.append(message[message.index('{'):])
    for text in candidates:
        try:
            body = json.loads(text)
        except ValueError:
            continue
        if isinstance(body, dict) and body.get('kind') == 'Status':
            return body
    return {}


def api_error(result, secret=False):
    """``status``, ``reason``, ``message`` of one failed kubernetes.core result (a Secret's message withheld)."""
    result = result if isinstance(result, dict) else {}
    if secret:
        # Only the Status's code and reason leave this function; the message is dropped here, by construction.
        body = _status_body(result.get('msg'))
        return {'status': body.get('code'), 'reason': str(body.get('reason') or result.get('reason') or 'failed'),
                'message': WITHHELD}
    body = _status_body(result.get('msg'))
    message = body.get('message') or result.get('msg') or 'failed'
    message = str(message)
    if len(message) > MESSAGE_LIMIT:
        message = message[:MESSAGE_LIMIT - 3] + '...'
    return {'status': body.get('code'), 'reason': str(body.get('reason') or result.get('reason') or 'failed'), 'message': message}


def apply_outcome(results):
    """What the apply loops did: ``changed``, ``unchanged`` (``Kind/name``), ``failed`` and ``failure_lines``.

    ``results``: the ``results`` of kubernetes.core.k8s loops over the objects (``item`` is the object; skipped
    items are ignored). Each failure is ``object``, ``status`` (the HTTP status code, or None without an
    answer), ``reason`` and ``message``; for a Secret the message is withheld. ``failure_lines`` has one
    ``Kind/name: 422 Invalid: message`` line per failure, ``failure_heads`` one ``Kind/name (422 Invalid)``.
    """
    outcome = {'changed': [], 'unchanged': [], 'failed': []}
    for result in results or []:
        if not isinstance(result, dict) or result.get('skipped'):
            continue
        item = result.get('item') if isinstance(result.get('item'), dict) else {}
        name = label(item)
        if result.get('failed'):
            failure = {'object': name}
            failure.update(api_error(result, secret=item.get('kind') == 'Secret'))
            outcome['failed'].append(failure)
        elif result.get('changed'):
            outcome['changed'].append(name)
        else:
            outcome['unchanged'].append(name)
    outcome['failure_lines'] = [_line(failure) for failure in outcome['failed']]
    outcome['failure_heads'] = [_head(failure) for failure in outcome['failed']]
    return outcome


def _head(failure):
    return '%s (%s%s)' % (failure['object'], ('%s ' % failure['status']) if failure.get('status') else '', failure['reason'])


def _line(failure):
    head = '%s: %s%s' % (failure['object'], ('%s ' % failure['status']) if failure.get('status') else '', failure['reason'])
    if failure['message'] == WITHHELD:
        return '%s (message %s)' % (head, WITHHELD)
    return '%s: %s' % (head, failure['message'])
