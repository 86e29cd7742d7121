# -*- coding: utf-8 -*-
# Copyright: contributors to slurm_exporter.incident_response
# GNU General Public License v3.0+ (see COPYING or https://www.gnu.org/licenses/gpl-3.0.txt)
# SPDX-License-Identifier: GPL-3.0-or-later
"""Every variable documented as a setting takes effect from the inventory.

Play variables, role ``vars/`` and ``set_fact`` outrank inventory ``group_vars``: a default written there silently
wins over what the user set (``chaos_cron: "0 10 * * 2"`` in inventories/lab became ``@weekly``). The documented
settings are collected from the roles' argument specs and the variable tables of docs/*.md; then

- every playbook of the collection is loaded by ansible-playbook with an inventory that sets each of them to a marker
  value, and a callback reads, at the start of each play, the value the play sees (role defaults and vars, play
  vars, inventory, as ansible-core combines them) and nothing runs;
- no task, block, role ``vars/`` file or ``set_fact`` of the shipped roles and playbooks assigns a documented
  setting, apart from the drill's documented overrides;
- the chaos settings of the issue are set in an inventory and change what the playbook renders and targets.
"""

from __future__ import annotations

import glob
import json
import os
import re
import textwrap

import pytest
import yaml

from tests.conftest import REPO_ROOT, run_playbook

pytestmark = pytest.mark.integration

# Parameters of one run, not settings (extra vars, or set by the playbook that includes the role).
RUN_PARAMETERS = re.compile(r'^(response_|alert_|incident_drill$|incident_id$|incident_record$)')


def documented_settings():
    """name -> where it is documented."""
    found = {}
    for path in glob.glob(os.path.join(REPO_ROOT, 'roles', '*', 'meta', 'argument_specs.yml')):
        with open(path, encoding='utf-8') as handle:
            specs = yaml.safe_load(handle)['argument_specs']
        for entry in specs.values():
            for name in entry.get('options') or {}:
                found.setdefault(name, os.path.relpath(path, REPO_ROOT))
    for path in glob.glob(os.path.join(REPO_ROOT, 'docs', '*.md')):
        with open(path, encoding='utf-8') as handle:
            lines = handle.read().splitlines()
        in_table = False
        for line in lines:
            if re.match(r'^\|\s*variable\s*\|', line):
                in_table = True
                continue
            if in_table and not line.startswith('|'):
                in_table = False
            if in_table and not line.startswith('| ---'):
                first = line.split('|')[1]
                for name in re.findall(r'`([a-z][a-z0-9_]*)`', first):
                    found.setdefault(name, os.path.relpath(path, REPO_ROOT))
    return {name: where for name, where in found.items() if not RUN_PARAMETERS.match(name)}


SETTINGS = documented_settings()
PLAYBOOKS = sorted(os.path.basename(path)[:-4] for path in glob.glob(os.path.join(REPO_ROOT, 'playbooks', '*.yml')))

CALLBACK = '''
from __future__ import annotations
import json, os
from ansible.plugins.callback import CallbackBase

DOCUMENTATION = """
name: play_vars
type: aggregate
short_description: the value of each watched variable as every play sees it
description: [test helper]
"""


class CallbackModule(CallbackBase):
    CALLBACK_VERSION = 2.0
    CALLBACK_TYPE = 'aggregate'
    CALLBACK_NAME = 'play_vars'
    CALLBACK_NEEDS_ENABLED = True

    def v2_playbook_on_play_start(self, play):
        manager = play.get_variable_manager()
        host = manager._inventory.get_host('localhost')
        seen = manager.get_vars(play=play, host=host, include_hostvars=False)
        watched = json.loads(os.environ['PLAY_VARS_WATCHED'])
        with open(os.environ['PLAY_VARS_OUT'], 'a', encoding='utf-8') as handle:
            handle.write(json.dumps({'play': play.get_name(), 'values': {name: str(seen.get(name)) for name in watched}}) + '\\n')
'''


def marker(name):
    return 'from-inventory-%s' % name


def test_the_documented_settings_are_found():
    for name in ('chaos_cron', 'chaos_detect_within', 'chaos_respond_within', 'incident_store', 'incident_namespace',
                 'incident_escalation_tiers', 'deploy_image', 'controller_organization', 'incident_min_available_replicas'):
        assert name in SETTINGS, name
    assert len(SETTINGS) > 100


def test_every_play_sees_the_inventory_value_of_every_setting(tmp_path):
    plugins = tmp_path / 'callbacks'
    plugins.mkdir()
    (plugins / 'play_vars.py').write_text(textwrap.dedent(CALLBACK), encoding='utf-8')
    inventory = tmp_path / 'inventory'
    (inventory / 'group_vars' / 'all').mkdir(parents=True)
    (inventory / 'hosts.yml').write_text('all:\n  hosts:\n    localhost:\n      ansible_connection: local\n', encoding='utf-8')
    (inventory / 'group_vars' / 'all' / 'settings.yml').write_text(
        yaml.safe_dump({name: marker(name) for name in SETTINGS}), encoding='utf-8')
    wrapper = tmp_path / 'all.yml'
    wrapper.write_text(yaml.safe_dump([{'import_playbook': 'slurm_exporter.incident_response.%s' % name} for name in PLAYBOOKS]),
                       encoding='utf-8')
    out = tmp_path / 'seen.jsonl'
    # Nothing runs: no task carries the tag, and the role argument validation (tagged always) is skipped too.
    command_env = {'ANSIBLE_CALLBACK_PLUGINS': str(plugins), 'ANSIBLE_CALLBACKS_ENABLED': 'play_vars', 'PLAY_VARS_OUT': str(out),
                   'PLAY_VARS_WATCHED': json.dumps(sorted(SETTINGS)), 'ANSIBLE_RUN_TAGS': 'nothing-at-all', 'ANSIBLE_SKIP_TAGS': 'always'}
    run = run_playbook(str(wrapper), env=command_env, inventory=str(inventory))
    assert run.rc == 0, run
    with open(out, encoding='utf-8') as handle:
        plays = [json.loads(line) for line in handle]
    assert len(plays) >= len(PLAYBOOKS)
    shadowed = sorted('%s: %s = %s (documented in %s)' % (play['play'], name, value, SETTINGS[name])
                      for play in plays for name, value in play['values'].items() if value != marker(name))
    assert shadowed == []


# Assignments that are the documented behaviour: a drill acts in its drill namespace, opens no tickets and always
# resolves (docs/drills.md), whatever the inventory says.
INTENDED = {
    ('playbooks/drill.yml', 'incident_namespace'), ('playbooks/drill.yml', 'incident_ticket_webhook'),
    ('playbooks/drill.yml', 'incident_resolve_on_success'),
}


def assignments(node, where):
    """(file, variable) of every set_fact key, task/block/include vars key, register name and include_vars in a task list."""
    found = set()
    if isinstance(node, list):
        for item in node:
            found |= assignments(item, where)
    elif isinstance(node, dict):
        for key in ('ansible.builtin.set_fact', 'set_fact'):
            if isinstance(node.get(key), dict):
                found |= {(where, name) for name in node[key] if name != 'cacheable'}
        if isinstance(node.get('vars'), dict) and ('name' in node or 'block' in node):
            found |= {(where, name) for name in node['vars']}
        if isinstance(node.get('register'), str):
            found.add((where, node['register']))
        for key in ('ansible.builtin.include_vars', 'include_vars'):
            if key in node:
                found.add((where, '<include_vars>'))
        for key in ('block', 'rescue', 'always', 'tasks', 'pre_tasks', 'post_tasks', 'handlers'):
            if key in node:
                found |= assignments(node[key], where)
    return found


def test_no_task_or_role_vars_assign_a_documented_setting():
    found = set()
    for path in glob.glob(os.path.join(REPO_ROOT, 'roles', '*', 'tasks', '**', '*.yml'), recursive=True) + \
            glob.glob(os.path.join(REPO_ROOT, 'playbooks', '*.yml')):
        with open(path, encoding='utf-8') as handle:
            found |= assignments(yaml.safe_load(handle), os.path.relpath(path, REPO_ROOT))
    for path in glob.glob(os.path.join(REPO_ROOT, 'roles', '*', 'vars', '*.yml')):
        with open(path, encoding='utf-8') as handle:
            found |= {(os.path.relpath(path, REPO_ROOT), name) for name in yaml.safe_load(handle) or {}}
    clashes = sorted((where, name) for where, name in found if (name in SETTINGS or name == '<include_vars>') and (where, name) not in INTENDED)
    assert clashes == []


def test_chaos_settings_take_effect_from_the_inventory(kube, tmp_path):
    """The issue's case: chaos_cron, chaos_detect_within and chaos_respond_within (and the rest of docs/chaos.md's
    table) set in an inventory change the experiment, the Schedule and the targets."""
    inventory = tmp_path / 'inventory'
    (inventory / 'group_vars' / 'all').mkdir(parents=True)
    (inventory / 'hosts.yml').write_text(
        'all:\n  hosts:\n    localhost:\n      ansible_connection: local\n      ansible_python_interpreter: "{{ ansible_playbook_python }}"\n',
        encoding='utf-8')
    settings = {'incident_kubeconfig': kube.kubeconfig, 'incident_store': str(tmp_path / 'store'),
                'chaos_cron': '0 10 * * 2', 'chaos_detect_within': '7m', 'chaos_respond_within': '22m',
                'chaos_experiment': 'network_delay', 'chaos_duration': '3m', 'chaos_latency': '900ms', 'chaos_name': 'lab-delay',
                'chaos_selector': {'app': 'slurm-exporter', 'tier': 'metrics'}}
    (inventory / 'group_vars' / 'all' / 'chaos.yml').write_text(yaml.safe_dump(settings), encoding='utf-8')
    playbook = os.path.join(REPO_ROOT, 'playbooks', 'chaos.yml')

    run = run_playbook(playbook, check=True, inventory=str(inventory))
    assert run.rc == 0, run
    manifest = run.result('Chaos - the manifest')['ansible_facts']['chaos_manifest']
    assert (manifest['kind'], manifest['metadata']['name']) == ('NetworkChaos', 'lab-delay')
    assert manifest['spec']['duration'] == '3m' and manifest['spec']['delay']['latency'] == '900ms'
    assert manifest['spec']['selector']['labelSelectors'] == {'app': 'slurm-exporter', 'tier': 'metrics'}
    verdict = run.result('Chaos - verdict')['ansible_facts']['chaos_verdict']
    assert (verdict['detect_sla_seconds'], verdict['respond_sla_seconds']) == (420, 1320)

    (inventory / 'group_vars' / 'all' / 'schedule.yml').write_text(yaml.safe_dump({'chaos_schedule': True}), encoding='utf-8')
    scheduled = run_playbook(playbook, check=True, inventory=str(inventory))
    assert scheduled.rc == 0, scheduled
    schedule = scheduled.result('Chaos - the manifest')['ansible_facts']['chaos_manifest']
    assert (schedule['kind'], schedule['spec']['schedule']) == ('Schedule', '0 10 * * 2')

    # extra vars still win over the inventory
    override = run_playbook(playbook, check=True, inventory=str(inventory), extra_vars={'chaos_cron': '@daily'})
    assert override.result('Chaos - the manifest')['ansible_facts']['chaos_manifest']['spec']['schedule'] == '@daily'
