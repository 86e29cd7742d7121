# -*- coding: utf-8 -*-
# Copyright: contributors to slurm_exporter.incident_response
# GNU General Public License v3.0+ (see COPYING or https://www.gnu.org/licenses/gpl-3.0.txt)
# SPDX-License-Identifier: GPL-3.0-or-later
"""The README's demo playbook runs and leaves a resolved incident with its audit trail."""

from __future__ import annotations

import json
import os

import pytest

from tests.conftest import REPO_ROOT, run_playbook

pytestmark = pytest.mark.integration


def test_demo_playbook(tmp_path):
    store = str(tmp_path / 'store')
    run = run_playbook(os.path.join(REPO_ROOT, 'playbooks', 'demo.yml'), env={'INCIDENT_RESPONSE_STORE': store})
    assert run.rc == 0, run
    incident_id = run.result('Detection - open the incident (or attach to the open one with the same fingerprint)')['id']
    with open(os.path.join(store, 'incident-%s.json' % incident_id), encoding='utf-8') as handle:
        record = json.load(handle)
    assert os.path.exists(os.path.join(store, 'reports', incident_id, 'report.html'))
    assert (record['type'], record['status'], record['drill']) == ('security_breach', 'resolved', True)
    assert record['alerts'][0]['fingerprint'] == '5e1f0c2b9a7d3e41'
    assert record['acknowledged_by'] == 'on-call engineer'
    with open(os.path.join(store, 'audit.log'), encoding='utf-8') as handle:
        operations = [json.loads(line)['operation'] for line in handle]
    assert operations[0] == 'open' and 'acknowledge' in operations and 'resolve' in operations
    assert [item['template'] for item in record['notifications']] == ['initial', 'status_update', 'resolution']
    assert all(item['channel'] == 'outbox' and item['status'] == 'sent' for item in record['notifications'])
    with open(os.path.join(store, 'outbox', 'notifications.jsonl'), encoding='utf-8') as handle:
        assert len(handle.readlines()) == 3
    assert {item['kind'] for item in record['reports']} == {'markdown', 'html'}
    message = run.result('Show the incident and where it is stored')['msg']
    assert any(store in line for line in message)
