# -*- coding: utf-8 -*-
# Copyright: contributors to slurm_exporter.incident_response
# GNU General Public License v3.0+ (see COPYING or https://www.gnu.org/licenses/gpl-3.0.txt)
# SPDX-License-Identifier: GPL-3.0-or-later
"""The collection's metadata says what it really uses: dependencies, requirements.yml, the execution environment,
the action groups of meta/runtime.yml, version_added. (tests/integration/test_install.py installs the built tarball
with exactly the declared dependencies and runs it.)"""

from __future__ import annotations

import glob
import os
import re

import yaml

from tests.conftest import REPO_ROOT


def load_yaml(*parts):
    with open(os.path.join(REPO_ROOT, *parts), encoding='utf-8') as handle:
        return yaml.safe_load(handle)


GALAXY = load_yaml('galaxy.yml')
OWN = '%s.%s' % (GALAXY['namespace'], GALAXY['name'])
# namespace.name.plugin in YAML (modules, filters, groups, lookups), ansible_collections.namespace.name in Python
FQCN_RE = re.compile(r'(?<![\w.])([a-z][a-z0-9_]*)\.([a-z][a-z0-9_]*)\.[a-z_][a-z0-9_]*')
PY_IMPORT_RE = re.compile(r'ansible_collections\.([a-z][a-z0-9_]*)\.([a-z][a-z0-9_]*)\b')
# What the collection ships that runs in a user's Ansible: roles, playbooks, plugins, the EDA rulebooks.
SCANNED = ['roles/**/*.yml', 'roles/**/*.j2', 'playbooks/**/*.yml', 'plugins/**/*.py', 'plugins/**/*.yml',
           'extensions/eda/rulebooks/*.yml', 'templates/**/*.j2']


def installed_collections():
    """namespace.name of every collection Ansible can see here (the ansible package's bundle and the collection paths)."""
    import ansible_collections  # pylint: disable=import-outside-toplevel
    found = set()
    for root in list(ansible_collections.__path__):
        for manifest in glob.glob(os.path.join(root, '*', '*', 'MANIFEST.json')) + glob.glob(os.path.join(root, '*', '*', 'galaxy.yml')):
            parts = manifest.split(os.sep)
            found.add('%s.%s' % (parts[-3], parts[-2]))
    return found


def used_collections():
    """Collections referenced by FQCN anywhere in the shipped content, with one file that uses each."""
    known = installed_collections() | set(GALAXY['dependencies'])
    used = {}
    for pattern in SCANNED:
        for path in glob.glob(os.path.join(REPO_ROOT, pattern), recursive=True):
            with open(path, encoding='utf-8') as handle:
                text = handle.read()
            for match in list(FQCN_RE.finditer(text)) + list(PY_IMPORT_RE.finditer(text)):
                name = '%s.%s' % match.groups()
                if name in known and name not in (OWN, 'ansible.builtin', 'ansible.legacy'):
                    used.setdefault(name, os.path.relpath(path, REPO_ROOT))
    return used


def test_every_collection_used_is_declared_and_every_declared_one_is_used():
    used = used_collections()
    declared = set(GALAXY['dependencies'])
    undeclared = {name: where for name, where in used.items() if name not in declared}
    assert undeclared == {}, 'used but not in galaxy.yml dependencies: %s' % undeclared
    assert declared - set(used) == set(), 'declared in galaxy.yml but used nowhere'
    # the ones the issue found missing
    assert {'community.crypto', 'awx.awx', 'kubernetes.core', 'community.general'} <= declared


def test_requirements_yml_matches_galaxy_yml():
    requirements = load_yaml('requirements.yml')
    assert {item['name']: item['version'] for item in requirements['collections']} == GALAXY['dependencies']
    assert set(requirements) == {'collections'}


def test_execution_environment_installs_the_dependencies_and_the_built_tarball():
    definition = load_yaml('execution-environment.yml')
    assert definition['dependencies']['galaxy'] == 'requirements.yml'
    assert definition['dependencies']['python'] == 'requirements.txt' and definition['dependencies']['system'] == 'bindep.txt'
    tarball = '%s-%s-%s.tar.gz' % (GALAXY['namespace'], GALAXY['name'], GALAXY['version'])
    [build_file] = definition['additional_build_files']
    assert build_file == {'src': '.cache/ee/' + tarball, 'dest': 'collections'}
    [step] = definition['additional_build_steps']['append_galaxy']
    assert step.startswith('RUN ansible-galaxy collection install --offline --no-deps')
    assert step.endswith(' collections/' + tarball)
    text = yaml.safe_dump(definition)
    assert 'git' not in re.findall(r'type: (\w+)', text) and '.git' not in text


def test_python_requirements_cover_the_dependencies_modules():
    with open(os.path.join(REPO_ROOT, 'requirements.txt'), encoding='utf-8') as handle:
        names = {re.split(r'[<>=~!\s\[]', line.strip(), maxsplit=1)[0].lower() for line in handle if line.strip() and not line.startswith('#')}
    # kubernetes.core (kubernetes, jsonpatch for k8s_json_patch), community.crypto's *_pipe modules (cryptography)
    assert {'ansible-core', 'kubernetes', 'jsonpatch', 'cryptography', 'pyyaml', 'requests', 'ansible-runner'} <= names


def module_options():
    """Option names of every module, its doc fragments included."""
    fragments = {}
    for path in glob.glob(os.path.join(REPO_ROOT, 'plugins', 'doc_fragments', '*.py')):
        with open(path, encoding='utf-8') as handle:
            text = handle.read()
        doc = yaml.safe_load(re.search(r"DOCUMENTATION = r'''(.*?)'''", text, re.S).group(1))
        fragments['%s.%s' % (OWN, os.path.basename(path)[:-3])] = set(doc.get('options') or {})
    options = {}
    for path in glob.glob(os.path.join(REPO_ROOT, 'plugins', 'modules', '*.py')):
        with open(path, encoding='utf-8') as handle:
            doc = yaml.safe_load(re.search(r"DOCUMENTATION = r'''(.*?)'''", handle.read(), re.S).group(1))
        names = set(doc.get('options') or {})
        for fragment in doc.get('extends_documentation_fragment') or []:
            names |= fragments[fragment]
        options[doc['module']] = names
    return options


# What each action group stands for: the options its module_defaults set.
GROUP_OPTIONS = {
    'incident_response': {'store', 'lock_timeout', 'catalog'},
    'k8s': {'kubeconfig', 'context', 'host', 'api_key', 'validate_certs', 'ca_cert', 'request_timeout'},
}


def test_action_groups_hold_exactly_the_modules_that_accept_their_options():
    """ansible-core passes a group's module_defaults to every module of the group, and a module refuses an option it
    does not know: a group may only hold modules that accept its options, and must hold all of them."""
    groups = load_yaml('meta', 'runtime.yml')['action_groups']
    assert set(groups) == set(GROUP_OPTIONS)
    options = module_options()
    for group, wanted in GROUP_OPTIONS.items():
        members = set(groups[group])
        assert members <= set(options), 'unknown modules in %s' % group
        accepting = {name for name, names in options.items() if wanted <= names}
        assert members == accepting, (group, sorted(members ^ accepting))
    # the modules the issue found missing
    assert {'k8s_isolate', 'k8s_evidence', 'k8s_workload'} <= set(groups['k8s'])


def test_version_added_is_not_after_the_collection_version():
    version = tuple(int(part) for part in GALAXY['version'].split('.'))
    found = []
    for path in glob.glob(os.path.join(REPO_ROOT, 'plugins', '**', '*.*'), recursive=True):
        with open(path, encoding='utf-8') as handle:
            for added in re.findall(r'^\s*version_added:\s*[\'"]?([0-9.]+)', handle.read(), re.M):
                if tuple(int(part) for part in added.split('.')) > version:
                    found.append('%s: %s' % (os.path.relpath(path, REPO_ROOT), added))
    assert found == []
