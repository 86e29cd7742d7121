# -*- coding: utf-8 -*-
# Copyright: contributors to slurm_exporter.incident_response
# GNU General Public License v3.0+ (see COPYING or https://www.gnu.org/licenses/gpl-3.0.txt)
# SPDX-License-Identifier: GPL-3.0-or-later
"""The Kubernetes API emulator, reached over HTTP by kubernetes.core modules and the kubernetes client."""

from __future__ import annotations

import filecmp
import json
import os
import subprocess
import sys
import time

import pytest

from tests.conftest import REPO_ROOT, run_playbook, write_playbook

pytestmark = pytest.mark.integration

NS = 'slurm-exporter'
POLICY = {
    'apiVersion': 'networking.k8s.io/v1', 'kind': 'NetworkPolicy',
    'metadata': {'name': 'incident-isolation', 'namespace': NS, 'labels': {'app.kubernetes.io/managed-by': 'incident-response'}},
    'spec': {'podSelector': {'matchLabels': {'app': 'slurm-exporter'}}, 'policyTypes': ['Ingress', 'Egress']},
}


def env(kube):
    return {'K8S_AUTH_KUBECONFIG': kube.kubeconfig}


def test_fixtures_are_the_reference_manifests():
    reference = os.path.join(os.path.dirname(REPO_ROOT), 'shared', 'reference', 'slurm-exporter', 'kubernetes-ha')
    if not os.path.isdir(reference):
        pytest.skip('../shared/reference is not beside this checkout')
    bundled = os.path.join(REPO_ROOT, 'tests', 'fixtures', 'slurm-exporter', 'kubernetes-ha')
    names = sorted(os.listdir(reference))
    assert sorted(os.listdir(bundled)) == [name + '.upstream' for name in names]
    for name in names:
        assert filecmp.cmp(os.path.join(reference, name), os.path.join(bundled, name + '.upstream'), shallow=False), name


def test_kubernetes_core_modules_against_the_emulator(kube, tmp_path):
    first = min(pod['metadata']['name'] for pod in kube.list('v1', 'Pod', NS))
    kube.set_pod_log(NS, first, 'slurm-exporter', '{"level":"error","msg":"authentication failed"}\nsecond line\n')
    config_map = {'apiVersion': 'v1', 'kind': 'ConfigMap', 'metadata': {'name': 'incident-marker', 'namespace': NS}, 'data': {'a': '1'}}
    tasks = [
        {'name': 'exact log', 'kubernetes.core.k8s_log': {'namespace': NS, 'name': first, 'container': 'slurm-exporter'}},
        {'name': 'apply', 'kubernetes.core.k8s': {'definition': config_map, 'apply': True}},
        {'name': 'apply again', 'kubernetes.core.k8s': {'definition': config_map, 'apply': True}},
        {'name': 'server-side apply', 'kubernetes.core.k8s': {
            'definition': dict(config_map, data={'a': '2'}), 'apply': True, 'server_side_apply': {'field_manager': 'incident-response'}}},
        {'name': 'pods', 'kubernetes.core.k8s_info': {'kind': 'Pod', 'namespace': NS, 'label_selectors': ['app=slurm-exporter']}},
        {'name': 'namespace', 'kubernetes.core.k8s_info': {'kind': 'Namespace', 'name': NS}},
        {'name': 'isolate', 'kubernetes.core.k8s': {'definition': POLICY}},
        {'name': 'isolate again', 'kubernetes.core.k8s': {'definition': POLICY}},
        {'name': 'log', 'kubernetes.core.k8s_log': {
            'namespace': NS, 'label_selectors': ['app=slurm-exporter'], 'container': 'slurm-exporter'}},
        {'name': 'scale down', 'kubernetes.core.k8s_scale': {
            'kind': 'Deployment', 'name': 'slurm-exporter', 'namespace': NS, 'replicas': 1, 'wait': True, 'wait_timeout': 30,
            'wait_sleep': 1}},
        {'name': 'restart', 'kubernetes.core.k8s': {
            'kind': 'Deployment', 'name': 'slurm-exporter', 'namespace': NS, 'state': 'patched', 'wait': True, 'wait_timeout': 30,
            'wait_sleep': 1,
            'definition': {'spec': {'template': {'metadata': {'annotations': {'kubectl.kubernetes.io/restartedAt': '2026-01-31T12:00:00Z'}}}}}}},
        {'name': 'rollback', 'kubernetes.core.k8s_rollback': {
            'api_version': 'apps/v1', 'kind': 'Deployment', 'name': 'slurm-exporter', 'namespace': NS}},
    ]
    run = run_playbook(write_playbook(tmp_path, tasks), env=env(kube))
    assert run.rc == 0, run
    assert run.result('exact log')['log'] == '{"level":"error","msg":"authentication failed"}\nsecond line\n'
    assert run.result('apply')['changed'] is True and run.result('apply again')['changed'] is False
    assert kube.get('v1', 'ConfigMap', NS, 'incident-marker')['data'] == {'a': '2'}
    pods = run.result('pods')['resources']
    assert len(pods) == 3 and all(pod['status']['phase'] == 'Running' for pod in pods)
    assert run.result('namespace')['resources'][0]['metadata']['name'] == NS
    assert run.result('isolate')['changed'] is True
    assert run.result('isolate again')['changed'] is False
    assert kube.get('networking.k8s.io/v1', 'NetworkPolicy', NS, 'incident-isolation')['spec']['policyTypes'] == ['Ingress', 'Egress']
    assert '"msg": "collection completed"' in run.result('log')['log']
    assert len(kube.list('v1', 'Pod', NS, 'app=slurm-exporter')) == 1
    deployment = kube.get('apps/v1', 'Deployment', NS, 'slurm-exporter')
    assert 'kubectl.kubernetes.io/restartedAt' not in deployment['spec']['template']['metadata'].get('annotations', {})
    assert deployment['metadata']['annotations']['deployment.kubernetes.io/revision'] == '3'
    replicasets = kube.list('apps/v1', 'ReplicaSet', NS)
    assert len(replicasets) == 2 and sorted(rs['spec']['replicas'] for rs in replicasets) == [0, 1]
    writes = {(entry['verb'], entry['resource'], entry['subresource']) for entry in kube.writes()}
    assert ('create', 'networkpolicies', None) in writes and ('patch', 'deployments', 'scale') in writes
    assert all(entry['namespace'] == NS for entry in kube.writes())


def test_check_mode_makes_no_write_request(kube, tmp_path):
    tasks = [
        {'name': 'isolate', 'kubernetes.core.k8s': {'definition': POLICY}},
        {'name': 'scale', 'kubernetes.core.k8s_scale': {'kind': 'Deployment', 'name': 'slurm-exporter', 'namespace': NS, 'replicas': 0}},
        {'name': 'delete secret', 'kubernetes.core.k8s': {'kind': 'Secret', 'name': 'slurm-credentials', 'namespace': NS, 'state': 'absent'}},
    ]
    kube.clear_requests()
    run = run_playbook(write_playbook(tmp_path, tasks), env=env(kube), check=True)
    assert run.rc == 0, run
    assert run.result('isolate')['changed'] and run.result('scale')['changed'] and run.result('delete secret')['changed']
    assert kube.requests, 'the modules reached the emulator'
    assert kube.writes() == []
    assert kube.get('v1', 'Secret', NS, 'slurm-credentials') is not None


def test_unhealthy_rollout_times_out(kube, tmp_path):
    kube.set_unhealthy(NS, 'slurm-exporter')
    tasks = [{'name': 'wait', 'ignore_errors': True, 'kubernetes.core.k8s_info': {
        'kind': 'Deployment', 'name': 'slurm-exporter', 'namespace': NS, 'wait': True, 'wait_timeout': 3, 'wait_sleep': 1}}]
    run = run_playbook(write_playbook(tmp_path, tasks), env=env(kube))
    assert run.result('wait').get('failed'), run


def test_client_selectors_conflicts_dry_run_and_faults(kube):
    from kubernetes import client, config  # pylint: disable=import-outside-toplevel

    api_client = config.new_client_from_config(config_file=kube.kubeconfig)
    core = client.CoreV1Api(api_client)
    apps = client.AppsV1Api(api_client)
    assert len(core.list_namespaced_pod(NS, label_selector='app in (slurm-exporter,other),component!=db').items) == 3
    assert core.list_namespaced_pod(NS, label_selector='app notin (slurm-exporter)').items == []
    assert len(core.list_namespaced_pod(NS, field_selector='status.phase=Running').items) == 3
    warnings = core.list_namespaced_event(NS, field_selector='type=Warning').items
    assert warnings and all(event.type == 'Warning' for event in warnings)
    pods = sorted(pod.metadata.name for pod in core.list_namespaced_pod(NS).items)
    restarted = core.read_namespaced_pod(pods[0], NS)
    assert restarted.status.container_statuses[0].restart_count == 1
    assert 'collection completed' in core.read_namespaced_pod_log(pods[0], NS, container='slurm-exporter', previous=True)
    with pytest.raises(client.ApiException) as info:
        core.read_namespaced_pod_log(pods[1], NS, container='slurm-exporter', previous=True)
    assert info.value.status == 400
    assert core.read_namespaced_pod_log(pods[1], NS, container='slurm-exporter', tail_lines=2).count('\n') == 2
    assert len(core.read_namespaced_pod_log(pods[1], NS, container='slurm-exporter', limit_bytes=10)) == 10
    # optimistic concurrency on PUT
    config_map = core.read_namespaced_config_map('slurm-exporter-config', NS)
    stale = config_map.metadata.resource_version
    config_map.data['extra'] = 'x'
    core.replace_namespaced_config_map('slurm-exporter-config', NS, config_map)
    config_map.metadata.resource_version = stale
    with pytest.raises(client.ApiException) as info:
        core.replace_namespaced_config_map('slurm-exporter-config', NS, config_map)
    assert info.value.status == 409
    # server-side dry run changes nothing and is not a write
    kube.clear_requests()
    apps.patch_namespaced_deployment_scale('slurm-exporter', NS, {'spec': {'replicas': 0}}, dry_run='All')
    assert apps.read_namespaced_deployment('slurm-exporter', NS).spec.replicas == 3
    assert kube.writes() == [] and kube.requests[-2]['dry_run']
    # an injected 500 on one pod's log, the others unaffected
    fault = kube.add_fault('GET', r'/pods/%s/log$' % pods[2], status=500)
    with pytest.raises(client.ApiException) as info:
        core.read_namespaced_pod_log(pods[2], NS, container='slurm-exporter')
    assert info.value.status == 500 and fault.hits == 1
    assert core.read_namespaced_pod_log(pods[1], NS, container='slurm-exporter')
    # a request without the token is refused
    anonymous = client.CoreV1Api(client.ApiClient(client.Configuration(host=kube.url)))
    with pytest.raises(client.ApiException) as info:
        anonymous.list_namespaced_pod(NS)
    assert info.value.status == 401


def test_large_generated_logs_stream(kube):
    from kubernetes import client, config  # pylint: disable=import-outside-toplevel

    core = client.CoreV1Api(config.new_client_from_config(config_file=kube.kubeconfig))
    pod = sorted(pod.metadata.name for pod in core.list_namespaced_pod(NS).items)[1]
    kube.set_pod_log(NS, pod, 'slurm-exporter', size=4 * 1024 * 1024)
    response = core.read_namespaced_pod_log(pod, NS, container='slurm-exporter', _preload_content=False)
    total = sum(len(chunk) for chunk in response.stream(65536))
    assert 4 * 1024 * 1024 - 300 < total <= 4 * 1024 * 1024


def test_command_line(tmp_path):
    kubeconfig = tmp_path / 'kubeconfig'
    process = subprocess.Popen([sys.executable, '-m', 'tests.emulator', '--kubeconfig', str(kubeconfig), '--pods', '5'],
                               cwd=REPO_ROOT, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    try:
        line = process.stdout.readline()
        assert line.startswith('kube emulator: http://127.0.0.1:'), line + process.stderr.read()
        from kubernetes import client, config  # pylint: disable=import-outside-toplevel

        core = client.CoreV1Api(config.new_client_from_config(config_file=str(kubeconfig)))
        assert len(core.list_namespaced_pod(NS).items) == 8
    finally:
        process.terminate()
        deadline = time.monotonic() + 10
        while process.poll() is None and time.monotonic() < deadline:
            time.sleep(0.1)
        if process.poll() is None:
            process.kill()
    assert process.returncode == 0


def client_apis(kube):
    """CoreV1Api and AppsV1Api over the emulator's kubeconfig."""
    from kubernetes import client, config  # pylint: disable=import-outside-toplevel

    api_client = config.new_client_from_config(config_file=kube.kubeconfig)
    return client, client.CoreV1Api(api_client), client.AppsV1Api(api_client)


def test_metadata_errors_and_namespaces(kube):
    client, core, _apps = client_apis(kube)
    created = core.create_namespace({'metadata': {'name': 'quarantine'}})
    assert created.metadata.uid and created.metadata.resource_version and created.status.phase == 'Active'
    assert core.read_namespace('quarantine').metadata.name == 'quarantine'
    with pytest.raises(client.ApiException) as info:
        core.create_namespace({'metadata': {'name': 'quarantine'}})
    assert info.value.status == 409 and '"reason": "AlreadyExists"' in info.value.body
    core.create_namespaced_config_map('quarantine', {'metadata': {'name': 'note'}, 'data': {'k': 'v'}})
    core.delete_namespace('quarantine')
    with pytest.raises(client.ApiException) as info:
        core.read_namespaced_config_map('note', 'quarantine')
    assert info.value.status == 404 and '"kind": "Status"' in info.value.body and '"reason": "NotFound"' in info.value.body
    with pytest.raises(client.ApiException) as info:
        core.create_namespaced_config_map(NS, {'metadata': {}})
    assert info.value.status == 422 and '"reason": "Invalid"' in info.value.body
    # names as the API server validates them: a subdomain, a DNS-1035 label for Services
    for create, kind, name in ((core.create_namespaced_config_map, 'ConfigMap', 'Bad_Name'),
                               (core.create_namespaced_service, 'Service', 'svc.dotted')):
        with pytest.raises(client.ApiException) as info:
            create(NS, {'metadata': {'name': name}})
        status = json.loads(info.value.body)
        assert info.value.status == 422 and status['reason'] == 'Invalid' and status['details']['causes'][0]['field'] == 'metadata.name'
        assert status['message'].startswith('%s "%s" is invalid: metadata.name: Invalid value: "%s": ' % (kind, name, name))
    assert core.create_namespaced_config_map(NS, {'metadata': {'name': 'dotted.name-1'}}).metadata.name == 'dotted.name-1'
    # a fault answers with the Status message it is given (an admission webhook's denial)
    kube.add_fault('POST', r'/configmaps$', status=403, reason='Forbidden', message='admission webhook "x" denied the request', times=1)
    with pytest.raises(client.ApiException) as info:
        core.create_namespaced_config_map(NS, {'metadata': {'name': 'denied'}})
    assert info.value.status == 403 and json.loads(info.value.body)['message'] == 'admission webhook "x" denied the request'
    # dryRun on create: answered, logged as a dry run, nothing stored
    kube.clear_requests()
    assert core.create_namespaced_config_map(NS, {'metadata': {'name': 'dry'}}, dry_run='All').metadata.uid
    assert kube.get('v1', 'ConfigMap', NS, 'dry') is None
    assert kube.requests[-1]['verb'] == 'create' and kube.requests[-1]['dry_run'] and kube.writes() == []
    # resourceVersion is a global counter; lists carry kind, apiVersion and a resourceVersion
    first = core.create_namespaced_config_map(NS, {'metadata': {'name': 'one'}}).metadata.resource_version
    second = core.create_namespaced_config_map(NS, {'metadata': {'name': 'two'}}).metadata.resource_version
    assert int(second) > int(first)
    listed = core.list_namespaced_config_map(NS)
    assert listed.kind == 'ConfigMapList' and listed.api_version == 'v1' and int(listed.metadata.resource_version) >= int(second)
    assert core.list_namespaced_config_map(NS, field_selector='metadata.name=two').items[0].metadata.name == 'two'
    events = core.list_namespaced_event(NS, field_selector='involvedObject.kind=Deployment,involvedObject.name=slurm-exporter')
    assert [event.reason for event in events.items] == ['ScalingReplicaSet']
    assert core.list_namespaced_pod(NS, label_selector='!tier,app==slurm-exporter,component').items


def test_typed_client_models_accept_every_seeded_kind(kube):
    client, core, apps = client_apis(kube)
    api_client = core.api_client
    assert len(core.list_node().items) == 2
    counts = {
        'pods': len(core.list_namespaced_pod(NS).items), 'services': len(core.list_namespaced_service(NS).items),
        'endpoints': len(core.list_namespaced_endpoints(NS).items), 'secrets': len(core.list_namespaced_secret(NS).items),
        'configmaps': len(core.list_namespaced_config_map(NS).items), 'events': len(core.list_namespaced_event(NS).items),
        'serviceaccounts': len(core.list_namespaced_service_account(NS).items),
        'resourcequotas': len(core.list_namespaced_resource_quota(NS).items), 'limitranges': len(core.list_namespaced_limit_range(NS).items),
        'deployments': len(apps.list_namespaced_deployment(NS).items), 'replicasets': len(apps.list_namespaced_replica_set(NS).items),
        'networkpolicies': len(client.NetworkingV1Api(api_client).list_namespaced_network_policy(NS).items),
        'hpas': len(client.AutoscalingV2Api(api_client).list_namespaced_horizontal_pod_autoscaler(NS).items),
        'pdbs': len(client.PolicyV1Api(api_client).list_namespaced_pod_disruption_budget(NS).items),
        'clusterroles': len(client.RbacAuthorizationV1Api(api_client).list_cluster_role(label_selector='app=slurm-exporter').items),
        'new events': len(client.EventsV1Api(api_client).list_namespaced_event(NS).items),
    }
    assert counts['pods'] == 3 and counts['deployments'] == counts['replicasets'] == 1 and counts['clusterroles'] == 1, counts
    assert counts['events'] == counts['new events'] > 0 and all(counts.values()), counts
    # registry-credentials is refused, as a real API server refuses it (an empty .dockerconfigjson; tests/realkube).
    assert {secret.metadata.name for secret in core.list_namespaced_secret(NS).items} == {'slurm-credentials', 'slurm-exporter-tls'}


def test_deployment_controller(kube):
    client, core, apps = client_apis(kube)
    nodes = {node.metadata.name for node in core.list_node().items}
    pods = core.list_namespaced_pod(NS, label_selector='app=slurm-exporter').items
    for pod in pods:
        assert pod.spec.node_name in nodes and pod.metadata.owner_references[0].kind == 'ReplicaSet'
        assert pod.metadata.labels['pod-template-hash'] in pod.metadata.name
        status = pod.status.container_statuses[0]
        assert status.ready and status.image_id.startswith('docker-pullable://ghcr.io/jontk/slurm-exporter@sha256:')
    # a deleted pod is replaced by its ReplicaSet
    core.delete_namespaced_pod(pods[1].metadata.name, NS)
    after = {pod.metadata.name for pod in core.list_namespaced_pod(NS, label_selector='app=slurm-exporter').items}
    assert len(after) == 3 and pods[1].metadata.name not in after
    # a strategic merge patch of one container's env merges by name and rolls out a new ReplicaSet
    patch = {'spec': {'template': {'spec': {'containers': [{'name': 'slurm-exporter', 'env': [{'name': 'INCIDENT', 'value': '1'}]}]}}}}
    deployment = apps.patch_namespaced_deployment('slurm-exporter', NS, patch)
    env = {item.name for item in deployment.spec.template.spec.containers[0].env}
    assert {'INCIDENT', 'SLURM_REST_URL'} <= env
    assert deployment.metadata.generation == 2 and deployment.status.observed_generation == 2
    assert deployment.status.ready_replicas == deployment.status.updated_replicas == 3
    revisions = sorted((rs.metadata.annotations['deployment.kubernetes.io/revision'], rs.spec.replicas)
                       for rs in apps.list_namespaced_replica_set(NS).items)
    assert revisions == [('1', 0), ('2', 3)]
    # the scale subresource, and an unhealthy rollout
    assert apps.read_namespaced_deployment_scale('slurm-exporter', NS).spec.replicas == 3
    apps.replace_namespaced_deployment_scale('slurm-exporter', NS, {'spec': {'replicas': 2}})
    kube.set_unhealthy(NS, 'slurm-exporter')
    status = apps.read_namespaced_deployment_status('slurm-exporter', NS).status
    assert status.replicas == 2 and not status.ready_replicas
    assert [c.status for c in status.conditions if c.type == 'Available'] == ['False']
    # deleting the deployment deletes its ReplicaSets and pods
    apps.delete_namespaced_deployment('slurm-exporter', NS)
    assert apps.list_namespaced_replica_set(NS).items == [] and core.list_namespaced_pod(NS).items == []
    with pytest.raises(client.ApiException):
        apps.read_namespaced_deployment('slurm-exporter', NS)


def test_delay_and_hang_faults(kube):
    client, core, _apps = client_apis(kube)
    kube.add_fault('GET', r'/configmaps$', delay=0.3, status=None, times=1)
    started = time.monotonic()
    assert core.list_namespaced_config_map(NS).items
    assert time.monotonic() - started >= 0.3
    fault = kube.add_fault('GET', r'/secrets$', hang=True, delay=3)
    with pytest.raises(Exception) as info:  # urllib3's ReadTimeoutError (the client retries, hanging each time)
        core.list_namespaced_secret(NS, _request_timeout=0.3)
    assert not isinstance(info.value, client.ApiException) and fault.hits >= 1
    kube.clear_faults()
    assert core.list_namespaced_secret(NS).items


def test_thousand_pods_with_large_logs(tmp_path):
    import http.client  # pylint: disable=import-outside-toplevel
    import json  # pylint: disable=import-outside-toplevel

    from tests.emulator import Emulator  # pylint: disable=import-outside-toplevel

    with Emulator.start(pods=1000, log_bytes=1024 * 1024) as emu:
        emu.write_kubeconfig(str(tmp_path / 'kubeconfig'))
        connection = http.client.HTTPConnection(emu.url.split('//')[1], timeout=30)
        headers = {'Authorization': 'Bearer %s' % emu.token}
        connection.request('GET', '/api/v1/namespaces/%s/pods?labelSelector=app%%3Dslurm-exporter' % NS, headers=headers)
        names = [pod['metadata']['name'] for pod in json.loads(connection.getresponse().read())['items']]
        assert len(names) == 1003
        for name in names[-5:]:  # over one keep-alive connection
            connection.request('GET', '/api/v1/namespaces/%s/pods/%s/log?container=slurm-exporter' % (NS, name), headers=headers)
            response = connection.getresponse()
            assert 1024 * 1024 - 300 < len(response.read()) <= 1024 * 1024
        connection.close()
