# -*- coding: utf-8 -*-
# Copyright: contributors to slurm_exporter.incident_response
# GNU General Public License v3.0+ (see COPYING or https://www.gnu.org/licenses/gpl-3.0.txt)
# SPDX-License-Identifier: GPL-3.0-or-later
"""Each role documents every default, and every response plan names only known actions."""

from __future__ import annotations

import glob
import os
import re

import pytest
import yaml

from tests.conftest import REPO_ROOT

ROLE = os.path.join(REPO_ROOT, 'roles', 'response')


def load(*parts, role='response'):
    with open(os.path.join(REPO_ROOT, 'roles', role, *parts), encoding='utf-8') as handle:
        return yaml.safe_load(handle)


@pytest.mark.parametrize('role', ['response', 'deploy'])
def test_every_default_is_documented_with_the_same_default(role):
    defaults = load('defaults', 'main.yml', role=role)
    options = load('meta', 'argument_specs.yml', role=role)['argument_specs']['main']['options']
    assert set(defaults) <= set(options)
    for key, value in defaults.items():
        assert options[key].get('default') == value, key
        assert options[key]['description'], key


def test_plans_name_known_actions_and_every_action_has_a_task_file():
    known = load('vars', 'main.yml')['_response_known_actions']
    files = sorted(os.path.basename(p)[:-4] for p in glob.glob(os.path.join(ROLE, 'tasks', 'actions', '*.yml')))
    assert sorted(known) == files
    plans = glob.glob(os.path.join(ROLE, 'tasks', 'plans', '*.yml'))
    assert len(plans) == 12
    for plan in plans:
        with open(plan, encoding='utf-8') as handle:
            blocks = yaml.safe_load(handle)
        assert all(block['name'] in ('Containment', 'Investigation', 'Eradication', 'Recovery') for block in blocks), plan
        for block in blocks:
            for task in block['block']:
                assert task['vars']['response_action'] in known, (plan, task)


def test_one_playbook_per_plan():
    plans = {os.path.basename(p) for p in glob.glob(os.path.join(ROLE, 'tasks', 'plans', '*.yml'))}
    playbooks = {os.path.basename(p) for p in glob.glob(os.path.join(REPO_ROOT, 'playbooks', '*.yml'))}
    assert plans <= playbooks and 'respond.yml' in playbooks


@pytest.mark.parametrize('role', ['response', 'deploy'])
def test_every_option_is_read_somewhere(role):
    """An option documented in argument_specs or defaults that no task, template, playbook or plugin reads is a promise
    nothing keeps (incident_action_retry_interval was documented as flapping protection and read nowhere)."""
    options = set(load('meta', 'argument_specs.yml', role=role)['argument_specs']['main']['options'])
    options |= set(load('defaults', 'main.yml', role=role))
    declared = {os.path.join(REPO_ROOT, 'roles', role, 'defaults', 'main.yml'),
                os.path.join(REPO_ROOT, 'roles', role, 'meta', 'argument_specs.yml')}
    sources = []
    for pattern in ('roles/**/*.yml', 'roles/**/*.j2', 'playbooks/**/*.yml', 'templates/**/*.j2', 'plugins/**/*.py',
                    'extensions/**/*.yml', 'extensions/**/*.py'):
        for path in glob.glob(os.path.join(REPO_ROOT, pattern), recursive=True):
            if path not in declared:
                with open(path, encoding='utf-8') as handle:
                    sources.append(handle.read())
    text = '\n'.join(sources)
    unread = sorted(option for option in options if not re.search(r'(?<![A-Za-z0-9_])%s(?![A-Za-z0-9_])' % re.escape(option), text))
    assert unread == [], 'documented but read nowhere: %s' % ', '.join(unread)
