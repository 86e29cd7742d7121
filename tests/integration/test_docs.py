# -*- coding: utf-8 -*-
# Copyright: contributors to slurm_exporter.incident_response
# GNU General Public License v3.0+ (see COPYING or https://www.gnu.org/licenses/gpl-3.0.txt)
# SPDX-License-Identifier: GPL-3.0-or-later
"""The documentation's commands work as typed.

Every fenced shell block (bash, sh, shell, console) of README.md and docs/**/*.md is parsed; every command in it that
runs a playbook, the launcher, a rulebook or the demo is run as typed, in the order of its document, in a directory
that looks like the user's checkout (the inventories copied, the rest linked), against the emulated cluster. The
commands of the same documents that create the files the docs tell the user to create (``cp``, ``$EDITOR``,
``ansible-vault encrypt``, ``export``) are run too, so that a command relying on a file nobody told the user to create
fails here. A command that cannot run here is listed in NOT_RUN with the reason; a command added to the docs later is
covered without touching this file.

What stands in for the user's site (and is not in the docs): the kubeconfig (K8S_AUTH_KUBECONFIG, the emulator), the
vault password file (~/.vault-pass, HOME is the sandbox's), an editor that fills in vault.yml, and an inventory file
per inventory (group_vars/all/zz-site.yml) that points the store, Slack, PagerDuty, the ticket system, Prometheus and
the exporter's health URL at local fakes, and the SLURM controllers and slurmdbd host at a local fake SLURM
(tests/fakes/slurm.py: its scontrol and key files enforce the JWT rotation's contract).
"""

from __future__ import annotations

import collections
import glob
import grp
import json
import os
import pwd
import re
import shlex
import shutil
import subprocess
import sys

import pytest
import yaml

from tests.conftest import REPO_ROOT, ansible_env
from tests.fakes.endpoints import Endpoints
from tests.fakes.services import Services
from tests.fakes.slurm import FakeSlurm

pytestmark = pytest.mark.integration

SHELL_BLOCKS = ('bash', 'sh', 'shell', 'console')
FENCE_RE = re.compile(r'^```(?P<info>[^\n`]*)\n(?P<body>.*?)^```[ \t]*$', re.S | re.M)

# Commands that cannot run here, exactly as the docs write them, with the reason. A stale entry fails the test.
NOT_RUN = {
    'ansible-playbook slurm_exporter.incident_response.disaster_recovery -i inventories/production '
    '-e incident_backup_dir=/backups/slurm-exporter [-e alert_file=alert.json] [--check]':
        "a synopsis (optional arguments in brackets) naming the site's backup directory; test_disaster_recovery.py runs "
        'disaster_recovery on a backup of the upstream manifests, in check mode too, and test_rbac.py under the Role',
    'make setup demo':
        'installs system and Python packages (CI runs it: .ci/run); the demo itself is run by test_demo.py, and from the '
        'installed tarball by test_install.py',
    'ansible-playbook my-response.yml -e alert_file=/path/to/alertmanager-payload.json':
        "the user's own playbook (the README's example, writing to /var/incident-response); its tasks are the incident "
        'modules, run by test_incident_modules.py',
    'ansible-playbook slurm_exporter.incident_response.controller_config -e @controller-vars.yml --vault-password-file ~/.vault-pass':
        'needs AWX / Automation Controller; test_controller_config.py runs the playbook against tests/fakes/awx_controller.py',
    'ansible-rulebook -r slurm_exporter.incident_response.alertmanager -i inventories/production -e rulebook-vars.yml '
    '--vault-password-file ~/.vault-pass':
        'a long-running listener that needs Alertmanager to post to it; test_eda.py runs ansible-rulebook with this rulebook',
    'PYTHONPATH=extensions/launcher python -m incident_launcher --config /etc/incident-launcher/launcher.yml':
        'a long-running service with a host configuration (/etc, /var, port 10341); the launcher is run by test_launcher.py, '
        'the demo (test_demo.py) and the demo from the installed tarball (test_install.py)',
    'PYTHONPATH=extensions/launcher python -m incident_launcher --config launcher.yml --check-config':
        'validates a launcher.yml the user writes for their host (the example names /etc and /var paths); '
        'test_launcher.py checks configurations with --check-config',
    'ansible-playbook slurm_exporter.incident_response.chaos -i inventories/lab -e chaos_experiment=pod_kill':
        'waits for Prometheus and Alertmanager to detect the experiment and the framework to respond; test_chaos.py plays '
        "the framework's part",
    'INCIDENT_RESPONSE_STORE_BACKEND=kubernetes ansible-playbook slurm_exporter.incident_response.escalate':
        'needs the Incident CRD in the cluster (the deploy role installs it); test_cluster_store.py deploys it and runs '
        'playbooks with this variable against the emulated cluster',
    'ansible-playbook slurm_exporter.incident_response.chaos -i inventories/lab -e chaos_experiment=network_delay':
        'the same: needs the detection chain around the experiment (test_chaos.py)',
    'ansible-playbook slurm_exporter.incident_response.store_copy -i inventories/production -e store_copy_to=kubernetes --check':
        'needs the Incident CRD in the cluster and an existing file store to copy; test_store_copy_playbook.py runs the '
        'playbook file -> cluster -> file (and in check mode) against the emulated cluster',
    'ansible-playbook slurm_exporter.incident_response.store_copy -i inventories/production -e store_copy_to=kubernetes':
        'the same (test_store_copy_playbook.py)',
    'ansible-playbook slurm_exporter.incident_response.store_copy -e store_copy_from=kubernetes -e store_copy_to=file '
    '-e store_copy_to_dir=/srv/incident-archive':
        'the same, the other way (test_store_copy_playbook.py copies the cluster store back into a directory)',
}


Command = collections.namedtuple('Command', 'doc line text argv env')


def documents():
    paths = [os.path.join(REPO_ROOT, 'README.md')] + sorted(glob.glob(os.path.join(REPO_ROOT, 'docs', '**', '*.md'), recursive=True))
    return [os.path.relpath(path, REPO_ROOT) for path in paths]


def commands(doc):
    """Every command of the shell blocks of ``doc``: continuations joined, ``&&`` chains split, comments dropped."""
    with open(os.path.join(REPO_ROOT, doc), encoding='utf-8') as handle:
        text = handle.read()
    found = []
    for block in FENCE_RE.finditer(text):
        if block.group('info').strip().split(' ')[0] not in SHELL_BLOCKS:
            continue
        first_line = text[:block.start('body')].count('\n') + 1
        logical, start = '', None
        for offset, raw in enumerate(block.group('body').splitlines()):
            line = raw.rstrip()
            if start is None:
                start = first_line + offset
            if line.endswith('\\'):
                logical += line[:-1] + ' '
                continue
            logical += line
            for part in re.split(r'\s+&&\s+', logical.strip()):
                part = re.sub(r'^\$\s+', '', part)
                argv = shlex.split(part, comments=True)
                env = {}
                while argv and re.match(r'^[A-Za-z_][A-Za-z0-9_]*=', argv[0]):
                    key, value = argv.pop(0).split('=', 1)
                    env[key] = value
                if argv:
                    found.append(Command(doc, start, ' '.join(shlex.split(part, comments=True)), argv, env))
            logical, start = '', None
    return found


def runs_something(command):
    """A playbook, a rulebook, the launcher or the demo."""
    argv = command.argv
    return (argv[0] in ('ansible-playbook', 'ansible-rulebook')
            or (argv[0] in ('python', 'python3') and (argv[1:3] == ['-m', 'incident_launcher'] or argv[1].endswith('scripts/demo.py')))
            or (argv[0] == 'make' and 'demo' in argv[1:]))


def sets_something_up(command):
    """What the docs tell the user to do to have the files the commands need."""
    argv = command.argv
    return argv[0] in ('cp', '$EDITOR', 'export') or argv[:2] == ['ansible-vault', 'encrypt']


DOCS = [doc for doc in documents() if any(runs_something(command) for command in commands(doc))]


def test_the_docs_have_commands_and_not_run_is_current():
    everything = {command.text for doc in documents() for command in commands(doc) if runs_something(command)}
    assert len(everything) >= 20
    assert {'README.md', 'docs/response.md', 'docs/deploy.md', 'docs/drills.md', 'docs/escalation.md'} <= set(DOCS)
    stale = sorted(set(NOT_RUN) - everything)
    assert stale == [], 'NOT_RUN names commands that are no longer in the docs'
    assert ('ansible-playbook slurm_exporter.incident_response.security_breach -i inventories/production -e alert_file=alert.json'
            in everything)


class Sandbox:
    """The user's checkout, their home and their site, for the commands of one document."""

    def __init__(self, tmp_path, kube, services, endpoints):
        self.root = tmp_path
        self.work = tmp_path / 'work'
        self.home = tmp_path / 'home'
        self.kube = kube
        self.services = services
        self.endpoints = endpoints
        self.vault_password = 'docs-test vault password'
        self.work.mkdir()
        self.home.mkdir()
        for name in os.listdir(REPO_ROOT):
            if name.startswith('.') or name == 'inventories':
                continue
            os.symlink(os.path.join(REPO_ROOT, name), str(self.work / name))
        shutil.copytree(os.path.join(REPO_ROOT, 'inventories'), str(self.work / 'inventories'))
        (self.home / '.vault-pass').write_text(self.vault_password + '\n', encoding='utf-8')
        self.env = ansible_env({'HOME': str(self.home), 'XDG_CACHE_HOME': str(self.home / '.cache'), 'K8S_AUTH_KUBECONFIG': kube.kubeconfig,
                                'EDITOR': 'docs-test-editor'})
        self.env.pop('ANSIBLE_CONFIG')  # the checkout's ansible.cfg is in the current directory, as for the user
        self.site()

    def site(self):
        # The site's SLURM: controllers and slurmdbd as local hosts running a fake scontrol that enforces the JWT contract
        # (tests/fakes/slurm.py), where the production inventory names them.
        slurm = FakeSlurm(self.root / 'slurm')
        common = {'incident_wait_timeout': 60,
                  'incident_prometheus_url': self.endpoints.url, 'incident_exporter_health_url': self.endpoints.url + '/health'}
        production = dict(common, **{
            'incident_store': str(self.root / 'store-production'),
            'incident_slack': {'token': '{{ vault_slack_bot_token }}', 'api_url': self.services.url + '/api'},
            'incident_pagerduty': {'routing_keys': {'critical': '{{ vault_pagerduty_critical_key }}', 'high': '{{ vault_pagerduty_high_key }}'},
                                   'url': self.services.url + '/v2/enqueue'},
            'incident_ticket_webhook': {'url': self.endpoints.url + '/tickets', 'headers': {'Authorization': 'Bearer {{ vault_ticket_token }}'}},
            'deploy_wait_timeout': 60,
            'incident_scontrol': slurm.scontrol, 'incident_slurmdbd_jwt_key_path': slurm.slurmdbd_key_path,
            'incident_slurmdbd_restart_command': slurm.restart_command, 'incident_slurm_become': False,
            'incident_slurm_jwt_key_owner': pwd.getpwuid(os.getuid()).pw_name, 'incident_slurm_jwt_key_group': grp.getgrgid(os.getgid()).gr_name,
            # Nobody is at Slack to approve here: the production inventory's approval gates (docs/people.md) are proven
            # by tests/integration/test_people.py, a person's click included.
            'incident_approvals': {},
        })
        for inventory, settings in (('production', production), ('lab', common)):
            path = self.work / 'inventories' / inventory / 'group_vars' / 'all' / 'zz-site.yml'
            path.write_text('---\n# The docs test: where this site is (tests/integration/test_docs.py)\n' + yaml.safe_dump(settings), encoding='utf-8')
        host_vars = self.work / 'inventories' / 'production' / 'host_vars'
        host_vars.mkdir()
        for host in ('slurmctld-1.example.org', 'slurmctld-2.example.org', 'slurmdbd-1.example.org'):
            (host_vars / (host + '.yml')).write_text(yaml.safe_dump({
                'ansible_connection': 'local', 'ansible_python_interpreter': sys.executable}), encoding='utf-8')
        # A healthy exporter as Prometheus sees it (verify_health asks for up{job="slurm-exporter"}).
        self.endpoints.series['up{job="slurm-exporter"}'] = [({'job': 'slurm-exporter', 'instance': 'slurm-exporter:8080'}, 1)]
        # The namespace of the site's Prometheus (prometheus-operator), where inventories/production puts the rules.
        if not self.kube.get('v1', 'Namespace', None, 'monitoring'):
            self.kube.create({'apiVersion': 'v1', 'kind': 'Namespace', 'metadata': {'name': 'monitoring'}})
        # The objects the docs expect in the cluster: the known-good copy of the configuration (data_loss).
        live = self.kube.get('v1', 'ConfigMap', 'slurm-exporter', 'slurm-exporter-config')
        self.kube.create({'apiVersion': 'v1', 'kind': 'ConfigMap', 'data': dict(live['data']),
                          'metadata': {'name': 'slurm-exporter-config-known-good', 'namespace': 'slurm-exporter'}})

    def drill_namespace(self, namespace):
        """docs/drills.md: a drill namespace holds a copy of the exporter."""
        if self.kube.get('v1', 'Namespace', None, namespace):
            return
        self.kube.create({'apiVersion': 'v1', 'kind': 'Namespace', 'metadata': {'name': namespace}})
        deployment = self.kube.get('apps/v1', 'Deployment', 'slurm-exporter', 'slurm-exporter')
        deployment['metadata'] = {'name': 'slurm-exporter', 'namespace': namespace, 'labels': deployment['metadata'].get('labels', {})}
        deployment.pop('status', None)
        self.kube.create(deployment)

    def edit(self, path):
        """$EDITOR on vault.yml: every placeholder gets a value of its kind."""
        target = self.work / path
        values = yaml.safe_load(target.read_text(encoding='utf-8'))
        for key in values:
            if 'slack' in key:
                values[key] = self.services.slack_token
            elif key.startswith('vault_pagerduty'):
                values[key] = (key.encode().hex() * 4)[:32]
            else:
                values[key] = 'docs-test-%s-0123456789abcdef0123456789abcdef' % key
        target.write_text('---\n' + yaml.safe_dump(values), encoding='utf-8')

    def run(self, command):
        argv = [os.path.expanduser(word.replace('~', str(self.home), 1)) if word.startswith('~') else word for word in command.argv]
        env = dict(self.env, **command.env)
        if argv[0] == 'export':
            for assignment in argv[1:]:
                key, value = assignment.split('=', 1)
                self.env[key] = value.replace('~', str(self.home), 1) if value.startswith('~') else value
            return None
        if argv[0] == '$EDITOR':
            self.edit(argv[1])
            return None
        if argv[0] == 'cp':
            shutil.copyfile(str(self.work / argv[1]), str(self.work / argv[2]))
            return None
        if argv[:2] == ['ansible-vault', 'encrypt'] and 'ANSIBLE_VAULT_PASSWORD_FILE' not in env:
            # the user types the new vault password at ansible-vault's prompt
            argv = argv[:2] + ['--vault-password-file', str(self.home / '.vault-pass')] + argv[2:]
        for word in argv:
            match = re.match(r'^drill_namespace=(.+)$', word)
            if match:
                self.drill_namespace(match.group(1))
        if argv[0] in ('python', 'python3'):
            argv[0] = sys.executable
        # --ask-vault-pass reads the password from the terminal; there is none here, so it comes on stdin
        answer = self.vault_password + '\n' if '--ask-vault-pass' in argv else ''
        return subprocess.run(argv, cwd=str(self.work), env=env, input=answer, capture_output=True, text=True, timeout=900,
                              check=False, start_new_session=True)


@pytest.fixture
def sandbox(tmp_path, kube):
    services, endpoints = Services(), Endpoints()
    try:
        yield Sandbox(tmp_path, kube, services, endpoints)
    finally:
        services.stop()
        endpoints.stop()


def check_readme(sandbox):
    """The README's sequence ran in the user's checkout: the production inventory's vault was created and encrypted,
    the security breach and respond incidents are in the production store, Slack and PagerDuty were told, and the
    new JWT came from the SLURM controller's scontrol."""
    vault = sandbox.work / 'inventories' / 'production' / 'group_vars' / 'all' / 'vault.yml'
    assert vault.read_text(encoding='utf-8').startswith('$ANSIBLE_VAULT;')
    records = []
    for path in glob.glob(str(sandbox.root / 'store-production' / 'incident-INC-*.json')):
        with open(path, encoding='utf-8') as handle:
            records.append(json.load(handle))
    breach = [record for record in records if record['type'] == 'security_breach']
    # completed, in monitoring for a person (security incidents are never resolved by automation by default)
    assert breach and breach[0]['status'] == 'monitoring'
    assert not [action for action in breach[0]['actions'] if action['result'] == 'failed']
    outage = [record for record in records if record['type'] == 'service_outage']
    assert outage and outage[0]['status'] == 'resolved'  # verified through the site's Prometheus and health URL
    assert sandbox.services.received('/api/chat.postMessage') and sandbox.services.received('/v2/enqueue')
    rotated = [action for action in breach[0]['actions'] if action['name'] == 'rotate_credentials']
    assert rotated[0]['result'] == 'success' and 'scontrol token on slurmctld-1.example.org' in json.dumps(rotated[0])


def run_earlier():
    """doc -> the commands an earlier document (README first) already runs with the same set-up: run once. The sample
    alerts are the exception: what follows them reads their files."""
    seen, found = set(), {}
    for doc in DOCS:
        texts = {command.text for command in commands(doc) if runs_something(command) and 'sample_alert' not in command.text}
        found[doc] = texts & seen
        seen |= texts
    return found


RUN_EARLIER = run_earlier()

# What a document's commands must have done, beyond succeeding.
CHECKS = {'README.md': check_readme}


@pytest.mark.parametrize('doc', DOCS)
def test_commands_of(doc, sandbox):
    """The README is where a user starts: its set-up commands (the production vault) run before another document's."""
    prelude = [command for command in commands('README.md') if sets_something_up(command)] if doc != 'README.md' else []
    for command in prelude:
        sandbox.run(command)
    ran = []
    for command in commands(doc):
        if command.text in NOT_RUN or not (runs_something(command) or sets_something_up(command)):
            continue
        if command.text in RUN_EARLIER.get(doc, ()):
            continue
        process = sandbox.run(command)
        if process is None:
            continue
        assert process.returncode == 0, '%s:%d: %s\n%s\n%s' % (doc, command.line, command.text, process.stdout[-6000:], process.stderr[-3000:])
        ran.append(command.text)
    assert ran or all(command.text in NOT_RUN for command in commands(doc) if runs_something(command))
    if doc in CHECKS:
        CHECKS[doc](sandbox)
