# -*- coding: utf-8 -*-
# Copyright: contributors to slurm_exporter.incident_response
# GNU General Public License v3.0+ (see COPYING or https://www.gnu.org/licenses/gpl-3.0.txt)
# SPDX-License-Identifier: GPL-3.0-or-later
from __future__ import annotations

import base64
import hashlib
import json
import os

import pytest

from ansible_collections.slurm_exporter.incident_response.plugins.module_utils import evidence
from ansible_collections.slurm_exporter.incident_response.plugins.module_utils.errors import ValidationError

PLANTED = 'planted-s3cr3t-value'


def test_scrub_secret_keeps_metadata_and_hashes_only():
    secret = {
        'metadata': {'name': 'slurm-credentials', 'namespace': 'ns', 'labels': {'a': 'b'}, 'annotations': {
            'kubectl.kubernetes.io/last-applied-configuration': json.dumps({'data': {'jwt-token': PLANTED}}), 'team': 'hpc'}},
        'type': 'Opaque',
        'data': {'jwt-token': base64.b64encode(PLANTED.encode()).decode(), 'empty': ''},
        'stringData': {'plain': PLANTED},
    }
    scrubbed = evidence.scrub_secret(secret)
    text = json.dumps(scrubbed)
    assert PLANTED not in text and base64.b64encode(PLANTED.encode()).decode() not in text
    assert scrubbed['keys'] == ['empty', 'jwt-token', 'plain']
    assert scrubbed['values']['jwt-token'] == {'sha256': hashlib.sha256(PLANTED.encode()).hexdigest(), 'size': len(PLANTED)}
    assert scrubbed['annotations'] == {'team': 'hpc'}


@pytest.mark.parametrize('name, safe', [('slurm-exporter-abc12', True), ('../../etc', False), ('a/b', False), ('UPPER', False), ('', False)])
def test_safe_component(name, safe):
    component = evidence.safe_component(name)
    assert (component == name) is safe
    assert '/' not in component and '..' not in component


def test_write_stream_limits_and_until(tmp_path):
    writer = evidence.BundleWriter(str(tmp_path / 'b'))
    lines = [b'2026-01-31T12:00:%02d.000000000Z line %d\n' % (n, n) for n in range(10)]
    entry = writer.write_stream('a.log', iter([b''.join(lines)]), 'src', limit=100)
    assert entry['size'] == 100 and entry['truncated'] == 'limit_bytes'
    # split across chunks at odd places; stop after 12:00:04
    blob = b''.join(lines)
    chunks = iter([blob[i:i + 7] for i in range(0, len(blob), 7)])
    entry = writer.write_stream('b.log', chunks, 'src', until=b'2026-01-31T12:00:04')
    with open(os.path.join(writer.root, 'b.log'), 'rb') as handle:
        assert handle.read() == b''.join(lines[:5])
    assert entry['truncated'] == 'until'
    entry = writer.write_stream('c.log', iter(lines), 'src')
    assert entry['truncated'] is False and entry['sha256'] == hashlib.sha256(blob).hexdigest()
    assert oct(os.stat(os.path.join(writer.root, 'c.log')).st_mode & 0o777) == '0o600'
    with pytest.raises(ValidationError, match='outside the bundle'):
        writer.write_json('../escape.json', {}, 'src')


def test_verify_reports_altered_missing_added(tmp_path):
    root = str(tmp_path / 'bundle')
    writer = evidence.BundleWriter(root)
    writer.write_json('one.json', {'a': 1}, 's')
    writer.write_json('two.json', {'b': 2}, 's')
    data = json.dumps({'files': writer.files}).encode()
    with open(os.path.join(root, evidence.MANIFEST), 'wb') as handle:
        handle.write(data)
    with open(os.path.join(root, evidence.DIGEST), 'w', encoding='utf-8') as handle:
        handle.write('%s  manifest.json\n' % hashlib.sha256(data).hexdigest())
    assert evidence.verify_bundle(root)['verified'] is True
    with open(os.path.join(root, 'one.json'), 'ab') as handle:
        handle.write(b' ')
    os.unlink(os.path.join(root, 'two.json'))
    with open(os.path.join(root, 'three.json'), 'w', encoding='utf-8') as handle:
        handle.write('{}')
    result = evidence.verify_bundle(root)
    assert (result['verified'], result['altered'], result['missing'], result['added']) == (False, ['one.json'], ['two.json'], ['three.json'])
    with open(os.path.join(root, evidence.MANIFEST), 'ab') as handle:
        handle.write(b'\n')
    assert evidence.verify_bundle(root)['manifest_sha256_ok'] is False
    with pytest.raises(ValidationError, match='neither an evidence bundle'):
        evidence.verify_bundle(str(tmp_path / 'nothing-here'))
