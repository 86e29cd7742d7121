# -*- coding: utf-8 -*-
# Copyright: contributors to slurm_exporter.incident_response
# GNU General Public License v3.0+ (see COPYING or https://www.gnu.org/licenses/gpl-3.0.txt)
# SPDX-License-Identifier: GPL-3.0-or-later
"""Disaster recovery from the upstream manifests, run for real against the emulated cluster.

- Every upstream manifest as the backup: the VerticalPodAutoscaler declared ``autoscaling/v2`` (which no API
  server serves) is skipped and named, the rest is restored.
- Documents the API server refuses: each one named with the server's status, reason and message in the
  incident's action details and timeline; a Secret's refusal without its message; no secret value in the
  output, the record, the report or the notifications.
- Check mode: no write request of any kind (not even ``dryRun=All``), and the plan says what it would apply.
"""

from __future__ import annotations

import base64
import glob
import json
import os

from tests.fakes.endpoints import Endpoints
from tests.integration.test_response_playbooks import FIXTURES, NS, Responder, actions, alert_payload, as_backed_up, assert_scoped, assert_succeeded

PLANTED = 'planted-restore-secret-7d1e0c'  # the backup's JWT: must never leave the Secret
PLANTED_B64 = base64.b64encode(PLANTED.encode()).decode()
WEBHOOK_QUOTE = 'admission webhook "secrets.policy.example.com" denied the request: jwt-token %s is on the leaked-key list' % PLANTED_B64


def upstream_backup(tmp_path, extra=None):
    """Every upstream manifest (*.yaml.upstream) as a backup holds it (``as_backed_up``), the Secret's empty jwt-token replaced by PLANTED."""
    directory = tmp_path / 'backup'
    directory.mkdir()
    for path in sorted(glob.glob(os.path.join(FIXTURES, '*.yaml.upstream'))):
        with open(path, encoding='utf-8') as handle:
            (directory / os.path.basename(path).replace('.upstream', '')).write_text(as_backed_up(handle.read()))
    secrets = directory / 'secrets.yaml'
    text = secrets.read_text()
    assert 'jwt-token: ""' in text
    secrets.write_text(text.replace('jwt-token: ""', 'jwt-token: "%s"' % PLANTED_B64, 1))
    for name, content in (extra or {}).items():
        (directory / name).write_text(content)
    return str(directory)


def wipe(responder):
    """The disaster: the workload, its Service, configuration, HPA and PDB are gone."""
    for path in ('/apis/apps/v1/namespaces/%s/deployments/slurm-exporter', '/api/v1/namespaces/%s/services/slurm-exporter',
                 '/api/v1/namespaces/%s/configmaps/slurm-exporter-config', '/api/v1/namespaces/%s/secrets/slurm-credentials',
                 '/apis/autoscaling/v2/namespaces/%s/horizontalpodautoscalers/slurm-exporter',
                 '/apis/policy/v1/namespaces/%s/poddisruptionbudgets/slurm-exporter'):
        responder.api('DELETE', path % NS)


def everything_written(run, responder):
    """The run's output and every file of the store (record, report, notifications, audit log)."""
    texts = [run.stdout, run.stderr]
    for path in glob.glob(os.path.join(responder.store, '**', '*'), recursive=True):
        if os.path.isfile(path):
            with open(path, 'rb') as handle:
                texts.append(handle.read().decode('utf-8', 'replace'))
    return '\n'.join(texts)


def test_upstream_manifests_restore_all_but_the_unserved_vpa(kube, tmp_path):
    responder = Responder(kube, tmp_path)
    wipe(responder)
    kube.clear_requests()
    exporter = Endpoints()  # the restored exporter's /health answers 200: the recovery is verified, the incident resolved
    try:
        run = responder.run('disaster_recovery', alert_payload('cluster_failure', 'c7b2c3d4e5f60001'),
                            extra={'incident_backup_dir': upstream_backup(tmp_path), 'incident_exporter_health_url': exporter.url + '/health'})
    finally:
        exporter.stop()
    assert_succeeded(run)
    assert responder.deployment()['status']['availableReplicas'] == 3
    for api_version, kind, name in (('v1', 'Service', 'slurm-exporter'), ('v1', 'ConfigMap', 'slurm-exporter-config'),
                                    ('autoscaling/v2', 'HorizontalPodAutoscaler', 'slurm-exporter'),
                                    ('policy/v1', 'PodDisruptionBudget', 'slurm-exporter'), ('v1', 'ResourceQuota', 'slurm-exporter-quota')):
        assert kube.get(api_version, kind, NS, name) is not None, (kind, name)
    secret = kube.get('v1', 'Secret', NS, 'slurm-credentials')
    assert secret['data']['jwt-token'] == PLANTED_B64
    record = responder.record()
    assert record['status'] == 'resolved'
    action = actions(record)[('restore_namespace', 'recovery')]
    details = action['details']
    # The VPA: skipped, named, and where the server does serve its kind.
    assert [entry['object'] for entry in details['skipped_unserved']] == ['VerticalPodAutoscaler/slurm-exporter']
    assert details['skipped_unserved'][0]['apiVersion'] == 'autoscaling/v2'
    assert details['skipped_unserved'][0]['served_as'] == ['autoscaling.k8s.io/v1']
    assert 'VerticalPodAutoscaler/slurm-exporter' not in details['objects'] and details['failed'] == []
    assert not [entry for entry in kube.writes() if entry['resource'] == 'verticalpodautoscalers']
    summary = [entry['message'] for entry in record['timeline'] if entry.get('message', '').startswith('Namespace %s restored' % NS)]
    assert len(summary) == 1 and 'not served by the API server: VerticalPodAutoscaler/slurm-exporter (the API server serves no ' \
        'VerticalPodAutoscaler in autoscaling/v2' in summary[0], summary
    # Cluster-scoped and RBAC objects: listed for an administrator, never written.
    assert {'Namespace/slurm-exporter', 'ClusterRole/slurm-exporter', 'Role/slurm-exporter'} <= set(details['skipped_cluster_scoped'])
    assert_scoped(kube)
    assert PLANTED not in everything_written(run, responder) and PLANTED_B64 not in everything_written(run, responder)


BAD_CONFIGMAP = 'apiVersion: v1\nkind: ConfigMap\nmetadata:\n  name: Exporter_Overrides\ndata:\n  level: debug\n'


def test_refused_documents_are_named_with_the_servers_reason(kube, tmp_path):
    responder = Responder(kube, tmp_path)
    # The backup holds an invalid object, and an admission webhook refuses the restored Secret quoting its value.
    webhook = kube.add_fault('PATCH', r'/namespaces/%s/secrets/slurm-credentials$' % NS, status=403, reason='Forbidden', message=WEBHOOK_QUOTE)
    kube.clear_requests()
    run = responder.run('disaster_recovery', alert_payload('cluster_failure', 'c7b2c3d4e5f60002'),
                        extra={'incident_backup_dir': upstream_backup(tmp_path, {'zz-overrides.yaml': BAD_CONFIGMAP})})
    assert run.rc != 0 and webhook.hits == 1
    record = responder.record()
    assert record['status'] != 'resolved'
    action = actions(record)[('restore_namespace', 'recovery')]
    assert action['result'] == 'failed'
    error = action['details']['error']
    timeline = [entry['message'] for entry in record['timeline'] if entry.get('message', '').startswith('restore_namespace failed')]
    assert len(timeline) == 1
    for text in (error, timeline[0].replace('restore_namespace failed: ', '', 1)):
        assert text.startswith('2 of ') and 'object(s) not restored into %s: ' % NS in text
        assert 'ConfigMap/Exporter_Overrides (422 Invalid), Secret/slurm-credentials (403 Forbidden).' in text
    # The API server's message for the ConfigMap; none for the Secret.
    assert 'ConfigMap/Exporter_Overrides: 422 Invalid: ConfigMap "Exporter_Overrides" is invalid: metadata.name: Invalid value' in error
    assert 'Secret/slurm-credentials: 403 Forbidden (message withheld (Secret))' in error
    # The other objects were restored all the same.
    assert kube.get('v1', 'ConfigMap', NS, 'slurm-exporter-env')['data']['environment'] == 'production'
    assert kube.get('v1', 'Secret', NS, 'slurm-exporter-tls') is not None
    # The notification that automation stopped names them too; no secret value anywhere.
    assert any('Secret/slurm-credentials' in json.dumps(message) for message in responder.outbox())
    written = everything_written(run, responder)
    assert 'Exporter_Overrides' in written
    assert PLANTED not in written and PLANTED_B64 not in written and 'leaked-key list' not in written
    assert_scoped(kube)


def test_check_mode_sends_no_write_request_and_says_what_it_would_apply(kube, tmp_path):
    responder = Responder(kube, tmp_path)
    wipe(responder)
    kube.clear_requests()
    run = responder.run('disaster_recovery', alert_payload('cluster_failure', 'c7b2c3d4e5f60003'), check=True,
                        extra={'incident_backup_dir': upstream_backup(tmp_path)})
    assert_succeeded(run)
    # Not a single write, not even a server-side dry run.
    assert kube.writes() == []
    assert [(entry['method'], entry['path']) for entry in kube.requests if entry['method'] not in ('GET', 'HEAD')] == []
    assert not [entry for entry in kube.requests if entry['dry_run']]
    assert responder.deployment() is None
    # The plan says what it would apply and skip (the record itself is only planned in check mode: not on disk).
    details = run.result('slurm_exporter.incident_response.response : Restore namespace - outcome')['ansible_facts']['_action_details']
    assert details['dry_run'] is True and details['changed'] == [] and details['failed'] == []
    assert {'Deployment/slurm-exporter', 'Secret/slurm-credentials', 'HorizontalPodAutoscaler/slurm-exporter'} <= set(details['objects'])
    assert [entry['object'] for entry in details['skipped_unserved']] == ['VerticalPodAutoscaler/slurm-exporter']
    summary = run.result('slurm_exporter.incident_response.response : Restore namespace - outcome')['ansible_facts']['_action_summary']
    assert summary.startswith('Check mode, nothing written: would apply %d object(s) to namespace %s' % (len(details['objects']), NS))
    assert PLANTED not in run.stdout + run.stderr and PLANTED_B64 not in run.stdout + run.stderr
