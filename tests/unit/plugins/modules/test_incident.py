# -*- coding: utf-8 -*-
# Copyright: contributors to slurm_exporter.incident_response
# GNU General Public License v3.0+ (see COPYING or https://www.gnu.org/licenses/gpl-3.0.txt)
# SPDX-License-Identifier: GPL-3.0-or-later
"""The incident and incident_info modules in-process: exact results and failure messages."""

from __future__ import annotations

import json

import pytest

from ansible.module_utils.testing import patch_module_args

from ansible_collections.slurm_exporter.incident_response.plugins.modules import incident, incident_info


def call(module, args, capsys):
    """Run a module's main() with ``args``; returns (exit code, parsed JSON result)."""
    with patch_module_args(args):
        with pytest.raises(SystemExit) as info:
            module.main()
    return info.value.code, json.loads(capsys.readouterr().out)


def test_open_update_and_read(tmp_path, capsys):
    store = str(tmp_path / 'store')
    code, opened = call(incident, {'store': store, 'type': 'service_outage', 'summary': 'exporter down'}, capsys)
    assert code == 0 and opened['changed'] and opened['created'] and not opened['attached']
    assert opened['incident']['summary'] == 'exporter down'
    code, updated = call(incident, {'store': store, 'state': 'update', 'id': opened['id'], 'status': 'identified',
                                    'timeline': [{'text': 'found it'}]}, capsys)
    assert code == 0 and updated['incident']['status'] == 'identified'
    entry = updated['incident']['timeline'][-2]
    assert (entry['message'], entry['kind'], entry['phase'], entry['actor']) == ('found it', 'note', 'investigation', 'ansible')
    code, read = call(incident_info, {'store': store, 'id': opened['id']}, capsys)
    assert code == 0 and read['incident'] == updated['incident']
    code, listed = call(incident_info, {'store': store, 'status': ['identified'], 'limit': 5}, capsys)
    assert listed['count'] == 1 and listed['incidents'][0]['overdue'] is False


def test_diff_mode(tmp_path, capsys):
    store = str(tmp_path / 'store')
    code, result = call(incident, {'store': store, 'type': 'api_failure', '_ansible_diff': True}, capsys)
    assert code == 0
    assert result['diff']['before'] == '' and result['diff']['before_header'] == '(new incident)'
    assert json.loads(result['diff']['after'])['id'] == result['id']


def test_catalog_error_is_a_clean_failure(tmp_path, capsys):
    code, result = call(incident, {'store': str(tmp_path), 'type': 'api_failure',
                                   'catalog': {'severities': {'high': {'priority': 'urgent'}}}}, capsys)
    assert code == 1 and result['failed']
    assert result['msg'].startswith('incident_catalog.severities.high.priority: expected P1..P9')
    assert 'exception' not in result


@pytest.mark.parametrize('args, message', [
    ({'lock_timeout': 0}, 'lock_timeout: must be greater than zero'),
    ({'state': 'escalate', 'level': 2}, 'needs id'),
    ({'state': 'update', 'id': 'INC-1'}, 'is not an incident id'),
])
def test_argument_errors(tmp_path, capsys, args, message):
    code, result = call(incident, dict({'store': str(tmp_path / 's'), 'type': 'api_failure'}, **args), capsys)
    assert code == 1 and message in result['msg']
    assert not (tmp_path / 's').exists()


def test_limit_must_not_be_negative(tmp_path, capsys):
    code, result = call(incident_info, {'store': str(tmp_path), 'limit': -1}, capsys)
    assert code == 1 and 'limit' in result['msg']
