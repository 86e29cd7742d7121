# -*- coding: utf-8 -*-
# Copyright: contributors to slurm_exporter.incident_response
# GNU General Public License v3.0+ (see COPYING or https://www.gnu.org/licenses/gpl-3.0.txt)
# SPDX-License-Identifier: GPL-3.0-or-later
"""playbooks/deploy.yml against the emulated cluster: every object, idempotent, check mode, updates, uninstall.

The objects are read back through the API; the in-cluster inventory is rebuilt from the ConfigMap and the
Secret exactly as the pods' projected volume lays it out, then parsed by ansible-inventory and by the
launcher's own configuration loader.
"""

from __future__ import annotations

import base64
import json
import os
import subprocess

import pytest
import yaml

from tests.conftest import REPO_ROOT, ansible_env, launcher_module, run_playbook

PLAYBOOK = os.path.join(REPO_ROOT, 'playbooks', 'deploy.yml')
INVENTORY = os.path.join(REPO_ROOT, 'inventories', 'local')
NS = 'incident-response'
TARGET = 'slurm-exporter'
TOKEN = 'launcher-token-7f3a9c1e5b2d4f6a8c0e1b3d5f7a9c1e'
SLACK_URL = 'https://hooks.slack.example/services/T0/B0/slack-secret-4b8e2f'
with open(os.path.join(REPO_ROOT, 'roles', 'deploy', 'vars', 'main.yml'), encoding='utf-8') as _vars:
    RULES = yaml.safe_load(_vars)
SECRETS = (TOKEN, SLACK_URL, base64.b64encode(TOKEN.encode()).decode())


def settings(kube, **extra):
    variables = {'deploy_kubeconfig': kube.kubeconfig, 'deploy_launcher_bearer_token': TOKEN, 'deploy_wait_timeout': 30,
                 'incident_slack': {'webhook_url': SLACK_URL}, 'incident_min_available_replicas': 2,
                 'incident_response_rules': [{'name': 'exporter-memory', 'trigger': 'process_resident_memory_bytes > 1e9',
                                              'incident_type': 'resource_exhaustion', 'actions': ['restart_pod']}]}
    variables.update(extra)
    return variables


def deploy(kube, check=False, **extra):
    run = run_playbook(PLAYBOOK, settings(kube, **extra), check=check, env={'ANSIBLE_VERBOSITY': '2'}, inventory=INVENTORY)
    for secret in SECRETS:
        assert secret not in run.stdout and secret not in run.stderr, 'a secret reached the output'
    return run


def changed(run):
    return run.json['stats']['localhost']['changed']


def get(kube, api_version, kind, name, namespace=NS):
    return kube.get(api_version, kind, namespace, name)


def owned(kube):
    """(kind, namespace, name) of every object the deploy labels as its own, and the namespace."""
    found = set()
    for api_version, kind, namespaced in (('v1', 'Namespace', False), ('v1', 'ServiceAccount', True), ('v1', 'ConfigMap', True),
                                          ('v1', 'Secret', True), ('v1', 'PersistentVolumeClaim', True), ('v1', 'Service', True),
                                          ('apps/v1', 'Deployment', True), ('batch/v1', 'CronJob', True),
                                          ('networking.k8s.io/v1', 'NetworkPolicy', True), ('policy/v1', 'PodDisruptionBudget', True),
                                          ('rbac.authorization.k8s.io/v1', 'Role', True), ('rbac.authorization.k8s.io/v1', 'RoleBinding', True),
                                          ('rbac.authorization.k8s.io/v1', 'ClusterRole', False),
                                          ('rbac.authorization.k8s.io/v1', 'ClusterRoleBinding', False),
                                          ('monitoring.coreos.com/v1', 'PrometheusRule', True)):
        for item in kube.list(api_version, kind, None, 'app.kubernetes.io/managed-by=slurm_exporter.incident_response'):
            found.add((kind, item['metadata'].get('namespace') if namespaced else None, item['metadata']['name']))
    return found


def versions(kube):
    """resourceVersion of every object the deploy owns."""
    found = {}
    for kind, namespace, name in owned(kube):
        api_version = {'Deployment': 'apps/v1', 'CronJob': 'batch/v1', 'NetworkPolicy': 'networking.k8s.io/v1', 'PodDisruptionBudget': 'policy/v1',
                       'PrometheusRule': 'monitoring.coreos.com/v1'}.get(kind, 'rbac.authorization.k8s.io/v1' if 'Role' in kind else 'v1')
        found[(kind, namespace, name)] = kube.get(api_version, kind, namespace, name)['metadata']['resourceVersion']
    return found


def materialise(kube, directory):
    """The pods' projected volume /etc/incident-response, rebuilt from the Deployment's volume and the objects."""
    deployment = get(kube, 'apps/v1', 'Deployment', 'incident-webhook')
    volume = next(v for v in deployment['spec']['template']['spec']['volumes'] if v['name'] == 'config')
    for source in volume['projected']['sources']:
        if 'configMap' in source:
            data = get(kube, 'v1', 'ConfigMap', source['configMap']['name'])['data']
            items = {item['path']: data[item['key']] for item in source['configMap']['items']}
        else:
            data = get(kube, 'v1', 'Secret', source['secret']['name'])['data']
            items = {item['path']: base64.b64decode(data[item['key']]).decode() for item in source['secret']['items']}
        for path, text in items.items():
            target = directory / path
            target.parent.mkdir(parents=True, exist_ok=True)
            target.write_text(text, encoding='utf-8')
    return directory


def test_deploy_installs_every_object_then_is_idempotent(kube, tmp_path):
    check = deploy(kube, check=True)
    assert check.rc == 0, check
    assert kube.writes() == [], 'check mode sent write requests'

    run = deploy(kube)
    assert run.rc == 0, run
    namespace = kube.get('v1', 'Namespace', None, NS)
    assert namespace['metadata']['labels']['pod-security.kubernetes.io/enforce'] == 'restricted'
    assert get(kube, 'v1', 'ServiceAccount', 'incident-response')['automountServiceAccountToken'] is False

    # Least privilege: the Role in the exporter's namespace and the read-only ClusterRole are exactly the rules that
    # tests/integration/test_rbac.py checks every playbook against.
    role = get(kube, 'rbac.authorization.k8s.io/v1', 'Role', 'incident-response', TARGET)
    assert role['rules'] == RULES['_deploy_role_rules']
    binding = get(kube, 'rbac.authorization.k8s.io/v1', 'RoleBinding', 'incident-response', TARGET)
    assert binding['subjects'] == [{'kind': 'ServiceAccount', 'name': 'incident-response', 'namespace': NS}]
    assert binding['roleRef'] == {'apiGroup': 'rbac.authorization.k8s.io', 'kind': 'Role', 'name': 'incident-response'}
    cluster_role = kube.get('rbac.authorization.k8s.io/v1', 'ClusterRole', None, 'incident-response')
    assert cluster_role['rules'] == RULES['_deploy_cluster_role_rules']
    assert all(set(rule['verbs']) <= {'get', 'list'} for rule in cluster_role['rules'])
    assert kube.get('rbac.authorization.k8s.io/v1', 'ClusterRoleBinding', None, 'incident-response')['subjects'][0]['namespace'] == NS
    assert get(kube, 'rbac.authorization.k8s.io/v1', 'Role', 'incident-response', NS) is None

    # The launcher: Service and Deployment incident-webhook on 10341, hardened, token from the Secret.
    service = get(kube, 'v1', 'Service', 'incident-webhook')
    assert service['spec']['ports'][0]['port'] == 10341
    deployment = get(kube, 'apps/v1', 'Deployment', 'incident-webhook')
    assert service['spec']['selector'].items() <= deployment['spec']['template']['metadata']['labels'].items()
    assert deployment['status']['availableReplicas'] == 1
    pod = deployment['spec']['template']['spec']
    container = pod['containers'][0]
    assert container['command'][1:3] == ['-m', 'incident_launcher']
    assert container['ports'][0]['containerPort'] == 10341
    assert container['readinessProbe']['httpGet']['path'] == '/healthz'
    assert container['securityContext'] == {'allowPrivilegeEscalation': False, 'readOnlyRootFilesystem': True, 'capabilities': {'drop': ['ALL']}}
    assert pod['securityContext']['runAsNonRoot'] is True and pod['serviceAccountName'] == 'incident-response'
    token_env = next(env for env in container['env'] if env['name'] == 'INCIDENT_LAUNCHER_BEARER_TOKEN')
    assert token_env['valueFrom']['secretKeyRef'] == {'name': 'incident-response', 'key': 'launcher-bearer-token'}
    assert deployment['spec']['strategy']['type'] == 'Recreate'

    policy = get(kube, 'networking.k8s.io/v1', 'NetworkPolicy', 'incident-webhook')
    assert policy['spec']['policyTypes'] == ['Ingress', 'Egress']
    assert policy['spec']['ingress'] == [{'from': [{'namespaceSelector': {'matchLabels': {'kubernetes.io/metadata.name': 'monitoring'}}}],
                                          'ports': [{'protocol': 'TCP', 'port': 10341}]}]
    assert policy['spec']['podSelector']['matchLabels'].items() <= deployment['spec']['template']['metadata']['labels'].items()

    cronjob = get(kube, 'batch/v1', 'CronJob', 'incident-escalation')
    assert cronjob['spec']['schedule'] == '* * * * *' and cronjob['spec']['concurrencyPolicy'] == 'Forbid'
    job_pod = cronjob['spec']['jobTemplate']['spec']['template']['spec']
    assert job_pod['containers'][0]['command'][:2] == ['ansible-playbook', 'slurm_exporter.incident_response.escalate']
    assert job_pod['automountServiceAccountToken'] is False
    assert job_pod['affinity']['podAffinity'], 'ReadWriteOnce data: the escalation pods must run on the launcher node'
    assert get(kube, 'v1', 'PersistentVolumeClaim', 'incident-response')['spec']['accessModes'] == ['ReadWriteOnce']

    rule = get(kube, 'monitoring.coreos.com/v1', 'PrometheusRule', 'incident-detection-rules', TARGET)
    alerts = [r['alert'] for group in rule['spec']['groups'] for r in group['rules']]
    assert any(alert.startswith('IncidentResponseCustom') for alert in alerts) and len(alerts) > 20

    # Secrets only in the Secret; the in-cluster inventory and launcher configuration load.
    secret = get(kube, 'v1', 'Secret', 'incident-response')
    assert base64.b64decode(secret['data']['launcher-bearer-token']).decode() == TOKEN
    assert 'annotations' not in secret['metadata'] or not any('last-applied' in key for key in secret['metadata']['annotations'])
    configmap = get(kube, 'v1', 'ConfigMap', 'incident-response')
    assert not any(value in json.dumps(configmap) for value in SECRETS)
    config = materialise(kube, tmp_path / 'etc')
    inventory = subprocess.run(['ansible-inventory', '-i', str(config / 'inventory'), '--host', 'localhost'], env=ansible_env(),
                               capture_output=True, text=True, timeout=120, check=True)
    host = json.loads(inventory.stdout)
    assert host['incident_slack'] == {'webhook_url': SLACK_URL}
    assert host['incident_min_available_replicas'] == 2 and host['incident_namespace'] == TARGET
    assert host['incident_store'] == '/var/incident-response/store' and host['incident_kubeconfig'] == ''
    launcher = yaml.safe_load((config / 'launcher.yml').read_text(encoding='utf-8'))
    launcher['runner']['inventory'] = str(config / 'inventory')
    loaded = launcher_module('config').build(launcher, 'launcher.yml', {'INCIDENT_LAUNCHER_BEARER_TOKEN': TOKEN}, str(config))
    # in-cluster plain HTTP behind the NetworkPolicy: an explicit opt-in, warned about at start
    assert loaded['listen'] == {'address': '0.0.0.0', 'port': 10341, 'insecure_plain_http': True, 'insecure_anonymous': False}
    assert [warning for warning in loaded['warnings'] if 'insecure_plain_http' in warning]
    assert loaded['incident_namespace'] == TARGET and loaded['first_response']['enabled'] is True

    # Second run: reported unchanged, and no object changed (the API server keeps the resourceVersion of a no-op patch).
    before = versions(kube)
    again = deploy(kube)
    assert again.rc == 0, again
    assert changed(again) == 0 and versions(kube) == before


def test_update_rolls_the_launcher_and_removes_what_was_turned_off(kube):
    assert deploy(kube).rc == 0
    before = get(kube, 'apps/v1', 'Deployment', 'incident-webhook')['spec']['template']['metadata']['annotations']
    kube.clear_requests()
    run = deploy(kube, deploy_launcher_bearer_token=TOKEN + '-rotated', deploy_escalation_enabled=False,
                 deploy_launcher_config={'workers': {'concurrency': 2}})
    assert run.rc == 0, run
    after = get(kube, 'apps/v1', 'Deployment', 'incident-webhook')['spec']['template']['metadata']['annotations']
    assert after['checksum/secret'] != before['checksum/secret'] and after['checksum/config'] != before['checksum/config']
    assert get(kube, 'batch/v1', 'CronJob', 'incident-escalation') is None
    launcher = yaml.safe_load(get(kube, 'v1', 'ConfigMap', 'incident-response')['data']['launcher.yml'])
    assert launcher['workers'] == {'concurrency': 2} and launcher['listen']['port'] == 10341
    assert all(write['namespace'] in (NS, TARGET, None) for write in kube.writes())


def test_drill_namespace_gets_the_same_role(kube):
    kube.create({'apiVersion': 'v1', 'kind': 'Namespace', 'metadata': {'name': 'slurm-exporter-drill'}})
    run = deploy(kube, deploy_drill_namespace='slurm-exporter-drill')
    assert run.rc == 0, run
    role = get(kube, 'rbac.authorization.k8s.io/v1', 'Role', 'incident-response', 'slurm-exporter-drill')
    assert role['rules'] == RULES['_deploy_role_rules']
    assert get(kube, 'rbac.authorization.k8s.io/v1', 'RoleBinding', 'incident-response', 'slurm-exporter-drill')


def test_uninstall_keeps_the_records_unless_purged(kube):
    assert deploy(kube).rc == 0
    exporter_role = get(kube, 'rbac.authorization.k8s.io/v1', 'Role', 'slurm-exporter', TARGET)
    kube.clear_requests()
    check = deploy(kube, check=True, deploy_state='absent')
    assert check.rc == 0, check
    assert kube.writes() == [] and get(kube, 'apps/v1', 'Deployment', 'incident-webhook')

    kube.clear_requests()
    run = deploy(kube, deploy_state='absent')
    assert run.rc == 0, run
    assert owned(kube) == {('Namespace', None, NS), ('PersistentVolumeClaim', NS, 'incident-response')}
    assert get(kube, 'rbac.authorization.k8s.io/v1', 'Role', 'slurm-exporter', TARGET) == exporter_role, 'the exporter was touched'
    assert get(kube, 'apps/v1', 'Deployment', 'slurm-exporter', TARGET)['status']['availableReplicas'] == 3
    again = deploy(kube, deploy_state='absent')
    assert again.rc == 0 and changed(again) == 0, again

    purge = deploy(kube, deploy_state='absent', deploy_purge_data=True)
    assert purge.rc == 0, purge
    assert owned(kube) == set()
    assert kube.get('v1', 'Namespace', None, NS) is None


def test_several_launcher_replicas_share_the_cluster_spool_and_go_back_to_one(kube, tmp_path):
    replicated = {'deploy_launcher_replicas': 2, 'deploy_store_backend': 'kubernetes', 'deploy_storage_access_mode': 'ReadWriteMany'}
    run = deploy(kube, **replicated)
    assert run.rc == 0, run
    deployment = get(kube, 'apps/v1', 'Deployment', 'incident-webhook')
    assert deployment['spec']['replicas'] == 2 and deployment['status']['availableReplicas'] == 2
    assert deployment['spec']['strategy'] == {'type': 'RollingUpdate', 'rollingUpdate': {'maxUnavailable': 0, 'maxSurge': 1}}
    pod = deployment['spec']['template']['spec']
    selector = {'app.kubernetes.io/instance': 'incident-response', 'app.kubernetes.io/component': 'launcher'}
    assert pod['affinity'] == {'podAntiAffinity': {'preferredDuringSchedulingIgnoredDuringExecution': [
        {'weight': 100, 'podAffinityTerm': {'labelSelector': {'matchLabels': selector}, 'topologyKey': 'kubernetes.io/hostname'}}]}}
    assert selector.items() <= deployment['spec']['template']['metadata']['labels'].items()
    budget = get(kube, 'policy/v1', 'PodDisruptionBudget', 'incident-webhook')
    assert budget['spec'] == {'minAvailable': 1, 'selector': {'matchLabels': selector}}
    role = get(kube, 'rbac.authorization.k8s.io/v1', 'Role', 'incident-response-spool')
    assert role['rules'] == RULES['_deploy_spool_rules'] == [
        {'apiGroups': [''], 'resources': ['configmaps'], 'verbs': ['create', 'delete', 'get', 'list', 'update']}]
    binding = get(kube, 'rbac.authorization.k8s.io/v1', 'RoleBinding', 'incident-response-spool')
    assert binding['subjects'] == [{'kind': 'ServiceAccount', 'name': 'incident-response', 'namespace': NS}]
    assert binding['roleRef'] == {'apiGroup': 'rbac.authorization.k8s.io', 'kind': 'Role', 'name': 'incident-response-spool'}
    assert get(kube, 'rbac.authorization.k8s.io/v1', 'Role', 'incident-response-store')
    # The escalation pods need not follow a launcher: the data volume is ReadWriteMany.
    assert 'affinity' not in get(kube, 'batch/v1', 'CronJob', 'incident-escalation')['spec']['jobTemplate']['spec']['template']['spec']
    assert get(kube, 'v1', 'PersistentVolumeClaim', 'incident-response')['spec']['accessModes'] == ['ReadWriteMany']

    # The spool in the cluster, its local directory in an emptyDir of each pod; the records' files stay on the data volume.
    launcher = yaml.safe_load(get(kube, 'v1', 'ConfigMap', 'incident-response')['data']['launcher.yml'])
    assert launcher['spool'] == {'backend': 'kubernetes', 'group': 'incident-response', 'dir': '/var/incident-launcher/spool'}
    assert launcher['store'] == {'backend': 'kubernetes', 'namespace': NS}
    assert launcher['incident_store'] == '/var/incident-response/store'
    mounts = {mount['name']: mount['mountPath'] for mount in pod['containers'][0]['volumeMounts']}
    assert mounts['spool'] == '/var/incident-launcher/spool' and mounts['data'] == '/var/incident-response'
    volumes = {volume['name']: volume for volume in pod['volumes']}
    assert 'emptyDir' in volumes['spool'] and volumes['data']['persistentVolumeClaim'] == {'claimName': 'incident-response'}
    config = materialise(kube, tmp_path / 'etc')
    launcher['runner']['inventory'] = str(config / 'inventory')
    loaded = launcher_module('config').build(launcher, 'launcher.yml', {'INCIDENT_LAUNCHER_BEARER_TOKEN': TOKEN}, str(config))
    assert loaded['spool']['backend'] == 'kubernetes' and loaded['spool']['group'] == 'incident-response'

    # Second run: unchanged, the CRD included.
    before = versions(kube)
    again = deploy(kube, **replicated)
    assert again.rc == 0, again
    assert changed(again) == 0 and versions(kube) == before

    # Back to one: the file spool on the data volume, Recreate, no anti-affinity; the budget and the spool Role are gone.
    one = deploy(kube, deploy_store_backend='kubernetes', deploy_storage_access_mode='ReadWriteMany')
    assert one.rc == 0, one
    deployment = get(kube, 'apps/v1', 'Deployment', 'incident-webhook')
    assert deployment['spec']['replicas'] == 1 and deployment['spec']['strategy'] == {'type': 'Recreate'}
    assert 'affinity' not in deployment['spec']['template']['spec']
    assert 'spool' not in {volume['name'] for volume in deployment['spec']['template']['spec']['volumes']}
    assert get(kube, 'policy/v1', 'PodDisruptionBudget', 'incident-webhook') is None
    assert get(kube, 'rbac.authorization.k8s.io/v1', 'Role', 'incident-response-spool') is None
    assert get(kube, 'rbac.authorization.k8s.io/v1', 'RoleBinding', 'incident-response-spool') is None
    launcher = yaml.safe_load(get(kube, 'v1', 'ConfigMap', 'incident-response')['data']['launcher.yml'])
    assert launcher['spool'] == {'dir': '/var/incident-response/spool'}
    assert get(kube, 'rbac.authorization.k8s.io/v1', 'Role', 'incident-response-store')

    # Back to the file store: the store's Role and binding go with it (least privilege; the Incident objects stay).
    files = deploy(kube, deploy_storage_access_mode='ReadWriteMany')
    assert files.rc == 0, files
    assert get(kube, 'rbac.authorization.k8s.io/v1', 'Role', 'incident-response-store') is None
    assert get(kube, 'rbac.authorization.k8s.io/v1', 'RoleBinding', 'incident-response-store') is None

    # Uninstall after going back to two replicas removes their objects too.
    assert deploy(kube, **replicated).rc == 0
    assert get(kube, 'policy/v1', 'PodDisruptionBudget', 'incident-webhook')
    absent = deploy(kube, deploy_state='absent', **replicated)
    assert absent.rc == 0, absent
    assert get(kube, 'policy/v1', 'PodDisruptionBudget', 'incident-webhook') is None
    assert get(kube, 'rbac.authorization.k8s.io/v1', 'Role', 'incident-response-spool') is None
    assert owned(kube) == {('Namespace', None, NS), ('PersistentVolumeClaim', NS, 'incident-response')}


@pytest.mark.parametrize('extra, message', [
    ({'deploy_launcher_bearer_token': 'short'}, 'deploy_launcher_bearer_token: set it (at least 32 characters'),
    ({'deploy_launcher_replicas': 2, 'deploy_storage_access_mode': 'ReadWriteMany'},
     'deploy_launcher_replicas: 2 replicas share the spool and the incident records in the cluster: '
     'they need deploy_store_backend: kubernetes, got file'),
    ({'deploy_launcher_replicas': 3, 'deploy_store_backend': 'kubernetes'},
     'deploy_launcher_replicas: 3 replicas share the data volume (evidence, reports, outbox): '
     'they need deploy_storage_access_mode: ReadWriteMany, got ReadWriteOnce'),
    ({'deploy_launcher_replicas': 2, 'deploy_store_backend': 'kubernetes', 'deploy_storage_access_mode': 'ReadWriteMany',
      'deploy_name': 'incident-response-launchers-of-the-production-site'},
     'deploy_name: incident-response-launchers-of-the-production-site is the spool group of the launcher replicas: at most 40'),
    ({'deploy_launcher_replicas': 0}, 'deploy_launcher_replicas: expected an integer >= 1, got 0'),
    ({'deploy_namespace': 'Incident_Response'}, 'deploy_namespace: Incident_Response is not a namespace name'),
    ({'deploy_launcher_config': {'listen': {'port': 80}, 'auth': {}}}, 'deploy_launcher_config: auth, listen are set by the role'),
    ({'deploy_storage_access_mode': 'ReadWriteOncePod'}, 'ReadWriteOncePod leaves the escalation CronJob without the data volume'),
    ({'deploy_state': 'gone'}, 'value of deploy_state must be one of: present, absent'),
])
def test_bad_settings_are_refused_before_any_request(kube, extra, message):
    run = deploy(kube, **extra)
    assert run.rc != 0
    assert message in ' '.join(run.failures()), run
    assert kube.writes() == []


def test_the_secret_comes_from_vault_encrypted_variables(kube, tmp_path):
    """The production layout: vault.yml encrypted with ansible-vault, referenced from plain group_vars."""
    password = tmp_path / 'vault-password'
    password.write_text('correct horse battery staple\n', encoding='utf-8')
    group_vars = tmp_path / 'inventory' / 'group_vars' / 'all'
    group_vars.mkdir(parents=True)
    (tmp_path / 'inventory' / 'hosts.yml').write_text(
        'all:\n  hosts:\n    localhost:\n      ansible_connection: local\n      ansible_python_interpreter: "{{ ansible_playbook_python }}"\n',
        encoding='utf-8')
    vault = group_vars / 'vault.yml'
    vault.write_text(yaml.safe_dump({'vault_launcher_bearer_token': TOKEN, 'vault_slack_webhook': SLACK_URL}), encoding='utf-8')
    subprocess.run(['ansible-vault', 'encrypt', '--vault-password-file', str(password), str(vault)], env=ansible_env(),
                   capture_output=True, text=True, timeout=60, check=True)
    assert TOKEN not in vault.read_text(encoding='utf-8')
    (group_vars / 'main.yml').write_text(yaml.safe_dump({
        'deploy_launcher_bearer_token': '{{ vault_launcher_bearer_token }}', 'deploy_kubeconfig': kube.kubeconfig,
        'deploy_wait_timeout': 30, 'incident_slack': {'webhook_url': '{{ vault_slack_webhook }}'}}), encoding='utf-8')
    run = run_playbook(PLAYBOOK, inventory=str(tmp_path / 'inventory'),
                       env={'ANSIBLE_VAULT_PASSWORD_FILE': str(password), 'ANSIBLE_VERBOSITY': '2'})
    assert run.rc == 0, run
    for secret in SECRETS:
        assert secret not in run.stdout and secret not in run.stderr
    data = get(kube, 'v1', 'Secret', 'incident-response')['data']
    assert base64.b64decode(data['launcher-bearer-token']).decode() == TOKEN
    assert yaml.safe_load(base64.b64decode(data['notifications.yml'])) == {'incident_slack': {'webhook_url': SLACK_URL}}
    assert SLACK_URL not in json.dumps(get(kube, 'v1', 'ConfigMap', 'incident-response'))
