# -*- coding: utf-8 -*-
# Copyright: contributors to slurm_exporter.incident_response
# GNU General Public License v3.0+ (see COPYING or https://www.gnu.org/licenses/gpl-3.0.txt)
# SPDX-License-Identifier: GPL-3.0-or-later
"""The safety guarantees (docs/response.md, "Safety guarantees"), each proven with real ansible-playbook processes against
the emulated cluster: concurrent incidents on one workload, transient and permanent API faults, crashes (a collection
that cannot be loaded, SIGKILL), flapping alerts, the evidence gate, the guardrails on pod-template changes, and check
mode that sends no request that could write."""

from __future__ import annotations

import glob
import json
import os
import signal
import subprocess
import time

import pytest

from tests.alerts import alert, payload
from tests.conftest import REPO_ROOT, ansible_env, finish, run_playbook, write_playbook
from tests.fakes.endpoints import Endpoints
from tests.integration.test_response_playbooks import NS, Responder, actions, alert_payload, assert_scoped, now_ts, secret_token
from tests.integration.test_response_playbooks import slurm  # noqa: F401  pylint: disable=unused-import
from tests.launcher_process import base_config, records, wait_for

pytestmark = pytest.mark.integration

POLICY = ('networking.k8s.io/v1', 'NetworkPolicy', NS, 'incident-isolation')
NO_CORRELATION = {'incident_correlation': {'enabled': False, 'cooldown': 0, 'related': {}}}


@pytest.fixture
def responder(kube, tmp_path):
    return Responder(kube, tmp_path)


@pytest.fixture
def endpoints():
    server = Endpoints()
    server.series['up{job="slurm-exporter"}'] = [({'job': 'slurm-exporter', 'instance': 'a'}, 1)]
    yield server
    server.stop()


def started(responder, playbook, payload, extra=None):
    """ansible-playbook in the background, in a session of its own (so that a test can kill it with all its workers)."""
    responder.count += 1
    path = str(responder.tmp / ('alert-%d.json' % responder.count))
    with open(path, 'w', encoding='utf-8') as handle:
        json.dump(payload, handle)
    variables = {'incident_store': responder.store, 'incident_wait_timeout': 30, 'incident_actor': 'pytest', 'alert_file': path}
    variables.update(extra or {})
    environment = ansible_env({'K8S_AUTH_KUBECONFIG': responder.kube.kubeconfig, 'ANSIBLE_STDOUT_CALLBACK': 'ansible.builtin.json',
                               'ANSIBLE_CALLBACK_RESULT_FORMAT': 'json'})
    command = ['ansible-playbook', '-i', responder.inventory or os.path.join(REPO_ROOT, 'inventories', 'local', 'hosts.yml'),
               os.path.join(REPO_ROOT, 'playbooks', playbook + '.yml'), '-e', json.dumps(variables)]
    return subprocess.Popen(command, env=environment, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, cwd=REPO_ROOT,
                            start_new_session=True)


def replicas(responder):
    return responder.deployment()['spec']['replicas']


def lease_waits(record):
    return [wait for action in record['actions'] for wait in ((action['details'].get('lease') or {}).get('waited') or [])]


def lease_pollers(kube, since):
    """The connections (one per module process) that read the workload's Lease since ``since``."""
    return {entry['client'] for entry in kube.requests
            if entry['time'] >= since and entry['method'] == 'GET' and entry['path'].endswith('/leases/incident-response-slurm-exporter')}


def handed_over(record, outbox):
    """The hand-over happened: failure recorded (run failed or lost), escalation due now, responders told."""
    run = record['runs'][-1]
    assert run['outcome'] in ('failed', 'lost'), record['runs']
    assert record['status'] not in ('resolved', 'monitoring')
    # The escalation was due when the run ended (or the escalation run already raised it, which sets the next due time).
    assert record['escalation_due_at'] <= run['ended_at'] or record['escalation_level'] >= 1, (record['escalation_due_at'], run)
    assert any(n['template'] == 'status_update' and 'Automated response stopped' in json.dumps(n) for n in outbox)
    assert any(action['name'] == 'compensate' for action in record['actions'])


# -- concurrent incidents on one workload -------------------------------------------------------------------------
@pytest.mark.parametrize('count', [2, 3])
def test_concurrent_breaches_on_one_deployment_restore_it_and_keep_isolation_to_the_last(responder, kube, tmp_path, slurm, count):
    """Two or three security incidents (other fingerprints, no correlation) run their breach playbooks at the same time:
    the workload ends at its original 3 replicas, isolation stays until the last incident lifts it, and the incidents
    took turns on the workload's Lease. Each step is slowed down so that they overlap, and another responder holds the
    Lease while they start, so that every incident's first step waits for it. With a (fake) SLURM controller,
    one incident rotates the JWT signing key, the others' rotations are held back by the flapping guard before they
    touch the key, and the token in the Secret is the one SLURM accepts."""
    responder.inventory = slurm.inventory(tmp_path / 'hosts.yml')
    kube.add_fault('PUT', r'/deployments/slurm-exporter$', delay=1.5, status=None, times=None)
    from ansible_collections.slurm_exporter.incident_response.plugins.module_utils.k8s import Kubernetes  # pylint: disable=import-outside-toplevel
    from ansible_collections.slurm_exporter.incident_response.plugins.module_utils.lease import WorkloadLease  # pylint: disable=import-outside-toplevel
    client = Kubernetes({'kubeconfig': kube.kubeconfig})
    other = WorkloadLease(client, NS, 'slurm-exporter', 'INC-20260101-0001/another-responder/1').acquire()
    since = time.time()
    runs = [started(responder, 'security_breach', alert_payload('security_breach', 'c0ffee%04d' % number), extra=NO_CORRELATION)
            for number in range(count)]
    # Every run is at its first step (it opened its incident and polls the Lease, each module process over its own
    # connection) before the other responder lets go, however long a loaded machine takes to get them there.
    wait_for(lambda: len(responder.records()) == count, 600, 'every incident to open')
    wait_for(lambda: len(lease_pollers(kube, since)) >= count, 600, 'every incident to wait for the Lease')
    time.sleep(2)
    other.release()
    client.close()
    results = [finish(run, timeout=900) for run in runs]
    assert all(result.rc == 0 for result in results), results
    records = responder.records()
    assert len(records) == count and all(record['status'] == 'monitoring' for record in records)
    assert replicas(responder) == 3 and responder.deployment()['status']['availableReplicas'] == 3
    rotations = sorted(actions(record)[('rotate_credentials', 'eradication')]['result'] for record in records)
    assert rotations == ['success'] + ['suppressed'] * (count - 1)
    assert slurm.state()['reconfigures'] == 2 and slurm.verify(secret_token(kube))[0]  # started, then one rotation
    assert slurm.verify(slurm.leaked) == (False, 'jwt_decode failure: signature')
    assert kube.get(*POLICY) is None and 'incident-response/holds' not in (responder.deployment()['metadata'].get('annotations') or {})
    # Every lift but the last only released its hold; the policy was deleted once, after every incident's eradication.
    lifts = sorted((actions(record)[('lift_isolation', 'recovery')] for record in records), key=lambda action: action['time'])
    assert [lift['details']['operation'] for lift in lifts] == ['released'] * (count - 1) + ['deleted']
    deletes = [entry for entry in kube.requests if entry['method'] == 'DELETE' and entry['path'].endswith('/incident-isolation')]
    assert len(deletes) == 1
    for record in records:
        assert actions(record)[('rotate_tls', 'eradication')]['time'] <= lifts[-1]['time']
    # Scale-downs after the first found the workload held down; the last restore brought back 3 (never a default).
    restores = sorted((actions(record)[('scale_restore', 'recovery')] for record in records), key=lambda action: action['time'])
    assert restores[-1]['details']['replicas'] == 3
    # They took turns on the Lease: every incident's timeline shows its waits.
    for record in records:
        assert lease_waits(record), record['id']
        assert any('waited' in entry['message'] and 'for the Lease held by' in entry['message'] for entry in record['timeline'])
    assert_scoped(kube)


# -- API faults ------------------------------------------------------------------------------------------------------
def test_one_transient_500_on_every_write_of_the_breach_plan_is_retried(responder, kube, tmp_path, slurm):
    responder.inventory = slurm.inventory(tmp_path / 'hosts.yml')
    for method, path in (('POST', r'/networkpolicies$'), ('PUT', r'/deployments/slurm-exporter$'), ('PATCH', r'/secrets/slurm-credentials$'),
                         ('PUT', r'/secrets/slurm-exporter-tls$'), ('DELETE', r'/networkpolicies/incident-isolation$'),
                         ('POST', r'/leases$'), ('PUT', r'/leases/')):
        kube.add_fault(method, path, status=500, times=1)
    run = responder.run('security_breach', alert_payload('security_breach', 'fa010001'))
    assert run.rc == 0, run
    record = responder.record()
    assert record['status'] == 'monitoring' and all(action['result'] == 'success' for action in record['actions'])
    assert replicas(responder) == 3 and kube.get(*POLICY) is None
    retried = [item for action in record['actions'] for item in action['details'].get('retries') or []]
    assert {item['request'].split(' ')[0] for item in retried} >= {'POST', 'PUT', 'DELETE'}
    assert all(item['errors'] == ['500'] for item in retried)
    assert any('retried' in entry['message'] for entry in record['timeline'])


def test_a_permanent_500_on_scale_restore_leaves_the_workload_isolated_and_hands_over(responder, kube):
    # The scale-down's update goes through (the template is already the known-good one: no update); every later update
    # of the deployment fails, retries included.
    kube.add_fault('PUT', r'/deployments/slurm-exporter$', status=None, times=1)
    kube.add_fault('PUT', r'/deployments/slurm-exporter$', status=500, times=None)
    run = responder.run('security_breach', alert_payload('security_breach', 'fa010002'), extra={'incident_api_retries': {'total': 2, 'backoff_factor': 0.05}})
    assert run.rc != 0
    record = responder.record()
    done = actions(record)
    assert done[('scale_restore', 'recovery')]['result'] == 'failed'
    assert done[('scale_restore', 'recovery')]['details']['retries'][-1]['outcome'] == '500'
    # Fail safe: still isolated (so staying at 0 replicas is safe), the incident open, the failure recorded and told.
    assert kube.get(*POLICY) is not None and replicas(responder) == 0
    assert 'left at 0 replicas' in done[('compensate', 'recovery')]['details']['compensation'][0]['summary']
    handed_over(record, responder.outbox())


# -- crashes ---------------------------------------------------------------------------------------------------------
def collections_without(tmp_path, hidden):
    """A collections root with this collection and the ansible bundle's, except ``hidden`` (what an EE may lack)."""
    import ansible_collections  # pylint: disable=import-outside-toplevel
    root = tmp_path / 'collections' / 'ansible_collections'
    for base in [path for path in ansible_collections.__path__ if 'site-packages' in path]:
        for namespace in os.listdir(base):
            if not os.path.isdir(os.path.join(base, namespace)):
                continue
            for name in os.listdir(os.path.join(base, namespace)):
                if '%s.%s' % (namespace, name) in hidden or not os.path.isdir(os.path.join(base, namespace, name)):
                    continue
                (root / namespace).mkdir(parents=True, exist_ok=True)
                if not (root / namespace / name).exists():
                    os.symlink(os.path.join(base, namespace, name), str(root / namespace / name))
    (root / 'slurm_exporter').mkdir(parents=True, exist_ok=True)
    os.symlink(REPO_ROOT, str(root / 'slurm_exporter' / 'incident_response'))
    return {'ANSIBLE_COLLECTIONS_PATH': str(root.parent), 'ANSIBLE_COLLECTIONS_SCAN_SYS_PATH': 'false'}


def test_a_collection_that_cannot_be_loaded_is_handed_over(responder, kube, tmp_path):
    """community.crypto missing (an execution environment without it): rotate_tls cannot run after the scale-down."""
    env = collections_without(tmp_path, {'community.crypto'})
    run = responder.run('security_breach', alert_payload('security_breach', 'c4a50001'), env=env)
    assert run.rc != 0
    record = responder.record()
    done = actions(record)
    assert done[('rotate_tls', 'eradication')]['result'] == 'failed'
    assert 'community.crypto' in done[('rotate_tls', 'eradication')]['details']['error']
    assert kube.get(*POLICY) is not None and replicas(responder) == 0
    handed_over(record, responder.outbox())


def test_sigkill_of_the_playbook_is_handed_over_by_the_next_escalation_run(responder, kube, tmp_path):
    """The CLI path: nothing runs in a killed process. The run's deadline passes (here: moved into the past), and the
    next escalate run records the run as lost, compensates, tells the responders and escalates."""
    kube.add_fault('PUT', r'/secrets/slurm-exporter-tls$', delay=30, status=None, times=1)
    kube.add_fault('POST', r'/namespaces/slurm-exporter/secrets$', delay=30, status=None, times=1)
    process = started(responder, 'security_breach', alert_payload('security_breach', 'c4a50002'))
    wait_for(lambda: responder.records() and ('scale_down', 'containment') in actions(responder.record()), 600, 'the scale-down')
    os.killpg(process.pid, signal.SIGKILL)
    process.communicate(timeout=30)
    record = responder.record()
    assert record['runs'][-1]['outcome'] == 'running' and replicas(responder) == 0
    path = glob.glob(os.path.join(responder.store, 'incident-*.json'))[0]
    record['runs'][-1]['deadline_at'] = '2000-01-01T00:00:00Z'
    with open(path, 'w', encoding='utf-8') as handle:
        json.dump(record, handle)
    escalated = responder.run('escalate', extra={'incident_kubeconfig': kube.kubeconfig})
    assert escalated.rc == 0, escalated
    record = responder.record()
    handed_over(record, responder.outbox())
    assert record['escalation_level'] == 1 and 'escalation' in [n['template'] for n in responder.outbox()]
    assert kube.get(*POLICY) is not None and replicas(responder) == 0


# -- flapping ----------------------------------------------------------------------------------------------------------
FLAPPING_CYCLES = 20


def test_twenty_fire_resolve_cycles_restart_at_most_once(responder, kube, tmp_path, endpoints):
    """One service-outage alert fires and resolves 20 times in a row, each payload a whole response (open or reopen,
    plan, close with its notifications and report): one incident, one restart; every re-fire reopened it and is
    recorded (the changes already made are not repeated). Twenty is the correlation issue's figure; each cycle costs
    about ten CPU-seconds here, so fifty (the safety issue's) would add a quarter of an hour to every CI run for the
    same code path."""
    files = []
    for cycle in range(FLAPPING_CYCLES):
        starts = now_ts(cycle)
        for status in ('firing', 'resolved'):
            path = tmp_path / ('cycle-%02d-%s.json' % (cycle, status))
            path.write_text(json.dumps(alert_payload('service_outage', 'f1a9f1a9', status=status, starts_at=starts)))
            files.append(str(path))
    playbook = write_playbook(tmp_path, [{
        'name': 'respond to every payload in turn',
        'ansible.builtin.include_role': {'name': 'slurm_exporter.incident_response.response'},
        'vars': {'alert_file': '{{ item }}'}, 'loop': files, 'loop_control': {'label': '{{ item | basename }}'}}],
        play_vars={'ansible_python_interpreter': '{{ ansible_playbook_python }}', 'incident_store': responder.store,
                   'incident_wait_timeout': 20, 'incident_exporter_health_url': endpoints.url + '/health',
                   'incident_prometheus_url': endpoints.url},
        name='flapping.yml')
    generation = responder.deployment()['metadata']['generation']
    run = run_playbook(playbook, env={'K8S_AUTH_KUBECONFIG': kube.kubeconfig}, timeout=1800)
    assert run.rc == 0, run
    records = responder.records()
    assert len(records) == 1
    record = records[0]
    restarts = [entry for entry in kube.writes() if entry['method'] == 'PUT' and entry['path'].endswith('/deployments/slurm-exporter')]
    assert len(restarts) == 1 and responder.deployment()['metadata']['generation'] == generation + 1
    reopened = [entry for entry in record['timeline'] if 'reopened' in entry['message'] and 'not repeated' in entry['message']]
    assert len(reopened) == FLAPPING_CYCLES - 1


def test_a_flapping_security_alert_isolates_and_rotates_once(responder, kube, tmp_path, slurm):
    responder.inventory = slurm.inventory(tmp_path / 'hosts.yml')
    for cycle in range(5):
        starts = now_ts(cycle)
        for status in ('firing', 'resolved'):
            run = responder.run('security_breach', alert_payload('security_breach', 'f1a95ec0', status=status, starts_at=starts))
            assert run.rc == 0, run
    assert len(responder.records()) == 1
    writes = kube.writes()
    assert len([w for w in writes if w['method'] == 'POST' and w['path'].endswith('/networkpolicies')]) == 1
    assert len([w for w in writes if w['path'].endswith('/secrets/slurm-exporter-tls')]) == 1
    assert len([w for w in writes if w['path'].endswith('/secrets/slurm-credentials')]) == 1
    assert slurm.state()['reconfigures'] == 2  # started, then the one rotation


# -- the evidence gate and the guardrails on pod-template changes ------------------------------------------------------
def test_unreadable_logs_block_the_scale_down(responder, kube):
    kube.add_fault('GET', r'/pods/[^/]+/log$', status=500, times=None)
    run = responder.run('security_breach', alert_payload('security_breach', 'e71de001'))
    assert run.rc != 0
    record = responder.record()
    done = actions(record)
    gaps = done[('capture_evidence', 'containment')]['details']['gaps']['logs']
    assert len(gaps) == 3
    assert done[('scale_down', 'containment')]['result'] == 'blocked'
    assert replicas(responder) == 3 and kube.get(*POLICY) is not None
    assert any('INCOMPLETE: the logs of' in entry['message'] for entry in record['timeline'])
    assert any(gaps[0] in json.dumps(n) for n in responder.outbox() if n['template'] == 'status_update')
    handed_over(record, responder.outbox())
    report = next(r['path'] for r in record['reports'] if r['path'].endswith('.md'))
    with open(report, encoding='utf-8') as handle:
        assert 'INCOMPLETE: the logs of' in handle.read()


@pytest.mark.parametrize('rule_action, settings', [
    ('raise_limits', {'incident_min_available_replicas': 3}),
    ('increase_logging', {'incident_recreate': True}),
])
def test_pod_template_changes_keep_the_minimum_available(responder, kube, rule_action, settings):
    if settings.pop('incident_recreate', False):
        deployment = responder.deployment()
        deployment['spec']['strategy'] = {'type': 'Recreate'}
        kube.replace(deployment)
    rules = [{'name': 'guarded', 'trigger': 'up == 0', 'duration': '1m', 'incident_type': 'performance_degradation',
              'actions': [rule_action]}]
    generation = responder.deployment()['metadata']['generation']
    run = responder.run('respond', alert_payload('performance_degradation', 'b10c0001', labels={'response_rule': 'guarded'}),
                        extra=dict(settings, incident_response_rules=rules))
    assert run.rc != 0
    assert actions(responder.record())[(rule_action, 'containment')]['result'] == 'blocked'
    assert responder.deployment()['metadata']['generation'] == generation


# -- check mode -------------------------------------------------------------------------------------------------------
@pytest.mark.parametrize('playbook', ['security_breach', 'vulnerability_exploit', 'malware_detection', 'service_outage',
                                      'performance_degradation', 'data_loss', 'api_failure', 'resource_exhaustion',
                                      'network_partition', 'cluster_failure'])
def test_check_mode_sends_no_request_that_could_write(responder, kube, playbook):
    kube.clear_requests()
    run = responder.run(playbook, alert_payload(playbook, 'c7ec0001'), check=True)
    assert run.rc == 0, run
    assert [(entry['method'], entry['path'], entry['dry_run']) for entry in kube.requests if entry['method'] != 'GET'] == []
    assert not os.path.exists(responder.store)


# -- through the webhook launcher ----------------------------------------------------------------------------------------
def launcher_for(tmp_path, kube, launchers, correlated=False, settings=None, slurm=None, **overrides):  # pylint: disable=redefined-outer-name
    """A launcher whose runner runs the real respond playbook against the emulator, 3 worker slots; without correlation
    (unless ``correlated``) each security alert is an incident of its own; with ``slurm`` (a FakeSlurm) in the
    inventory as the SLURM controller."""
    inventory = tmp_path / 'inventory.yml'
    variables = dict({} if correlated else NO_CORRELATION, incident_wait_timeout=30, incident_actor='launcher-test')
    variables.update(settings or {})
    if slurm is not None:
        slurm.inventory(inventory, variables=variables)
    else:
        inventory.write_text(json.dumps({'all': {
            'hosts': {'localhost': {'ansible_connection': 'local', 'ansible_python_interpreter': '{{ ansible_playbook_python }}'}},
            'vars': variables}}))
    config = base_config(tmp_path, runner={'playbook': 'slurm_exporter.incident_response.respond', 'inventory': str(inventory),
                                           'timeout': 600, 'env': {'K8S_AUTH_KUBECONFIG': kube.kubeconfig}},
                         workers={'concurrency': 3, 'max_attempts': 2, 'backoff_initial': 0.5, 'backoff_max': 1},
                         correlation={'enabled': correlated})
    for key, value in overrides.items():
        config[key] = dict(config.get(key) or {}, **value) if isinstance(value, dict) else value
    return launchers(tmp_path, config).start()


def launcher_alert(fingerprint, **labels):
    return payload(alert(fingerprint, starts=now_ts(), alertname='SlurmExporterSuspiciousAccess', incident_type='security_breach',
                         **labels))


def test_concurrent_breaches_through_the_launcher(tmp_path, kube, launchers, slurm):
    kube.add_fault('PUT', r'/deployments/slurm-exporter$', delay=1.5, status=None, times=None)
    launcher = launcher_for(tmp_path, kube, launchers, slurm=slurm)
    for fingerprint in ('1a0001', '1a0002'):
        assert launcher.post(launcher_alert(fingerprint)).status_code == 200
    wait_for(lambda: len(launcher.spool('done')) + len(launcher.spool('failed')) == 2, 900, 'both runs')
    assert not launcher.spool('failed'), [launcher.spool_entry('failed', name)['failed_reason'] for name in launcher.spool('failed')]
    found = records(str(tmp_path / 'store'))
    assert len(found) == 2 and all(record['status'] == 'monitoring' for record in found)
    deployment = kube.get('apps/v1', 'Deployment', NS, 'slurm-exporter')
    assert deployment['spec']['replicas'] == 3 and kube.get(*POLICY) is None
    lifts = sorted((actions(record)[('lift_isolation', 'recovery')] for record in found), key=lambda action: action['time'])
    assert [lift['details']['operation'] for lift in lifts] == ['released', 'deleted']
    assert sum(len(lease_waits(record)) for record in found) >= 1


def test_a_killed_run_is_handed_over_by_the_launcher(tmp_path, kube, launchers):
    """SIGKILL of the ansible-playbook process the launcher started, after the scale-down: the launcher hands the
    incident over (playbooks/handover.yml): the run is recorded as lost, the workload stays isolated at 0 replicas,
    the responders are told, the escalation is due now, and the alert is not retried."""
    kube.add_fault('PUT', r'/secrets/slurm-exporter-tls$', delay=60, status=None, times=1)
    kube.add_fault('POST', r'/namespaces/slurm-exporter/secrets$', delay=60, status=None, times=1)
    launcher = launcher_for(tmp_path, kube, launchers)
    store = str(tmp_path / 'store')
    assert launcher.post(launcher_alert('2b0001')).status_code == 200

    def scaled_down():
        found = records(store)
        return found and ('scale_down', 'containment') in actions(found[0])
    wait_for(scaled_down, 600, 'the scale-down')
    killed = 0
    for pid in os.listdir('/proc'):
        if not pid.isdigit():
            continue
        try:
            with open('/proc/%s/cmdline' % pid, 'rb') as handle:
                command = handle.read().split(b'\0')
        except OSError:
            continue
        if any(part.endswith(b'ansible-playbook') for part in command[:2]) and str(tmp_path).encode() in b' '.join(command):
            os.kill(int(pid), signal.SIGKILL)
            killed += 1
    assert killed >= 1
    wait_for(lambda: launcher.spool('failed'), 600, 'the hand-over')
    entry = launcher.spool_entry('failed', launcher.spool('failed')[0])
    assert 'handed over to a person' in entry['failed_reason'] and entry['attempts'] == 1
    record = records(store)[0]
    assert record['runs'][-1]['outcome'] == 'lost'
    outbox = []
    with open(os.path.join(store, 'outbox', 'notifications.jsonl'), encoding='utf-8') as handle:
        outbox = [json.loads(line) for line in handle if line.strip()]
    handed_over(record, outbox)
    assert kube.get(*POLICY) is not None and kube.get('apps/v1', 'Deployment', NS, 'slurm-exporter')['spec']['replicas'] == 0


def test_per_collector_alerts_open_one_incident_and_run_the_plan_once(tmp_path, kube, launchers):
    """API errors on 5 collectors and a network partition alert on the same exporter: one api_failure incident with
    the partition as a related alert, one response run; the other alerts wait for it and attach."""
    launcher = launcher_for(tmp_path, kube, launchers, correlated=True)
    starts = now_ts()
    alerts = [alert('ae%04d' % number, starts=starts, alertname='SlurmExporterCollectorAPIErrors', incident_type='api_failure',
                    collector=collector) for number, collector in enumerate(['jobs', 'nodes', 'partitions', 'qos', 'users'])]
    alerts.append(alert('ae9999', starts=starts, alertname='SlurmExporterNetworkPartition', incident_type='network_partition'))
    assert launcher.post(payload(*alerts)).json()['accepted'] == 6
    wait_for(lambda: len(launcher.spool('done')) + len(launcher.spool('failed')) == 6, 900, 'six runs')
    assert not launcher.spool('failed')
    found = records(str(tmp_path / 'store'))
    assert len(found) == 1
    record = found[0]
    assert record['type'] == 'api_failure' and len(record['alerts']) == 6
    assert [item.get('related_type') for item in record['alerts']].count('network_partition') == 1
    assert len(record['runs']) == 1 and record['runs'][0]['outcome'] == 'completed'
    assert len([entry for entry in record['timeline'] if entry['message'].startswith('Correlated with this incident')]) == 5


def test_ten_slowness_alerts_raise_the_limits_once_within_the_ceiling(tmp_path, kube, launchers, endpoints):
    launcher = launcher_for(tmp_path, kube, launchers, correlated=True,
                            settings={'incident_exporter_health_url': endpoints.url + '/health', 'incident_prometheus_url': endpoints.url})
    starts = now_ts()
    alerts = [alert('5e%04d%d' % (number, rule), starts=starts, alertname=name, incident_type='performance_degradation',
                    collector='c%d' % number)
              for number in range(5) for rule, name in enumerate(['SlurmExporterCollectorSlow', 'SlurmExporterScrapeSlow'])]
    before = kube.get('apps/v1', 'Deployment', NS, 'slurm-exporter')['spec']['template']['spec']['containers'][0]['resources']['limits']
    kube.clear_requests()
    assert launcher.post(payload(*alerts)).json()['accepted'] == 10
    wait_for(lambda: len(launcher.spool('done')) + len(launcher.spool('failed')) == 10, 900, 'ten runs')
    assert not launcher.spool('failed')
    assert len(records(str(tmp_path / 'store'))) == 1
    updates = [entry for entry in kube.writes() if entry['method'] == 'PUT' and entry['path'].endswith('/deployments/slurm-exporter')]
    assert len(updates) == 1
    after = kube.get('apps/v1', 'Deployment', NS, 'slurm-exporter')['spec']['template']['spec']['containers'][0]['resources']['limits']
    assert after != before
    from ansible_collections.slurm_exporter.incident_response.plugins.module_utils.response import parse_quantity  # pylint: disable=import-outside-toplevel
    assert parse_quantity(after['cpu']) <= min(2.0, 2 * parse_quantity(before['cpu']))
