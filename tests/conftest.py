# -*- coding: utf-8 -*-
# Copyright: contributors to slurm_exporter.incident_response
# GNU General Public License v3.0+ (see COPYING or https://www.gnu.org/licenses/gpl-3.0.txt)
# SPDX-License-Identifier: GPL-3.0-or-later
"""Shared pytest fixtures: the collection on the import path, real ansible-playbook runs, the Kubernetes emulator.

The collection is exposed to Python and to ansible-playbook subprocesses through a
private collections root (``<tmp>/ansible_collections/slurm_exporter/incident_response``
-> this checkout), so tests always exercise this working tree whatever is
installed in ~/.ansible/collections.
"""

from __future__ import annotations

import hashlib
import importlib
import json
import os
import subprocess
import sys

import pytest

REPO_ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
sys.path.insert(0, REPO_ROOT)

from tests.collection_path import COLLECTIONS_ROOT, link_collection  # noqa: E402  pylint: disable=wrong-import-position
# The real control plane (tests/kube): its fixtures and the hooks that count the tests run against it.
from tests.kube.fixtures import (  # noqa: E402,F401  pylint: disable=wrong-import-position,unused-import
    pytest_runtest_logreport, pytest_terminal_summary, real_cluster, real_kube, real_namespace, uses_real_cluster)

link_collection()


def ansible_env(extra=None):
    """Environment for ansible-playbook subprocesses: this checkout first, explicit interpreter, quiet."""
    env = dict(os.environ)
    default_paths = [os.path.expanduser('~/.ansible/collections'), '/usr/share/ansible/collections']
    env.update({
        'ANSIBLE_COLLECTIONS_PATH': os.pathsep.join([COLLECTIONS_ROOT] + default_paths),
        'ANSIBLE_PYTHON_INTERPRETER': sys.executable,
        'ANSIBLE_CONFIG': os.path.join(REPO_ROOT, 'ansible.cfg'),
        'ANSIBLE_NOCOLOR': '1',
        'ANSIBLE_RETRY_FILES_ENABLED': '0',
        'ANSIBLE_LOCALHOST_WARNING': '0',
        'ANSIBLE_INVENTORY_UNPARSED_WARNING': '0',
        'PYTHONDONTWRITEBYTECODE': '1',
    })
    env.pop('INCIDENT_RESPONSE_STORE', None)
    if extra:
        env.update(extra)
    return env


class PlaybookRun:
    """Result of one ansible-playbook process run with the json stdout callback."""

    def __init__(self, process):
        self.process = process
        self.rc = process.returncode
        self.stdout = process.stdout
        self.stderr = process.stderr
        start = self.stdout.find('{')
        try:
            self.json = json.loads(self.stdout[start:]) if start >= 0 else {}
        except ValueError:
            self.json = {}

    def results(self, task_name):
        """Results of the task called ``task_name`` (one per host), in play order."""
        found = []
        for play in self.json.get('plays', []):
            for task in play.get('tasks', []):
                if task['task']['name'] == task_name:
                    found.extend(task['hosts'].values())
        if not found:
            raise AssertionError('no task named %r ran; rc=%s\nstdout:\n%s\nstderr:\n%s'
                                 % (task_name, self.rc, self.stdout[-4000:], self.stderr[-4000:]))
        return found

    def result(self, task_name):
        return self.results(task_name)[0]

    def failures(self):
        """``task name: message`` of every failed task (not ignored), in order."""
        found = []
        for play in self.json.get('plays', []):
            for task in play.get('tasks', []):
                for result in task['hosts'].values():
                    if result.get('failed') and not result.get('ignore_errors'):
                        found.append('%s: %s' % (task['task']['name'], result.get('msg')))
        return found

    def __repr__(self):
        failed = '\n'.join(self.failures())
        header = 'FAILED TASKS:\n%s\n' % failed if failed else ''
        return '<PlaybookRun rc=%s>\n%s%s\n%s' % (self.rc, header, self.stdout[-6000:], self.stderr[-3000:])


def write_playbook(directory, tasks, play_vars=None, module_defaults=None, name='playbook.yml'):
    """A one-play localhost playbook built from a list of task dicts (JSON is valid YAML)."""
    play = {
        'name': 'test play',
        'hosts': 'localhost',
        'connection': 'local',
        'gather_facts': False,
        'vars': dict(play_vars or {}),
        'tasks': tasks,
    }
    if module_defaults:
        play['module_defaults'] = module_defaults
    path = os.path.join(str(directory), name)
    with open(path, 'w', encoding='utf-8') as handle:
        json.dump([play], handle, indent=1)
    return path


def run_playbook(playbook, extra_vars=None, check=False, diff=False, env=None, timeout=300, inventory='localhost,',
                 popen=False):
    """Run ansible-playbook for real; returns PlaybookRun (or the Popen when ``popen``)."""
    command = ['ansible-playbook', '-i', inventory, playbook]
    if extra_vars:
        command += ['-e', json.dumps(extra_vars)]
    if check:
        command.append('--check')
    if diff:
        command.append('--diff')
    environment = ansible_env(env)
    environment['ANSIBLE_STDOUT_CALLBACK'] = 'ansible.builtin.json'
    environment['ANSIBLE_CALLBACK_RESULT_FORMAT'] = 'json'
    if popen:
        return subprocess.Popen(command, env=environment, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
                                cwd=REPO_ROOT)
    process = subprocess.run(command, env=environment, capture_output=True, text=True, timeout=timeout, cwd=REPO_ROOT,
                             check=False)
    return PlaybookRun(process)


def finish(popen, timeout=300):
    """Wait for a Popen from run_playbook(popen=True) and wrap it."""
    stdout, stderr = popen.communicate(timeout=timeout)
    return PlaybookRun(subprocess.CompletedProcess(popen.args, popen.returncode, stdout, stderr))


def launcher_module(name):
    """``incident_launcher.<name>`` from the checkout's extensions/launcher (the launcher's own code, unpatched)."""
    launcher_dir = os.path.join(REPO_ROOT, 'extensions', 'launcher')
    if launcher_dir not in sys.path:
        sys.path.insert(0, launcher_dir)
    return importlib.import_module('incident_launcher.' + name)


def snapshot(root):
    """Every file under ``root`` (relative path) with a digest of its content: compare two to prove nothing was written."""
    found = {}
    for directory, _dirs, files in os.walk(str(root)):
        for name in files:
            path = os.path.join(directory, name)
            with open(path, 'rb') as handle:
                found[os.path.relpath(path, str(root))] = hashlib.sha256(handle.read()).hexdigest()
    return found


@pytest.fixture
def store_dir(tmp_path):
    """A path for an incident store that does not exist yet."""
    return str(tmp_path / 'store')


@pytest.fixture
def kube(tmp_path):
    """The Kubernetes API emulator on a free loopback port, seeded with the slurm-exporter manifests.

    Yields the emulator; ``kube.kubeconfig`` is the path of a kubeconfig that points at it.
    """
    from tests.emulator import Emulator  # pylint: disable=import-outside-toplevel

    emulator = Emulator.start(seed=True)
    emulator.kubeconfig = emulator.write_kubeconfig(str(tmp_path / 'kubeconfig'))
    try:
        yield emulator
    finally:
        emulator.stop()


@pytest.fixture
def launchers():
    """Make launcher processes (tests/launcher_process.py): ``launchers(tmp_path, config, name=..., env=...)``; all stopped at the end."""
    from tests.launcher_process import LauncherProcess  # pylint: disable=import-outside-toplevel

    started = []

    def make(tmp_path, config, **kwargs):
        launcher = LauncherProcess(tmp_path, config, **kwargs)
        started.append(launcher)
        return launcher

    yield make
    for launcher in started:
        launcher.stop()
