# -*- coding: utf-8 -*-
# Copyright: contributors to slurm_exporter.incident_response
# GNU General Public License v3.0+ (see COPYING or https://www.gnu.org/licenses/gpl-3.0.txt)
# SPDX-License-Identifier: GPL-3.0-or-later
"""The collection as users get it: the built tarball, installed with the collections it declares, nothing else.

``ansible-galaxy collection build`` makes the tarball; the collections galaxy.yml declares are made into artifacts
from the copies the ``ansible`` package ships (Galaxy is not reachable here); ``ansible-galaxy collection install
--offline`` then resolves the tarball's declared dependencies against those artifacts into an empty collections path.
Everything afterwards runs from that install with ``ANSIBLE_COLLECTIONS_SCAN_SYS_PATH=false`` and that path only, in
a directory outside the checkout: the security breach, ``respond`` and the demo, against the emulated cluster. A
collection used but not declared is not installed, and its module cannot be resolved.
"""

from __future__ import annotations

import glob
import hashlib
import io
import json
import os
import subprocess
import sys
import tarfile
import time

import pytest
import yaml

from tests.conftest import COLLECTIONS_ROOT, REPO_ROOT, snapshot

pytestmark = [pytest.mark.integration, pytest.mark.xdist_group('install')]


def bundled_collection(name):
    """The directory of ``namespace.name`` as the ansible package installed it (never this checkout's link)."""
    import ansible_collections  # pylint: disable=import-outside-toplevel
    namespace, collection = name.split('.')
    for root in list(ansible_collections.__path__):
        if os.path.realpath(root).startswith(os.path.realpath(COLLECTIONS_ROOT)):
            continue
        path = os.path.join(root, namespace, collection)
        if os.path.isfile(os.path.join(path, 'MANIFEST.json')):
            return path
    raise AssertionError('%s is declared but not installed with the ansible package here' % name)


def artifact_from_installed(path, out_dir):
    """A collection artifact (what Galaxy serves) from an installed collection: its MANIFEST.json, FILES.json and
    files. The ansible package drops some files (tests, CI) from its collections, so FILES.json keeps the ones that
    are there, with their checksums, and MANIFEST.json the new FILES.json's checksum."""
    with open(os.path.join(path, 'MANIFEST.json'), encoding='utf-8') as handle:
        manifest = json.load(handle)
    with open(os.path.join(path, 'FILES.json'), encoding='utf-8') as handle:
        files = json.load(handle)
    files['files'] = [entry for entry in files['files'] if entry['name'] == '.' or os.path.lexists(os.path.join(path, entry['name']))]
    files_json = json.dumps(files, indent=True, sort_keys=True).encode()
    manifest['file_manifest_file']['chksum_sha256'] = hashlib.sha256(files_json).hexdigest()
    manifest_json = json.dumps(manifest, indent=True, sort_keys=True).encode()
    info = manifest['collection_info']
    target = os.path.join(out_dir, '%s-%s-%s.tar.gz' % (info['namespace'], info['name'], info['version']))
    with tarfile.open(target, 'w:gz', compresslevel=1) as tar:
        for name, data in (('MANIFEST.json', manifest_json), ('FILES.json', files_json)):
            member = tarfile.TarInfo(name)
            member.size, member.mode, member.mtime = len(data), 0o644, int(time.time())
            tar.addfile(member, io.BytesIO(data))
        for entry in files['files']:
            if entry['name'] != '.':
                tar.add(os.path.join(path, entry['name']), arcname=entry['name'], recursive=False)
    return target, info.get('dependencies') or {}


def user_env(collections_path, home, extra=None):
    """The environment of a user who installed the collection: no checkout, no ansible.cfg, no ANSIBLE_* settings of
    the test run, only ``collections_path`` for collections (the ansible package's copies are not scanned)."""
    env = {key: value for key, value in os.environ.items()
           if not key.startswith(('ANSIBLE_', 'K8S_AUTH_')) and key not in ('PYTHONPATH', 'INCIDENT_RESPONSE_STORE', 'XDG_CACHE_HOME')}
    env.update({'ANSIBLE_COLLECTIONS_PATH': collections_path, 'ANSIBLE_COLLECTIONS_SCAN_SYS_PATH': 'false', 'ANSIBLE_NOCOLOR': '1',
                'XDG_CACHE_HOME': os.path.join(home, 'cache'), 'PYTHONDONTWRITEBYTECODE': '1'})
    env.update(extra or {})
    return env


def run(command, cwd, env, timeout=600):
    return subprocess.run(command, cwd=str(cwd), env=env, capture_output=True, text=True, timeout=timeout, check=False)


@pytest.fixture(scope='module')
def installed(tmp_path_factory):
    """(collections path, the collection's directory, the collections installed) of a fresh install of the tarball."""
    work = tmp_path_factory.mktemp('install')
    dist, artifacts, path = work / 'dist', work / 'artifacts', work / 'collections'
    for directory in (dist, artifacts, path):
        directory.mkdir()
    env = user_env(str(path), str(work))
    built = run(['ansible-galaxy', 'collection', 'build', '--output-path', str(dist), REPO_ROOT], work, env)
    assert built.returncode == 0, built.stdout + built.stderr
    [tarball] = glob.glob(str(dist / '*.tar.gz'))
    with tarfile.open(tarball) as tar:
        declared = json.load(tar.extractfile('MANIFEST.json'))['collection_info']['dependencies']
    # what a Galaxy server would offer for the declared collections (and theirs), and nothing more
    wanted, offered = list(declared), {}
    while wanted:
        name = wanted.pop()
        if name not in offered:
            offered[name], dependencies = artifact_from_installed(bundled_collection(name), str(artifacts))
            wanted.extend(dependencies)
    install = run(['ansible-galaxy', 'collection', 'install', '--offline', '-p', str(path), tarball] + sorted(offered.values()), work, env)
    assert install.returncode == 0, install.stdout + install.stderr
    found = {'%s.%s' % tuple(manifest.split(os.sep)[-3:-1]) for manifest in glob.glob(str(path / 'ansible_collections' / '*' / '*' / 'MANIFEST.json'))}
    collection = path / 'ansible_collections' / 'slurm_exporter' / 'incident_response'
    return str(path), collection, found, declared


@pytest.fixture
def user(tmp_path, kube, installed):
    """A user's working directory with an inventory for the emulated cluster, and their environment."""
    collections_path = installed[0]
    inventory = tmp_path / 'inventory'
    (inventory / 'group_vars' / 'all').mkdir(parents=True)
    (inventory / 'hosts.yml').write_text(yaml.safe_dump({'all': {'hosts': {'localhost': {
        'ansible_connection': 'local', 'ansible_python_interpreter': '{{ ansible_playbook_python }}'}}}}), encoding='utf-8')
    (inventory / 'group_vars' / 'all' / 'response.yml').write_text(yaml.safe_dump({
        'incident_store': str(tmp_path / 'store'), 'incident_kubeconfig': kube.kubeconfig, 'incident_wait_timeout': 60,
        'incident_actor': 'on-call'}), encoding='utf-8')
    return tmp_path, user_env(collections_path, str(tmp_path))


def records(store):
    found = []
    for path in sorted(glob.glob(os.path.join(str(store), 'incident-INC-*.json'))):
        with open(path, encoding='utf-8') as handle:
            found.append(json.load(handle))
    return found


def test_the_install_holds_exactly_the_declared_collections(installed):
    _path, collection, found, declared = installed
    assert found == {'slurm_exporter.incident_response'} | set(declared)
    assert {'kubernetes.core', 'community.general', 'community.crypto', 'awx.awx'} <= set(declared)
    assert (collection / 'MANIFEST.json').is_file() and not (collection / 'galaxy.yml').exists()


def test_security_breach_from_the_install(user, installed):
    """The README's sequence in a user's directory: a sample alert, then the security breach response."""
    cwd, env = user
    sample = run(['ansible-playbook', 'slurm_exporter.incident_response.sample_alert'], cwd, env)
    assert sample.returncode == 0, sample.stdout + sample.stderr
    assert (cwd / 'alert.json').is_file()
    response = run(['ansible-playbook', 'slurm_exporter.incident_response.security_breach', '-i', 'inventory', '-e', 'alert_file=alert.json'],
                   cwd, env)
    assert response.returncode == 0, response.stdout[-6000:] + response.stderr[-3000:]
    [record] = records(cwd / 'store')
    # the response completed; this inventory has no SLURM controller, so the JWT key rotation is a person's and the
    # incident stays open for that person (docs/response.md)
    assert (record['type'], record['status']) == ('security_breach', 'investigating')
    results = {action['name']: action['result'] for action in record['actions']}
    # community.crypto (rotate_tls) and kubernetes.core came from the install's declared dependencies
    assert results['rotate_tls'] == 'success' and results['isolate_pods'] == 'success' and results['lift_isolation'] == 'success'
    assert results.pop('rotate_credentials') == 'needs_person' and set(results.values()) == {'success'}
    assert record['alerts'][0]['labels']['alertname'] == 'SlurmExporterAuthenticationFailures'


def test_respond_from_the_install(user, installed):
    cwd, env = user
    sample = run(['ansible-playbook', 'slurm_exporter.incident_response.sample_alert', '-e', 'sample_type=service_outage',
                  '-e', 'sample_dest=payload.json'], cwd, env)
    assert sample.returncode == 0, sample.stdout + sample.stderr
    response = run(['ansible-playbook', 'slurm_exporter.incident_response.respond', '-i', 'inventory', '-e', 'alert_file=payload.json'],
                   cwd, env)
    assert response.returncode == 0, response.stdout[-6000:] + response.stderr[-3000:]
    [record] = records(cwd / 'store')
    # completed; without health URLs in the inventory the recovery is unverified, so it waits in monitoring
    assert (record['type'], record['status']) == ('service_outage', 'monitoring')
    assert 'rollout_restart' in [action['name'] for action in record['actions']]
    assert not [action for action in record['actions'] if action['result'] == 'failed']


def test_demo_from_the_install_writes_nothing_into_it(user, installed):
    """``python3 <collection>/scripts/demo.py``: the response runs from the install, its files go to the user's cache,
    and the installed collection is byte for byte what it was (no output, no bytecode)."""
    cwd, env = user
    collection = installed[1]
    env = dict(env)
    env.pop('PYTHONDONTWRITEBYTECODE')  # the demo must keep its own bytecode out of the collection
    before = snapshot(collection)
    demo = run([sys.executable, str(collection / 'scripts' / 'demo.py'), '--timeout', '400'], cwd, env, timeout=480)
    assert demo.returncode == 0, demo.stdout[-6000:] + demo.stderr[-3000:]
    workdir = cwd / 'cache' / 'slurm_exporter.incident_response' / 'demo'
    [record] = records(workdir / 'incident-response')
    assert (record['type'], record['status']) == ('security_breach', 'investigating')  # the JWT rotation waits for a person
    assert str(workdir) in demo.stdout
    assert snapshot(collection) == before
    assert not glob.glob(str(collection / '**' / '__pycache__'), recursive=True)
