# -*- coding: utf-8 -*-
# Copyright: contributors to slurm_exporter.incident_response
# GNU General Public License v3.0+ (see COPYING or https://www.gnu.org/licenses/gpl-3.0.txt)
# SPDX-License-Identifier: GPL-3.0-or-later
"""The defaults a real API server fills in on every write of a workload (apps/v1 and core/v1 defaulting).

Only the fields the collection reads or compares: Deployment replicas, strategy, revision history and progress
deadline; ReplicaSet replicas; and, in every pod spec (Pod, and the templates of Deployment and ReplicaSet), the
restart, DNS and scheduler policies, the grace period, and per container the image pull policy (``Always`` for
``:latest`` or an untagged image, else ``IfNotPresent``), the termination message settings, port protocols and probe
timings. tests/realkube/test_emulator_parity.py runs the same creation on the real server.
"""

from __future__ import annotations

PROBE_DEFAULTS = {'timeoutSeconds': 1, 'periodSeconds': 10, 'successThreshold': 1, 'failureThreshold': 3}


def apply(kind, obj):
    """Fill in the defaults of ``obj`` (a Deployment, ReplicaSet or Pod) in place."""
    spec = obj.get('spec')
    if not isinstance(spec, dict):
        return obj
    if kind == 'Deployment':
        spec.setdefault('replicas', 1)
        strategy = spec.setdefault('strategy', {})
        strategy.setdefault('type', 'RollingUpdate')
        if strategy['type'] == 'RollingUpdate':
            rolling = strategy.setdefault('rollingUpdate', {})
            rolling.setdefault('maxUnavailable', '25%')
            rolling.setdefault('maxSurge', '25%')
        spec.setdefault('revisionHistoryLimit', 10)
        spec.setdefault('progressDeadlineSeconds', 600)
    elif kind == 'ReplicaSet':
        spec.setdefault('replicas', 1)
    if kind in ('Deployment', 'ReplicaSet'):
        template = spec.get('template')
        if isinstance(template, dict) and isinstance(template.get('spec'), dict):
            pod_spec(template['spec'])
    elif kind == 'Pod':
        pod_spec(spec)
    return obj


def pod_spec(spec):
    spec.setdefault('restartPolicy', 'Always')
    spec.setdefault('terminationGracePeriodSeconds', 30)
    spec.setdefault('dnsPolicy', 'ClusterFirst')
    spec.setdefault('securityContext', {})
    spec.setdefault('schedulerName', 'default-scheduler')
    for container in (spec.get('containers') or []) + (spec.get('initContainers') or []):
        if isinstance(container, dict):
            _container(container)


def _container(container):
    image = str(container.get('image') or '')
    tag = image.rsplit('/', 1)[-1]
    untagged = ':' not in tag and '@' not in image
    container.setdefault('imagePullPolicy', 'Always' if untagged or tag.endswith(':latest') else 'IfNotPresent')
    container.setdefault('terminationMessagePath', '/dev/termination-log')
    container.setdefault('terminationMessagePolicy', 'File')
    container.setdefault('resources', {})
    for port in container.get('ports') or []:
        if isinstance(port, dict):
            port.setdefault('protocol', 'TCP')
    for probe_name in ('livenessProbe', 'readinessProbe', 'startupProbe'):
        probe = container.get(probe_name)
        if isinstance(probe, dict):
            for key, value in PROBE_DEFAULTS.items():
                probe.setdefault(key, value)
            if isinstance(probe.get('httpGet'), dict):
                probe['httpGet'].setdefault('scheme', 'HTTP')
