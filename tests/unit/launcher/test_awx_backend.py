# -*- coding: utf-8 -*-
# Copyright: contributors to slurm_exporter.incident_response
# GNU General Public License v3.0+ (see COPYING or https://www.gnu.org/licenses/gpl-3.0.txt)
# SPDX-License-Identifier: GPL-3.0-or-later
"""The AWX backend against the fake AWX: launch, follow, 429 Retry-After, 5xx, contract errors, resume."""

from __future__ import annotations

import base64
import json

import pytest

from incident_launcher.backends import AwxBackend, RunContext
from incident_launcher.config import build

from tests.alerts import alert, payload
from tests.fakes.awx import FakeAwx


@pytest.fixture
def awx():
    server = FakeAwx(polls=2)
    try:
        yield server
    finally:
        server.stop()


def backend(awx, template=7, token=None, sleeps=None, **extra):
    config = build({'auth': {'allow_anonymous': True}, 'backend': 'awx',
                    'awx': dict({'url': awx.url, 'token': token or awx.token, 'job_template_id': template, 'poll_interval': 0.0,
                                 'max_retries': 2}, **extra)})
    sleeps = [] if sleeps is None else sleeps
    return AwxBackend(config, sleep=sleeps.append)


def entry(**extra):
    document = {'id': '%020d-000000-aa01' % 1, 'payload': payload(alert('aa01', injected="{{ lookup('pipe', 'id') }}"))}
    document.update(extra)
    return document


def context(saved=None):
    saved = [] if saved is None else saved
    return RunContext('/nonexistent/alert.json', '/nonexistent', lambda: False, lambda item: saved.append(dict(item)))


def test_launch_and_follow(awx):
    awx.add_template(7)
    saved = []
    item = entry()
    result = backend(awx).run(item, context(saved))
    assert result.ok and result.details['awx_job'] == item['awx_job'] == saved[0]['awx_job']
    launch = awx.launches()[0]
    assert launch['path'] == '/api/v2/job_templates/7/launch/'
    assert launch['headers']['Authorization'] == 'Bearer %s' % awx.token
    extra_vars = launch['body']['extra_vars']
    assert set(extra_vars) == {'alert_payload_b64'}
    # base64: nothing in extra vars that a template engine could evaluate; the playbook decodes it as data
    assert '{{' not in json.dumps(extra_vars)
    assert json.loads(base64.b64decode(extra_vars['alert_payload_b64'])) == item['payload']
    assert [entry['path'] for entry in awx.received('GET')] == ['/api/v2/jobs/%d/' % item['awx_job']] * 2


def test_429_is_retried_after_retry_after(awx):
    awx.add_template(7)
    awx.script('POST', '/api/v2/job_templates/7/launch/', [(429, {'Retry-After': '3'}, {'detail': 'Request was throttled.'}),
                                                           (503, {}, {'detail': 'unavailable'})])
    sleeps = []
    result = backend(awx, sleeps=sleeps).run(entry(), context())
    assert result.ok and len(awx.launches()) == 3
    assert sleeps[0] == 3.0


def test_retries_are_bounded(awx):
    awx.add_template(7)
    awx.script('POST', '/api/v2/job_templates/7/launch/', [(502, {}, {'detail': 'bad gateway'})] * 5)
    result = backend(awx).run(entry(), context())
    assert not result.ok and result.retryable and 'after 3 attempts' in result.reason and len(awx.launches()) == 3


@pytest.mark.parametrize('template, token, status, words', [
    (99, None, 404, 'Not found'),
    (8, None, 400, 'cannot accept variables'),
    (7, 'wrong-token', 401, 'Invalid token'),
])
def test_contract_errors_are_not_retried(awx, template, token, status, words):
    awx.add_template(7)
    awx.add_template(8, ask_variables_on_launch=False)
    result = backend(awx, template=template, token=token).run(entry(), context())
    assert not result.ok and not result.retryable
    assert result.details['status'] == status and words in result.reason
    assert len(awx.launches()) == 1
    assert (token or awx.token) not in result.reason


def test_a_failed_job_is_reported_and_cleared(awx):
    awx.add_template(7, outcome=lambda extra_vars: 'failed')
    result = backend(awx).run(entry(), context())
    assert not result.ok and 'ended failed' in result.reason and result.details['clear_job']


def test_a_resumed_entry_follows_its_job_instead_of_launching_again(awx):
    awx.add_template(7)
    first = entry()
    backend(awx).run(first, context())
    result = backend(awx).run(entry(awx_job=first['awx_job']), context())
    assert result.ok and len(awx.launches()) == 1


def test_job_timeout(awx):
    awx.add_template(7)
    awx.polls = 10 ** 6
    result = backend(awx, job_timeout=1, poll_interval=0.0).run(entry(), context())
    assert not result.ok and 'still running' in result.reason
