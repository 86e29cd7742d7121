# -*- coding: utf-8 -*-
# Copyright: contributors to slurm_exporter.incident_response
# GNU General Public License v3.0+ (see COPYING or https://www.gnu.org/licenses/gpl-3.0.txt)
# SPDX-License-Identifier: GPL-3.0-or-later

from __future__ import annotations

DOCUMENTATION = r'''
name: unresolved_modules
short_description: The modules a task file uses that cannot be loaded here
version_added: 0.1.0
description:
  - Reads task files (and the files they include or import by a literal path) and returns, for every task whose module or
    action cannot be resolved in this environment (a collection that is not installed, a misspelt name), the task and the
    reason ansible-core gives.
  - ansible-playbook stops the whole run, without any rescue, when it includes a file with such a task. The response role
    asks this lookup before each action, so that an action that cannot run fails as an ordinary, recorded failure and the
    incident is handed over (compensation, notification, escalation) instead of the run dying after a destructive step.
author:
  - slurm_exporter incident response maintainers (@slurm-exporter)
options:
  _terms:
    description: Paths of task files (YAML).
    type: list
    elements: path
    required: true
'''

EXAMPLES = r'''
- name: Refuse to start an action whose modules cannot be loaded
  ansible.builtin.assert:
    that: unresolved | length == 0
    fail_msg: "{{ unresolved | join('; ') }}"
  vars:
    unresolved: "{{ lookup('slurm_exporter.incident_response.unresolved_modules', role_path ~ '/tasks/actions/rotate_tls.yml', wantlist=True) }}"
'''

RETURN = r'''
_raw:
  description: One entry per task that cannot be resolved - the file, the task's name and ansible-core's reason.
  type: list
  elements: str
'''

import os  # noqa: E402

from ansible.errors import AnsibleError, AnsibleParserError  # noqa: E402
from ansible.parsing.mod_args import ModuleArgsParser  # noqa: E402
from ansible.plugins.lookup import LookupBase  # noqa: E402

BLOCK_KEYS = ('block', 'rescue', 'always')
INCLUDES = ('ansible.builtin.include_tasks', 'ansible.builtin.import_tasks', 'include_tasks', 'import_tasks')


def _tasks(data):
    """Every task of a task list, blocks flattened."""
    for item in data or []:
        if not isinstance(item, dict):
            continue
        if any(key in item for key in BLOCK_KEYS):
            for key in BLOCK_KEYS:
                yield from _tasks(item.get(key))
        else:
            yield item


def _included(task):
    """The literal path a task includes or imports, else None (a templated path is decided at run time)."""
    for key in INCLUDES:
        if key in task:
            value = task[key]
            target = value.get('file') if isinstance(value, dict) else value
            if isinstance(target, str) and '{{' not in target:
                return target
    return None


class LookupModule(LookupBase):
    def run(self, terms, variables=None, **kwargs):
        found = []
        seen = set()
        pending = [os.path.abspath(str(term)) for term in terms]
        while pending:
            path = pending.pop(0)
            if path in seen:
                continue
            seen.add(path)
            if not os.path.isfile(path):
                raise AnsibleError('unresolved_modules: %s is not a file' % path)
            data = self._loader.load_from_file(path)
            for task in _tasks(data if isinstance(data, list) else []):
                target = _included(task)
                if target is not None:
                    pending.append(os.path.normpath(os.path.join(os.path.dirname(path), target)))
                    continue
                try:
                    ModuleArgsParser(task_ds=dict(task)).parse()
                except AnsibleParserError as exc:
                    reason = str(exc.message if hasattr(exc, 'message') else exc).splitlines()[0]
                    found.append('%s: task %r: %s' % (os.path.basename(path), task.get('name', '?'), reason))
        return found
