# -*- coding: utf-8 -*-
# Copyright: contributors to slurm_exporter.incident_response
# GNU General Public License v3.0+ (see COPYING or https://www.gnu.org/licenses/gpl-3.0.txt)
# SPDX-License-Identifier: GPL-3.0-or-later
"""Guarded changes to the protected workload: every action of a response plan that writes to Kubernetes.

One entry point, :meth:`Workload.perform`, runs a named response action under the guarantees the
collection makes (docs/response.md, "Safety guarantees"):

- **Serialised per workload.** The workload's Lease (module_utils/lease.py) is held for the whole
  step, whatever path runs it (playbook, AWX job, the launcher's first response); waits are recorded.
- **Shared containment is reference-counted.** Isolation (the NetworkPolicy's holders) and the
  scale-down (the Deployment's ``incident-response/holds`` annotation, with the replica count from
  before the *first* holder) are held per incident: restoring removes only the incident's own hold,
  and the workload comes back when the last holder lets go, to the count it had before.
- **Flapping guard.** A change of one kind (restart, rollback, scale, rotation, limits, ...) is not
  repeated for the same workload by another incident inside ``min_interval[kind]`` seconds; the
  action is *suppressed* and says who changed it when.
- **Evidence before destruction.** An action that destroys pod logs does not run when the
  incident's evidence capture could not read them (or, for a security incident, when nothing was
  captured), unless ``allow_evidence_loss``; the action is *blocked* and says which logs are missing.
- **Minimum available replicas** for every action that restarts pods in an operational incident.
- **A bound on cumulative changes:** raised limits never exceed the ceilings, nor ``max_factor`` times
  the limits from before the first raise of the window.
- **Transient faults retried** (429, 5xx, resets, time-outs) by urllib3's Retry in the client; every
  retry is listed in the outcome.
- **Check mode sends no write request** of any kind (not even a server-side dry run).

Each action returns ``{'result', 'changed', 'summary', 'details'}`` (result: success, suppressed, blocked,
needs_person, skipped); a failure raises with the details so far attached.
"""

from __future__ import annotations

import copy
import datetime
import json
import time

from ansible_collections.slurm_exporter.incident_response.plugins.module_utils import containment
from ansible_collections.slurm_exporter.incident_response.plugins.module_utils import response
from ansible_collections.slurm_exporter.incident_response.plugins.module_utils import timeutil
from ansible_collections.slurm_exporter.incident_response.plugins.module_utils.errors import IncidentResponseError, ValidationError
from ansible_collections.slurm_exporter.incident_response.plugins.module_utils.k8s import (
    KubernetesError, core_path, group_path, validate_name)
from ansible_collections.slurm_exporter.incident_response.plugins.module_utils.lease import WorkloadLease, default_holder, parse_micro_time

HOLDS_ANNOTATION = 'incident-response/holds'
LIMITS_BASELINE_ANNOTATION = 'incident-response/limits-baseline'
RESTARTED_AT = 'kubectl.kubernetes.io/restartedAt'
ROTATED_BY = 'incident-response/rotated-by'
DEPLOYMENTS = 'apps/v1'


class ActionPolicy:  # pylint: disable=too-few-public-methods
    """What a response action is, for the guards: its kind of change, what evidence it destroys, whether it restarts
    pods, and what undoes it when the response fails after it."""

    def __init__(self, kind=None, destroys=None, restarts=False, compensation=None, description=''):
        self.kind = kind
        self.destroys = destroys
        self.restarts = restarts
        self.compensation = compensation
        self.description = description


POLICIES = {
    'isolate_pods': ActionPolicy(description='emergency NetworkPolicy; kept on failure, by design (the hold stays)'),
    'lift_isolation': ActionPolicy(description="removes the incident's hold; the policy goes with the last hold"),
    'scale_down': ActionPolicy('scale', 'logs', False, 'scale_restore',
                               'replicas to 0, held per incident; undone on failure unless the pods stay isolated'),
    'scale_restore': ActionPolicy(description='the last holder restores the replica count from before the first scale-down'),
    'rollout_restart': ActionPolicy('restart', 'logs', True, None, 'rolling restart of the pods'),
    'restart_deployment': ActionPolicy('restart', 'logs', True, None, 'rolling restart of the pods'),
    'restart_pod': ActionPolicy('restart', 'logs', True, None, 'one pod deleted and replaced'),
    'delete_infected_pods': ActionPolicy('restart', 'logs', True, None, 'the named pods deleted and replaced'),
    'reschedule_from_failed_nodes': ActionPolicy('restart', 'logs', True, None, 'pods on failed nodes deleted'),
    'cleanup_evicted_pods': ActionPolicy(None, None, False, None, 'evicted (already stopped) pods removed'),
    'raise_limits': ActionPolicy('limits', 'logs', True, None, 'container limits raised within the bounds (a rollout)'),
    'increase_logging': ActionPolicy('logging', 'logs', True, 'revert_logging', 'debug logging (a rollout), reverted at recovery'),
    'revert_logging': ActionPolicy(None, 'logs', True, None, 'the logging arguments from before increase_logging'),
    'restore_known_good': ActionPolicy('rollback', 'logs', True, None, 'the pod template of the known-good revision'),
    'rollback_if_unavailable': ActionPolicy('rollback', 'logs', True, None, 'the previous revision, when unavailable'),
    'rotate_credentials': ActionPolicy('rotation', None, False, None, 'the JWT in the credentials Secret'),
    'rotate_tls': ActionPolicy('rotation', None, False, None, 'the TLS Secret'),
    'restore_configmap': ActionPolicy('config', None, False, None, 'the ConfigMap from its known-good copy'),
    'restore_network_policy': ActionPolicy('network', None, False, None, "the exporter's NetworkPolicy"),
}
KINDS = sorted({policy.kind for policy in POLICIES.values() if policy.kind})
DEFAULT_MIN_INTERVAL = {'scale': 600, 'restart': 600, 'rollback': 600, 'limits': 1800, 'logging': 600, 'rotation': 3600,
                        'config': 600, 'network': 600}


def _now():
    return datetime.datetime.now(datetime.timezone.utc)


def _dumps(value):
    return json.dumps(value, sort_keys=True, separators=(',', ':'))


def _selector(labels):
    return ','.join('%s=%s' % item for item in sorted(labels.items()))


class Settings:  # pylint: disable=too-many-instance-attributes,too-few-public-methods
    """The guards' settings, validated (the k8s_workload module's options)."""

    def __init__(self, min_interval=None, min_available=1, allow_evidence_loss=False, lease_duration=60,
                 lease_wait_timeout=900.0, wait=True, wait_timeout=300, resource_factor=1.5, resource_ceilings=None,
                 resource_max_factor=2.0, resource_window=86400):
        intervals = dict(DEFAULT_MIN_INTERVAL)
        for kind, seconds in (min_interval or {}).items():
            if kind not in DEFAULT_MIN_INTERVAL:
                raise ValidationError('min_interval: unknown kind %r; kinds: %s' % (kind, ', '.join(KINDS)))
            if not isinstance(seconds, (int, float)) or isinstance(seconds, bool) or seconds < 0:
                raise ValidationError('min_interval.%s: expected seconds >= 0, got %r' % (kind, seconds))
            intervals[kind] = seconds
        if not isinstance(min_available, int) or isinstance(min_available, bool) or min_available < 0:
            raise ValidationError('min_available: expected an integer >= 0, got %r' % (min_available,))
        for name, value in (('wait_timeout', wait_timeout), ('resource_window', resource_window)):
            if not isinstance(value, (int, float)) or isinstance(value, bool) or value < 0:
                raise ValidationError('%s: expected seconds >= 0, got %r' % (name, value))
        if not isinstance(resource_max_factor, (int, float)) or isinstance(resource_max_factor, bool) or resource_max_factor < 1:
            raise ValidationError('resource_max_factor: expected a number >= 1, got %r' % (resource_max_factor,))
        self.min_interval = intervals
        self.min_available = min_available
        self.allow_evidence_loss = bool(allow_evidence_loss)
        self.lease_duration = lease_duration
        self.lease_wait_timeout = lease_wait_timeout
        self.wait = bool(wait)
        self.wait_timeout = wait_timeout
        self.resource_factor = resource_factor
        self.resource_ceilings = resource_ceilings or {'cpu': '2', 'memory': '2Gi'}
        self.resource_max_factor = float(resource_max_factor)
        self.resource_window = resource_window


class Blocked(Exception):
    """A guard said no (result blocked, suppressed or needs_person): not a failure of the action."""

    def __init__(self, result, summary, **details):
        super().__init__(summary)
        self.result = result
        self.summary = summary
        self.details = details


class Workload:  # pylint: disable=too-many-instance-attributes,too-many-public-methods
    """One Deployment (and its pods, isolation policy and Secrets) in one namespace, changed only through perform()."""

    def __init__(self, kube, namespace, deployment, incident=None, pod_selector=None, container=None, settings=None,
                 check_mode=False, holder=None, clock=_now, sleep=time.sleep):
        validate_name(namespace, 'namespace', namespace=True)
        validate_name(deployment, 'deployment')
        self.kube = kube
        self.namespace = namespace
        self.name = deployment
        self.incident = incident or {}
        self.incident_id = self.incident.get('id')
        self.pod_selector = dict(pod_selector or {'app': deployment})
        self.container = container or deployment
        self.settings = settings or Settings()
        self.check_mode = check_mode
        self.clock = clock
        self.sleep = sleep
        self.lease = WorkloadLease(kube, namespace, deployment, holder or default_holder(self.incident_id),
                                   self.settings.lease_duration, self.settings.lease_wait_timeout, clock=clock, sleep=sleep)
        self.notes = []
        self._guard = None

    # -- the entry point -------------------------------------------------------------------------------
    def perform(self, action, params=None, secret_data=None):
        """Run ``action`` under the Lease and the guards; ``{'result', 'changed', 'summary', 'details'}``."""
        if action not in POLICIES and action != 'compensate':
            raise ValidationError('action: unknown action %r; known: %s' % (action, ', '.join(sorted(POLICIES) + ['compensate'])))
        if action != 'compensate' and not self.incident_id:
            raise ValidationError('incident: the incident (its record, or at least its id) is required for %s' % action)
        params = dict(params or {})
        handler = getattr(self, '_do_' + action)
        details = {}
        if action == 'compensate' and not self.to_compensate():
            # Nothing the response did is undoable: no Lease, no request.
            return {'result': 'success', 'changed': False, 'summary': 'Compensation: nothing to compensate',
                    'details': {'compensation': []}}
        try:
            if self.check_mode:
                # Reads only: the guards are evaluated on what is there, nothing is written (not even the Lease).
                current = self.lease.read()
                holder = self.lease.holder_of(current)
                if holder and holder != self.lease.holder:
                    details['lease'] = {'name': self.lease.name, 'would_wait_for': holder}
                outcome = self._guarded(action, handler, params, secret_data, self.lease.changes(current))
            else:
                with self.lease.held():
                    outcome = self._guarded(action, handler, params, secret_data, self.lease.changes())
        except Blocked as blocked:
            outcome = {'result': blocked.result, 'changed': False, 'summary': blocked.summary, 'details': blocked.details}
        except IncidentResponseError as exc:
            exc.details.setdefault('details', {}).update(self._context(details))
            raise
        outcome['details'] = dict(outcome.get('details') or {}, **self._context(details))
        return outcome

    def _context(self, details):
        context = dict(details)
        if self.lease.waits:
            context['lease'] = dict(context.get('lease') or {}, name=self.lease.name, waited=list(self.lease.waits))
        if self.kube.retries:
            context['retries'] = list(self.kube.retries)
        if self.notes:
            context['notes'] = list(self.notes)
        return context

    def _guarded(self, action, handler, params, secret_data, changes):
        policy = POLICIES.get(action) or ActionPolicy()
        # The flapping guard is checked when the action is about to change something (_before_change): adding a hold
        # to a workload that another incident already scaled down, say, is not a change of the workload.
        self._guard = (action, policy.kind, changes) if policy.kind else None
        outcome = handler(params, secret_data) if secret_data is not None else handler(params)
        if policy.kind and outcome.get('changed') and not self.check_mode and outcome.get('result', 'success') == 'success':
            self.lease.remember(policy.kind, self.incident_id, action)
        outcome.setdefault('result', 'success')
        return outcome

    # -- guards -----------------------------------------------------------------------------------------
    def _before_change(self):
        """Called by an action right before it changes the workload: the flapping guard (once per action)."""
        guard, self._guard = getattr(self, '_guard', None), None
        if guard is not None:
            self._flapping_guard(*guard)

    def _flapping_guard(self, action, kind, changes):
        last = changes.get(kind) or {}
        interval = self.settings.min_interval.get(kind, 0)
        if not last or not interval or last.get('incident') == self.incident_id:
            return
        when = parse_micro_time(last.get('at'))
        if when is None:
            return
        age = (self.clock() - when).total_seconds()
        if age < interval:
            raise Blocked('suppressed', '%s suppressed: %s (a %s change) made to %s/%s %ds ago by %s; minimum interval %ds'
                          % (action, last.get('action'), kind, self.namespace, self.name, age, last.get('incident'), interval),
                          guard='min_interval', kind=kind, last_change=last, min_interval=interval, age_seconds=int(age))

    def _evidence_gate(self, action, pods):
        """Refuse to destroy the logs of ``pods`` when the incident's capture missed them (or, security: never ran)."""
        if self.check_mode or self.settings.allow_evidence_loss or not pods:
            return
        captures = [item for item in self.incident.get('actions') or [] if item.get('name') == 'capture_evidence']
        last = captures[-1] if captures else None
        if last is None or last.get('result') != 'success':
            if self.incident.get('category') == 'security':
                raise Blocked('blocked', '%s blocked: no successful evidence capture for %s yet, and it would destroy the logs of %s'
                              % (action, self.incident_id, ', '.join(sorted(pods))), guard='evidence',
                              missing_logs=sorted(pods))
            return
        gaps = ((last.get('details') or {}).get('gaps') or {}).get('logs') or []
        missing = sorted(pods) if '*' in gaps else sorted(set(gaps) & set(pods))
        if missing:
            raise Blocked('blocked', '%s blocked: the evidence capture could not read the logs of %s, and %s would destroy them; '
                          'set incident_allow_evidence_loss to go ahead' % (action, ', '.join(missing), action),
                          guard='evidence', missing_logs=missing, bundle=(last.get('details') or {}).get('bundle'))

    def _restart_guard(self, action, deployment):
        if self.incident.get('category') == 'security':
            return 'security incident: no minimum of available replicas'
        check = response.restart_allowed(deployment, self.settings.min_available)
        if not check['allowed']:
            raise Blocked('blocked', '%s blocked: %s' % (action, check['reason']), guard='min_available', **check)
        return check['reason']

    # -- reading --------------------------------------------------------------------------------------
    def _deployment_path(self):
        return group_path(DEPLOYMENTS, self.namespace, 'deployments', self.name)

    def deployment(self):
        try:
            document, _source = self.kube.get_json(self._deployment_path())
        except KubernetesError as exc:
            if exc.status == 404:
                raise IncidentResponseError('Deployment %s/%s does not exist' % (self.namespace, self.name)) from None
            raise
        return document

    def pods(self):
        document, _source = self.kube.get_json(core_path(self.namespace, 'pods'), {'labelSelector': _selector(self.pod_selector)})
        return document.get('items') or []

    @staticmethod
    def holds(deployment):
        raw = ((deployment.get('metadata') or {}).get('annotations') or {}).get(HOLDS_ANNOTATION)
        try:
            value = json.loads(raw) if raw else {}
        except ValueError:
            value = {}
        return value if isinstance(value, dict) else {}

    def _update_deployment(self, edit, guard=True):
        """Read, ``edit(document)`` (returns False for no change), PUT with the resourceVersion; again after a conflict.

        ``guard``: the change counts for the flapping guard; an edit that only sometimes changes the workload passes
        False and calls _before_change() itself."""
        for _attempt in range(5):
            document = self.deployment()
            before = copy.deepcopy(document)
            if edit(document) is False or document == before:
                return before, False
            if guard:
                self._before_change()
            if self.check_mode:
                return document, True
            self.lease.check()
            try:
                updated, _source = self.kube.request_json('PUT', self._deployment_path(), document)
            except KubernetesError as exc:
                if exc.status == 409:
                    continue  # the controller wrote status in between: read again and re-apply the edit
                raise
            return updated, True
        raise IncidentResponseError('Deployment %s/%s kept changing under the update (5 conflicts)' % (self.namespace, self.name))

    def _wait(self, what, ready):
        """Poll the Deployment until ``ready(document)``; fails after the wait timeout."""
        if self.check_mode or not self.settings.wait:
            return None
        deadline = time.monotonic() + self.settings.wait_timeout
        while True:
            document = self.deployment()
            if ready(document):
                return document
            if time.monotonic() >= deadline:
                status = document.get('status') or {}
                raise IncidentResponseError('%s/%s: not %s after %ss (replicas %s, available %s)' % (
                    self.namespace, self.name, what, self.settings.wait_timeout, status.get('replicas', 0),
                    status.get('availableReplicas', 0)))
            self.sleep(1.0)

    @staticmethod
    def _available(document):
        spec, status = document.get('spec') or {}, document.get('status') or {}
        wanted = int(spec.get('replicas', 1))
        return (int(status.get('availableReplicas') or 0) >= wanted and int(status.get('updatedReplicas') or 0) >= wanted
                and int(status.get('replicas') or 0) == wanted and status.get('observedGeneration', 0) >= document['metadata'].get('generation', 0))

    @staticmethod
    def _scaled_to_zero(document):
        return int((document.get('status') or {}).get('replicas') or 0) == 0

    # -- isolation --------------------------------------------------------------------------------------
    def _do_isolate_pods(self, params):
        applied = containment.apply_isolation(self.kube, self.namespace, self.incident_id, self.pod_selector,
                                              params.get('allow_ingress') or [], params.get('allow_egress') or [],
                                              check_mode=self.check_mode, name=params.get('policy') or containment.ISOLATION_POLICY_NAME)
        return {'changed': applied['changed'],
                'summary': 'Pods %s isolated by NetworkPolicy %s/%s (%s; held by %s)' % (
                    _selector(self.pod_selector), self.namespace, applied['name'], applied['operation'], ', '.join(applied['holders'])),
                'details': {'policy': applied['name'], 'operation': applied['operation'], 'holders': applied['holders'],
                            'namespace': self.namespace}}

    def _do_lift_isolation(self, params):
        lifted = containment.lift_isolation(self.kube, self.namespace, self.incident_id, check_mode=self.check_mode,
                                            name=params.get('policy') or containment.ISOLATION_POLICY_NAME)
        if lifted['operation'] == 'released':
            summary = ('Isolation hold of %s released; NetworkPolicy %s/%s stays: still held by %s'
                       % (self.incident_id, self.namespace, lifted['name'], ', '.join(lifted['holders'])))
        elif lifted['operation'] == 'deleted':
            summary = 'Isolation lifted: NetworkPolicy %s/%s deleted (no incident holds it any more)' % (self.namespace, lifted['name'])
        else:
            summary = 'No isolation hold of %s to lift' % self.incident_id
        return {'changed': lifted['changed'], 'summary': summary,
                'details': {'policy': lifted['name'], 'operation': lifted['operation'], 'holders': lifted['holders']}}

    def isolated(self, params=None):
        """The holders of the isolation policy ([] when there is none)."""
        return containment.holders(containment.get_policy(self.kube, self.namespace,
                                                          (params or {}).get('policy') or containment.ISOLATION_POLICY_NAME))

    # -- scale ----------------------------------------------------------------------------------------------
    def _do_scale_down(self, _params):
        if self.incident.get('category') != 'security':
            raise Blocked('blocked', 'scale_down blocked: only security incidents may take %s/%s below its minimum of %d '
                          'available replicas' % (self.namespace, self.name, self.settings.min_available), guard='min_available')
        current = self.deployment()
        self._evidence_gate('scale_down', [pod['metadata']['name'] for pod in self.pods()])
        seen = {}

        def edit(document):
            holds = self.holds(document)
            scale = holds.get('scale') or {}
            holders = set(scale.get('holders') or [])
            replicas = int((document.get('spec') or {}).get('replicas', 1))
            if not holders:
                scale['before'] = replicas
            seen.update(before=scale.get('before', replicas), others=sorted(holders - {self.incident_id}), replicas=replicas)
            if replicas > 0:
                self._before_change()
            holders.add(self.incident_id)
            scale['holders'] = sorted(holders)
            holds['scale'] = scale
            document['metadata'].setdefault('annotations', {})[HOLDS_ANNOTATION] = _dumps(holds)
            document['spec']['replicas'] = 0
        _document, changed = self._update_deployment(edit, guard=False)
        self._wait('scaled to 0', self._scaled_to_zero)
        revision = ((current.get('metadata') or {}).get('annotations') or {}).get(response.REVISION_ANNOTATION, '')
        others = seen.get('others') or []
        return {'changed': changed,
                'summary': 'Deployment %s/%s scaled from %s to 0 replicas%s' % (
                    self.namespace, self.name, seen.get('replicas'), ('; also held down by ' + ', '.join(others)) if others else ''),
                'details': {'previous_replicas': seen.get('replicas'), 'replicas_before_first_hold': seen.get('before'),
                            'held_with': others, 'revision': revision}}

    def _do_scale_restore(self, params):
        seen = {}

        def edit(document):
            holds = self.holds(document)
            scale = holds.get('scale') or {}
            holders = set(scale.get('holders') or [])
            seen.update(holders=sorted(holders), replicas=int((document.get('spec') or {}).get('replicas', 1)),
                        before=scale.get('before'))
            if self.incident_id not in holders and not (params.get('fallback_replicas') is not None and not holders
                                                        and seen['replicas'] == 0 and seen['before'] is None):
                return False
            holders.discard(self.incident_id)
            if holders:
                scale['holders'] = sorted(holders)
                holds['scale'] = scale
            else:
                holds.pop('scale', None)
                target = scale.get('before')
                if target is None:
                    target = params.get('fallback_replicas')
                if target is None:
                    raise Blocked('needs_person', 'scale_restore needs a person: the replica count of %s/%s from before the '
                                  'scale-down is not recorded; scale it by hand (kubectl -n %s scale deployment/%s --replicas=N)'
                                  % (self.namespace, self.name, self.namespace, self.name), guard='unknown_replicas')
                document['spec']['replicas'] = int(target)
                seen['target'] = int(target)
            annotations = document['metadata'].setdefault('annotations', {})
            if holds:
                annotations[HOLDS_ANNOTATION] = _dumps(holds)
            else:
                annotations.pop(HOLDS_ANNOTATION, None)
            seen['remaining'] = sorted(holders)
        _document, changed = self._update_deployment(edit)
        if seen.get('remaining'):
            return {'changed': changed, 'summary': 'Scale-down hold of %s released; %s/%s stays at %s replicas: still held by %s' % (
                    self.incident_id, self.namespace, self.name, seen['replicas'], ', '.join(seen['remaining'])),
                    'details': {'replicas': seen['replicas'], 'held_by': seen['remaining']}}
        if 'target' not in seen:
            return {'changed': False, 'summary': '%s holds no scale-down of %s/%s (%s replicas)' % (
                    self.incident_id, self.namespace, self.name, seen.get('replicas')),
                    'details': {'replicas': seen.get('replicas'), 'held_by': seen.get('holders', [])}}
        self._wait('available', self._available)
        return {'changed': changed, 'summary': 'Deployment %s/%s scaled back to %d replicas (the count before the first scale-down)'
                % (self.namespace, self.name, seen['target']), 'details': {'replicas': seen['target']}}

    # -- restarts ---------------------------------------------------------------------------------------------
    def _do_rollout_restart(self, params, action='rollout_restart'):
        current = self.deployment()
        reason = self._restart_guard(action, current)
        self._evidence_gate(action, [pod['metadata']['name'] for pod in self.pods()])
        stamp = params.get('restarted_at') or '%s-%s' % (self.incident_id, params.get('phase') or action)

        def edit(document):
            template = document['spec'].setdefault('template', {}).setdefault('metadata', {})
            template.setdefault('annotations', {})[RESTARTED_AT] = stamp
        _document, changed = self._update_deployment(edit)
        return {'changed': changed, 'summary': 'Rolling restart of %s/%s (%s)' % (self.namespace, self.name, reason),
                'details': {'guardrail': reason, 'restarted_at': stamp}}

    def _do_restart_deployment(self, params):
        return self._do_rollout_restart(params, 'restart_deployment')

    def _delete_pods(self, action, names):
        if names:
            self._before_change()
        for name in names:
            self.lease.check()
            if self.check_mode:
                continue
            try:
                self.kube.request_json('DELETE', core_path(self.namespace, 'pods', name))
            except KubernetesError as exc:
                if exc.status != 404:
                    raise
                self.notes.append('%s: pod %s was already gone' % (action, name))

    def _ready(self, pod):
        return any(c.get('type') == 'Ready' and c.get('status') == 'True' for c in (pod.get('status') or {}).get('conditions') or [])

    def _do_restart_pod(self, params):
        pods = sorted(self.pods(), key=lambda pod: pod['metadata'].get('creationTimestamp') or '')
        names = [pod['metadata']['name'] for pod in pods]
        named = [name for name in params.get('candidates') or [] if name in names]
        chosen = (named + names)[:1]
        if not chosen:
            raise Blocked('blocked', 'restart_pod blocked: no pod of the workload %s in %s' % (_selector(self.pod_selector), self.namespace),
                          guard='no_pod')
        ready = sum(1 for pod in pods if self._ready(pod))
        if self.incident.get('category') != 'security' and ready and ready - 1 < self.settings.min_available:
            raise Blocked('blocked', 'restart_pod blocked: %d ready pod(s) and a minimum of %d available' % (ready, self.settings.min_available),
                          guard='min_available', ready=ready)
        self._evidence_gate('restart_pod', chosen)
        self._delete_pods('restart_pod', chosen)
        return {'changed': True, 'summary': 'Pod %s restarted' % chosen[0], 'details': {'pod': chosen[0], 'ready_before': ready}}

    def _pods_to_delete(self, action, params):
        names = {pod['metadata']['name']: pod for pod in self.pods()}
        wanted = [name for name in params.get('pods') or [] if isinstance(name, str)]
        foreign = sorted(set(wanted) - set(names))
        if foreign:
            self.notes.append('%s: not pods of the workload in %s, left alone: %s' % (action, self.namespace, ', '.join(foreign)))
        return [name for name in wanted if name in names], names

    def _do_delete_infected_pods(self, params):
        chosen, pods = self._pods_to_delete('delete_infected_pods', params)
        if not chosen:
            return {'changed': False, 'summary': 'No pod of the workload was identified as infected', 'details': {'pods': []}}
        if self.incident.get('category') != 'security':
            ready = sum(1 for pod in pods.values() if self._ready(pod))
            remaining = sum(1 for name, pod in pods.items() if name not in chosen and self._ready(pod))
            if ready and remaining < self.settings.min_available:
                raise Blocked('blocked', 'delete_infected_pods blocked: %d ready pod(s) would remain, minimum %d'
                              % (remaining, self.settings.min_available), guard='min_available')
        self._evidence_gate('delete_infected_pods', chosen)
        self._delete_pods('delete_infected_pods', chosen)
        return {'changed': True, 'summary': 'Deleted infected pods: %s' % ', '.join(chosen), 'details': {'pods': chosen}}

    def _do_reschedule_from_failed_nodes(self, params):
        chosen, _pods = self._pods_to_delete('reschedule_from_failed_nodes', params)
        if not chosen:
            return {'changed': False, 'summary': 'No exporter pod runs on a failed node', 'details': {'pods': []}}
        # Pods on nodes that are not Ready serve nothing: deleting them cannot lower what is available.
        self._evidence_gate('reschedule_from_failed_nodes', chosen)
        self._delete_pods('reschedule_from_failed_nodes', chosen)
        return {'changed': True, 'summary': 'Deleted %d pod(s) on failed nodes so they are rescheduled: %s' % (len(chosen), ', '.join(chosen)),
                'details': {'pods': chosen, 'nodes': params.get('nodes') or []}}

    def _do_cleanup_evicted_pods(self, params):
        chosen, _pods = self._pods_to_delete('cleanup_evicted_pods', params)
        self._delete_pods('cleanup_evicted_pods', chosen)
        return {'changed': bool(chosen), 'summary': ('Removed %d evicted pod(s)' % len(chosen)) if chosen else 'No evicted pod to remove',
                'details': {'pods': chosen}}

    # -- pod template changes ------------------------------------------------------------------------------------
    def _container(self, document):
        for container in document['spec']['template']['spec'].get('containers') or []:
            if container.get('name') == self.container:
                return container
        raise IncidentResponseError('Deployment %s/%s has no container %s' % (self.namespace, self.name, self.container))

    def _template_guards(self, action, current):
        reason = self._restart_guard(action, current)
        if int((current.get('spec') or {}).get('replicas', 1)) > 0:
            self._evidence_gate(action, [pod['metadata']['name'] for pod in self.pods()])
        return reason

    def _do_raise_limits(self, params):
        current = self.deployment()
        factor = params.get('factor', self.settings.resource_factor)
        ceilings = params.get('ceilings') or self.settings.resource_ceilings
        container = self._container(current)
        limits = dict((container.get('resources') or {}).get('limits') or {})
        annotations = current['metadata'].get('annotations') or {}
        try:
            baseline = json.loads(annotations.get(LIMITS_BASELINE_ANNOTATION) or 'null')
        except ValueError:
            baseline = None
        fresh = baseline is None or not isinstance(baseline, dict) or (
            self.clock() - (parse_micro_time(baseline.get('at')) or self.clock())).total_seconds() > self.settings.resource_window
        if fresh:
            baseline = {'at': timeutil.format_ts(self.clock()), 'limits': limits}
        bounds = {}
        for resource, ceiling in ceilings.items():
            top = response.parse_quantity(ceiling, 'ceilings.%s' % resource)
            base = (baseline.get('limits') or {}).get(resource)
            if base is not None:
                top = min(top, response.parse_quantity(base, 'baseline.%s' % resource) * self.settings.resource_max_factor)
            bounds[resource] = response.format_quantity(top, resource) if resource in ('cpu', 'memory') else ceiling
        planned = response.raised_limits(container, factor, bounds)
        if not planned['changed']:
            raise Blocked('blocked', 'raise_limits blocked: the limits of %s are at their bound %s (ceilings %s, at most %sx the limits '
                          '%s from %s)' % (self.container, _dumps(bounds), _dumps(ceilings), self.settings.resource_max_factor,
                                           _dumps(baseline.get('limits')), baseline.get('at')),
                          guard='cumulative_bound', limits=limits, bounds=bounds, baseline=baseline)
        reason = self._template_guards('raise_limits', current)

        def edit(document):
            target = self._container(document)
            target.setdefault('resources', {})['limits'] = planned['limits']
            document['metadata'].setdefault('annotations', {})[LIMITS_BASELINE_ANNOTATION] = _dumps(baseline)
        _document, changed = self._update_deployment(edit)
        return {'changed': changed, 'summary': 'Limits of %s raised from %s to %s (bound %s; %s)' % (
                self.container, _dumps(planned['before']['limits']), _dumps(planned['limits']), _dumps(bounds), reason),
                'details': {'before': planned['before']['limits'], 'after': planned['limits'], 'at_ceiling': planned['capped'],
                            'bounds': bounds, 'baseline': baseline, 'guardrail': reason}}

    def _do_increase_logging(self, params):
        current = self.deployment()
        args = list(self._container(current).get('args') or [])
        level = params.get('level') or 'debug'
        wanted = [('--log-level=%s' % level) if arg.startswith('--log-level=') else arg for arg in args]
        if not any(arg.startswith('--log-level=') for arg in args):
            wanted.append('--log-level=%s' % level)
        holds = self.holds(current)
        logging = holds.get('logging') or {}
        if wanted == args and self.incident_id in (logging.get('holders') or []):
            return {'changed': False, 'summary': 'Exporter already logs at %s level' % level, 'details': {'args': args}}
        reason = self._template_guards('increase_logging', current) if wanted != args else 'arguments unchanged'

        def edit(document):
            doc_holds = self.holds(document)
            hold = doc_holds.get('logging') or {}
            holders = set(hold.get('holders') or [])
            target = self._container(document)
            if not holders:
                hold['before'] = list(target.get('args') or [])
            holders.add(self.incident_id)
            hold['holders'] = sorted(holders)
            doc_holds['logging'] = hold
            document['metadata'].setdefault('annotations', {})[HOLDS_ANNOTATION] = _dumps(doc_holds)
            if list(target.get('args') or []) != wanted:
                self._before_change()
            target['args'] = wanted
        _document, changed = self._update_deployment(edit, guard=False)
        return {'changed': changed, 'summary': 'Exporter switched to --log-level=%s (reverted at recovery; %s)' % (level, reason),
                'details': {'args': wanted, 'previous_args': args, 'guardrail': reason}}

    def _do_revert_logging(self, _params):
        current = self.deployment()
        hold = self.holds(current).get('logging') or {}
        holders = set(hold.get('holders') or [])
        if self.incident_id not in holders:
            return {'changed': False, 'result': 'skipped', 'summary': '%s turned on no debug logging to revert' % self.incident_id,
                    'details': {}}
        remaining = sorted(holders - {self.incident_id})
        before = hold.get('before')
        if not remaining and before is not None and list(self._container(current).get('args') or []) != before:
            self._restart_guard('revert_logging', current)
        seen = {}

        def edit(document):
            doc_holds = self.holds(document)
            doc_hold = doc_holds.get('logging') or {}
            doc_holders = set(doc_hold.get('holders') or []) - {self.incident_id}
            annotations = document['metadata'].setdefault('annotations', {})
            if doc_holders:
                doc_hold['holders'] = sorted(doc_holders)
                doc_holds['logging'] = doc_hold
            else:
                doc_holds.pop('logging', None)
                if doc_hold.get('before') is not None:
                    self._container(document)['args'] = list(doc_hold['before'])
                    seen['args'] = list(doc_hold['before'])
            if doc_holds:
                annotations[HOLDS_ANNOTATION] = _dumps(doc_holds)
            else:
                annotations.pop(HOLDS_ANNOTATION, None)
            seen['remaining'] = sorted(doc_holders)
        _document, changed = self._update_deployment(edit)
        if seen.get('remaining'):
            summary = 'Debug logging kept: still wanted by %s (hold of %s released)' % (', '.join(seen['remaining']), self.incident_id)
        else:
            summary = 'Debug logging turned on by the response reverted: arguments back to %s' % _dumps(seen.get('args'))
        return {'changed': changed, 'summary': summary, 'details': {'args': seen.get('args'), 'held_by': seen.get('remaining')}}

    def _do_restore_known_good(self, params):
        template = params.get('template')
        if not isinstance(template, dict) or not template.get('spec'):
            raise ValidationError('restore_known_good: params.template must be the known-good pod template (from known_good_revision)')
        current = self.deployment()
        if current['spec'].get('template') == template:
            return {'changed': False, 'summary': 'Deployment already at the known-good revision %s' % params.get('revision', ''),
                    'details': {'revision': params.get('revision'), 'replicaset': params.get('replicaset')}}
        reason = self._template_guards('restore_known_good', current)

        def edit(document):
            document['spec']['template'] = copy.deepcopy(template)
        _document, changed = self._update_deployment(edit)
        return {'changed': changed, 'summary': 'Deployment rolled back from revision %s to known-good revision %s (%s)' % (
                params.get('current', '?'), params.get('revision', '?'), reason),
                'details': {'revision': params.get('revision'), 'replaced_revision': params.get('current'),
                            'replicaset': params.get('replicaset'), 'guardrail': reason}}

    def _do_rollback_if_unavailable(self, _params):
        current = self.deployment()
        status, spec = current.get('status') or {}, current.get('spec') or {}
        wanted = min(self.settings.min_available, int(spec.get('replicas', 1)))
        if int(status.get('availableReplicas') or 0) >= wanted:
            return {'changed': False, 'summary': '%s is available; no rollback needed' % self.name,
                    'details': {'rolled_back': False, 'available': int(status.get('availableReplicas') or 0)}}
        document, _source = self.kube.get_json(group_path(DEPLOYMENTS, self.namespace, 'replicasets'),
                                               {'labelSelector': _selector(self.pod_selector)})
        owned = [rs for rs in document.get('items') or []
                 if any(ref.get('kind') == 'Deployment' and ref.get('name') == self.name
                        for ref in rs.get('metadata', {}).get('ownerReferences') or [])]
        revision = int((current['metadata'].get('annotations') or {}).get(response.REVISION_ANNOTATION, '0') or 0)
        older = [rs for rs in owned if 0 < int((rs['metadata'].get('annotations') or {}).get(response.REVISION_ANNOTATION, '0') or 0) < revision]
        if not older:
            raise Blocked('needs_person', 'rollback_if_unavailable needs a person: %s is unavailable and has no revision older than %s '
                          'to roll back to' % (self.name, revision), guard='no_previous_revision')
        previous = max(older, key=lambda rs: int(rs['metadata']['annotations'][response.REVISION_ANNOTATION]))
        template = copy.deepcopy(previous['spec']['template'])
        template.get('metadata', {}).get('labels', {}).pop(response.HASH_LABEL, None)
        reason = self._template_guards('rollback_if_unavailable', current)

        def edit(doc):
            doc['spec']['template'] = template
        _doc, changed = self._update_deployment(edit)
        available = self._wait('available', self._available)
        return {'changed': changed, 'summary': 'Still unavailable after the restart: rolled back %s from revision %d to %s (%s)' % (
                self.name, revision, previous['metadata']['annotations'][response.REVISION_ANNOTATION], reason),
                'details': {'rolled_back': True, 'from_revision': revision,
                            'to_revision': previous['metadata']['annotations'][response.REVISION_ANNOTATION],
                            'available': int(((available or {}).get('status') or {}).get('availableReplicas') or 0)}}

    # -- Secrets, ConfigMaps, NetworkPolicies ------------------------------------------------------------------------
    def _write_secret(self, action, params, secret_data):
        name = params.get('name')
        validate_name(name, 'params.name')
        if not isinstance(secret_data, dict) or not secret_data or not all(isinstance(v, str) for v in secret_data.values()):
            raise ValidationError('%s: secret_data must be a non-empty mapping of keys to base64 values' % action)
        path = core_path(self.namespace, 'secrets', name)
        try:
            existing, _source = self.kube.get_json(path)
        except KubernetesError as exc:
            if exc.status != 404:
                raise
            existing = None
        replace = bool(params.get('replace'))
        if existing is not None and not replace and all((existing.get('data') or {}).get(k) == v for k, v in secret_data.items()):
            return {'changed': False, 'summary': 'Secret %s/%s already holds the new values' % (self.namespace, name),
                    'details': {'secret': name, 'keys': sorted(secret_data)}}
        self._before_change()
        if not self.check_mode:
            self.lease.check()
            annotations = {ROTATED_BY: self.incident_id}
            if existing is None or replace:
                body = {'apiVersion': 'v1', 'kind': 'Secret', 'type': params.get('type') or 'Opaque',
                        'metadata': {'name': name, 'namespace': self.namespace, 'labels': dict(params.get('labels') or {}),
                                     'annotations': annotations},
                        'data': dict(secret_data)}
                if existing is None:
                    self.kube.request_json('POST', core_path(self.namespace, 'secrets'), body)
                else:
                    if existing.get('type') and existing['type'] != body['type']:
                        raise IncidentResponseError('Secret %s/%s has type %s, not %s: it cannot be replaced in place'
                                                    % (self.namespace, name, existing['type'], body['type']))
                    body['metadata']['resourceVersion'] = existing['metadata'].get('resourceVersion')
                    kept = dict((existing.get('metadata') or {}).get('annotations') or {})
                    kept.update(annotations)
                    body['metadata']['annotations'] = kept
                    self.kube.request_json('PUT', path, body)
            else:
                self.kube.request_json('PATCH', path, {'metadata': {'annotations': annotations}, 'data': dict(secret_data)})
        return {'changed': True, 'summary': 'Secret %s/%s %s' % (self.namespace, name, 'created' if existing is None else 'updated'),
                'details': {'secret': name, 'keys': sorted(secret_data)}}

    def _do_rotate_credentials(self, params, secret_data=None):
        outcome = self._write_secret('rotate_credentials', params, secret_data)
        outcome['summary'] = 'JWT in Secret %s/%s rotated (%s)' % (self.namespace, params['name'], params.get('source') or 'new token')
        outcome['details']['source'] = params.get('source')
        return outcome

    def _do_rotate_tls(self, params, secret_data=None):
        params = dict(params, replace=True, type='kubernetes.io/tls')
        outcome = self._write_secret('rotate_tls', params, secret_data)
        outcome['summary'] = 'TLS Secret %s/%s replaced with a new key and certificate (%s)' % (
            self.namespace, params['name'], params.get('issuer') or 'self-signed')
        outcome['details'].update(issuer=params.get('issuer'), valid_days=params.get('valid_days'))
        return outcome

    def _do_restore_configmap(self, params):
        source_name, target_name = params.get('source'), params.get('name')
        validate_name(source_name, 'params.source')
        validate_name(target_name, 'params.name')
        try:
            source, _src = self.kube.get_json(core_path(self.namespace, 'configmaps', source_name))
        except KubernetesError as exc:
            if exc.status == 404:
                raise Blocked('needs_person', 'restore_configmap needs a person: the known-good copy %s/%s does not exist'
                              % (self.namespace, source_name), guard='no_known_good') from None
            raise
        path = core_path(self.namespace, 'configmaps', target_name)
        try:
            target, _src = self.kube.get_json(path)
        except KubernetesError as exc:
            if exc.status != 404:
                raise
            target = None
        data, binary = source.get('data') or {}, source.get('binaryData') or {}
        if target is not None and (target.get('data') or {}) == data and (target.get('binaryData') or {}) == binary:
            return {'changed': False, 'summary': 'ConfigMap %s already matches %s' % (target_name, source_name),
                    'details': {'configmap': target_name, 'from': source_name}}
        self._before_change()
        if not self.check_mode:
            self.lease.check()
            body = {'apiVersion': 'v1', 'kind': 'ConfigMap',
                    'metadata': {'name': target_name, 'namespace': self.namespace,
                                 'labels': dict((target or source).get('metadata', {}).get('labels') or {}),
                                 'annotations': {'incident-response/restored-by': self.incident_id,
                                                 'incident-response/restored-from': source_name}},
                    'data': data}
            if binary:
                body['binaryData'] = binary
            if target is None:
                self.kube.request_json('POST', core_path(self.namespace, 'configmaps'), body)
            else:
                body['metadata']['resourceVersion'] = target['metadata'].get('resourceVersion')
                self.kube.request_json('PUT', path, body)
        return {'changed': True, 'summary': 'ConfigMap %s restored from %s (%d keys)' % (target_name, source_name, len(data) + len(binary)),
                'details': {'configmap': target_name, 'from': source_name, 'keys': sorted(list(data) + list(binary))}}

    def _do_restore_network_policy(self, params):
        policy = params.get('policy')
        if not isinstance(policy, dict) or policy.get('kind') != 'NetworkPolicy' or not isinstance(policy.get('spec'), dict):
            raise ValidationError('restore_network_policy: params.policy must be a NetworkPolicy manifest')
        name = (policy.get('metadata') or {}).get('name')
        validate_name(name, 'params.policy.metadata.name')
        if name == containment.ISOLATION_POLICY_NAME:
            raise ValidationError('restore_network_policy: %s is the isolation policy; use isolate_pods / lift_isolation' % name)
        path = group_path(containment.API_VERSION, self.namespace, 'networkpolicies', name)
        try:
            existing, _src = self.kube.get_json(path)
        except KubernetesError as exc:
            if exc.status != 404:
                raise
            existing = None
        if existing is not None and existing.get('spec') == policy['spec']:
            return {'changed': False, 'summary': 'NetworkPolicy %s already as known good' % name, 'details': {'policy': name}}
        self._before_change()
        if not self.check_mode:
            self.lease.check()
            body = {'apiVersion': containment.API_VERSION, 'kind': 'NetworkPolicy',
                    'metadata': {'name': name, 'namespace': self.namespace,
                                 'labels': dict((policy.get('metadata') or {}).get('labels') or {}),
                                 'annotations': dict((policy.get('metadata') or {}).get('annotations') or {},
                                                     **{'incident-response/restored-by': self.incident_id})},
                    'spec': copy.deepcopy(policy['spec'])}
            if existing is None:
                self.kube.request_json('POST', group_path(containment.API_VERSION, self.namespace, 'networkpolicies'), body)
            else:
                body['metadata']['resourceVersion'] = existing['metadata'].get('resourceVersion')
                self.kube.request_json('PUT', path, body)
        return {'changed': True, 'summary': 'NetworkPolicy %s %s from the known-good manifest' % (name, 'created' if existing is None else 'restored'),
                'details': {'policy': name}}

    # -- compensation -------------------------------------------------------------------------------------------------
    def to_compensate(self):
        """The incident's successful actions that declare a compensation and were not undone yet."""
        actions = self.incident.get('actions') or []
        pending = []
        for name, policy in sorted(POLICIES.items()):
            done = [item for item in actions if item.get('name') == name]
            undone = [item for item in actions if item.get('name') == policy.compensation]
            if policy.compensation and done and done[-1].get('result') == 'success' and (
                    not undone or undone[-1].get('result') != 'success'):
                pending.append(name)
        isolated = [item for item in actions if item.get('name') == 'isolate_pods']
        if isolated and isolated[-1].get('result') == 'success':
            pending.append('isolate_pods')
        return pending

    def _do_compensate(self, params):
        """Undo what the incident's failed response left behind, as each action declares; isolation stays by design."""
        actions = self.incident.get('actions') or []

        def last(name):
            found = [item for item in actions if item.get('name') == name]
            return found[-1] if found else None

        steps = []
        changed = False
        logging = last('increase_logging')
        if logging and logging.get('result') == 'success' and (last('revert_logging') or {}).get('result') != 'success':
            outcome = self._do_revert_logging({})
            steps.append({'action': 'increase_logging', 'compensation': 'revert_logging', 'summary': outcome['summary']})
            changed = changed or outcome['changed']
        scaled = last('scale_down')
        if scaled and scaled.get('result') == 'success' and (last('scale_restore') or {}).get('result') != 'success':
            holders = self.isolated(params)
            if holders:
                steps.append({'action': 'scale_down', 'compensation': 'none: the pods stay isolated',
                              'summary': '%s/%s left at 0 replicas: isolated by NetworkPolicy %s (held by %s); a person restores it'
                                         % (self.namespace, self.name, containment.ISOLATION_POLICY_NAME, ', '.join(holders))})
            else:
                outcome = self._do_scale_restore({'fallback_replicas': (scaled.get('details') or {}).get('previous_replicas')})
                steps.append({'action': 'scale_down', 'compensation': 'scale_restore', 'summary': outcome['summary']})
                changed = changed or outcome['changed']
        isolated = last('isolate_pods')
        if isolated and isolated.get('result') == 'success' and (last('lift_isolation') or {}).get('result') != 'success':
            steps.append({'action': 'isolate_pods', 'compensation': 'none: isolation stays until a person lifts it',
                          'summary': 'Pods stay isolated (NetworkPolicy %s/%s, hold of %s kept)'
                                     % (self.namespace, containment.ISOLATION_POLICY_NAME, self.incident_id)})
        summary = '; '.join(step['summary'] for step in steps) if steps else 'nothing to compensate'
        return {'changed': changed, 'summary': 'Compensation: ' + summary, 'details': {'compensation': steps}}
