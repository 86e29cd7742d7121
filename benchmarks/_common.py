# -*- coding: utf-8 -*-
# Copyright: contributors to slurm_exporter.incident_response
# GNU General Public License v3.0+ (see COPYING or https://www.gnu.org/licenses/gpl-3.0.txt)
# SPDX-License-Identifier: GPL-3.0-or-later
"""Helpers shared by the benchmark scripts: the collection on sys.path, ansible-playbook's environment, the one-task
baseline playbook and a table printer."""

from __future__ import annotations

import os
import statistics
import sys
import time

REPO_ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))


def use_checkout():
    """Make ``ansible_collections.slurm_exporter.incident_response`` import from this checkout."""
    if REPO_ROOT not in sys.path:
        sys.path.insert(0, REPO_ROOT)
    from tests.collection_path import link_collection  # pylint: disable=import-outside-toplevel

    return link_collection()


def playbook_environment(collections, kubeconfig):
    """The environment of an ansible-playbook run against ``kubeconfig`` with the collection from ``collections``."""
    env = dict(os.environ)
    env.update({'ANSIBLE_COLLECTIONS_PATH': os.pathsep.join([collections, os.path.expanduser('~/.ansible/collections')]),
                'ANSIBLE_CONFIG': os.path.join(REPO_ROOT, 'ansible.cfg'), 'K8S_AUTH_KUBECONFIG': kubeconfig,
                'ANSIBLE_PYTHON_INTERPRETER': sys.executable, 'ANSIBLE_STDOUT_CALLBACK': 'ansible.builtin.json'})
    return env


def baseline_playbook(namespace):
    """The baseline of the playbook benchmarks: one kubernetes.core task reading the Deployment in ``namespace``."""
    return '''- name: Baseline - one kubernetes.core task
  hosts: localhost
  gather_facts: false
  vars:
    ansible_python_interpreter: "{{ ansible_playbook_python }}"
  tasks:
    - name: Read the deployment
      kubernetes.core.k8s_info:
        api_version: apps/v1
        kind: Deployment
        namespace: %s
        name: slurm-exporter
''' % namespace


def timed(func, repeat=5):
    """Median and minimum wall time of ``repeat`` calls, and the last return value."""
    samples = []
    value = None
    for _attempt in range(repeat):
        start = time.perf_counter()
        value = func()
        samples.append(time.perf_counter() - start)
    return statistics.median(samples), min(samples), value


def print_table(title, headers, rows):
    widths = [max(len(str(cell)) for cell in column) for column in zip(headers, *rows)]
    line = '+'.join('-' * (width + 2) for width in widths)
    print()
    print(title)
    print(line)
    print(' | '.join(str(cell).ljust(width) for cell, width in zip(headers, widths)))
    print(line)
    for row in rows:
        print(' | '.join(str(cell).ljust(width) for cell, width in zip(row, widths)))
    print(line)
