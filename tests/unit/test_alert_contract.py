# -*- coding: utf-8 -*-
# Copyright: contributors to slurm_exporter.incident_response
# GNU General Public License v3.0+ (see COPYING or https://www.gnu.org/licenses/gpl-3.0.txt)
# SPDX-License-Identifier: GPL-3.0-or-later
"""One corpus of alerts (valid, malformed, hostile) through the three entry points: the same accept or reject everywhere.

- the webhook launcher: ``Launcher.intake`` (what POST /webhook runs once the request is authenticated and read);
- the EDA source: ``read_events`` (what its POST handler runs on the body);
- the incident record: ``IncidentService.open(alerts=...)`` (what the ``incident`` module runs with the payload's
  alerts, as the response playbooks pass them).

Each corpus entry is one or more alerts; the two webhook entry points get them in one payload built by
tests/alerts.py, the record gets the same alerts as parsed JSON. Accepted alerts must come out with the same
fingerprint everywhere; refused ones with the same reason from both webhooks.
"""

from __future__ import annotations

import io
import json
import os
import sys

import pytest

pytest.importorskip('aiohttp', reason='the EDA source needs aiohttp (requirements.txt)')

from ansible_collections.slurm_exporter.incident_response.extensions.eda.plugins.event_source import alertmanager as eda  # noqa: E402
from ansible_collections.slurm_exporter.incident_response.plugins.module_utils.catalog import load_catalog  # noqa: E402
from ansible_collections.slurm_exporter.incident_response.plugins.module_utils.errors import ValidationError  # noqa: E402
from ansible_collections.slurm_exporter.incident_response.plugins.module_utils.service import IncidentService  # noqa: E402
from ansible_collections.slurm_exporter.incident_response.plugins.module_utils.store import IncidentStore  # noqa: E402
from tests.alerts import alert, payload, security_alert  # noqa: E402
from tests.conftest import REPO_ROOT  # noqa: E402

sys.path.insert(0, os.path.join(REPO_ROOT, 'extensions', 'launcher'))
from incident_launcher.config import build  # noqa: E402  pylint: disable=wrong-import-position,wrong-import-order
from incident_launcher.log import JsonLogger  # noqa: E402  pylint: disable=wrong-import-position,wrong-import-order
from incident_launcher.server import Launcher  # noqa: E402  pylint: disable=wrong-import-position,wrong-import-order


def changed(item, **fields):
    return dict(item, **fields)


def without(item, *keys):
    return {key: value for key, value in item.items() if key not in keys}


def nested(depth):
    value = 'x'
    for _level in range(depth):
        value = [value]
    return value


CORPUS = [
    # valid
    ('a firing alert', [alert('c0001')], True),
    ('a resolved alert', [alert('c0002', status='resolved')], True),
    ('a security alert of a detection rule', [security_alert('c0003')], True),
    ('an upper-case fingerprint', [alert('C0004ABCDEF')], True),
    ('nanoseconds and a time zone offset', [alert('c0005', starts='2026-11-24T11:00:00.987654321+01:00')], True),
    ('no fingerprint: derived from the labels', [without(alert(), 'fingerprint')], True),
    ('no endsAt, no generatorURL, no annotations', [without(alert('c0007'), 'endsAt', 'generatorURL', 'annotations')], True),
    ('two alerts', [alert('c0008'), alert('c0009', status='resolved')], True),
    # hostile but valid: label values are data
    ('templates, shell and paths in label values',
     [alert('c000a', x="{{ lookup('pipe', 'id') }}", y='$(touch /tmp/pwned)', z='../../etc/passwd', namespace='kube-system')], True),
    ('a NUL and newlines in an annotation', [alert('c000b', annotations={'summary': 'a\x00b\nc\r\n'})], True),
    ('128 labels', [alert('c000c', **{'l%03d' % n: 'v' for n in range(126)})], True),
    ('labels of 16,384 characters', [alert('c000d', **{'l%03d' % n: 'v' * 16384 for n in range(50)})], True),
    # malformed
    ('startsAt is not a timestamp', [alert('c1001', starts='yesterday')], False),
    ('endsAt is a number', [changed(alert('c1002'), endsAt=17)], False),
    ('status pending', [alert('c1003', status='pending')], False),
    ('a fingerprint with a path', [alert('../../etc/passwd')], False),
    ('a fingerprint of 65 characters', [alert('a' * 65)], False),
    ('a fingerprint that is a number', [changed(alert(), fingerprint=1234)], False),
    ('a label name with a path', [alert('c1007', **{'../x': 'y'})], False),
    ('a label value that is a number', [changed(alert('c1008'), labels={'alertname': 'X', 'incident_type': 'service_outage', 'n': 1})], False),
    ('annotations that are a list', [changed(alert('c1009'), annotations=['x'])], False),
    ('labels that are a string', [changed(alert('c100a'), labels='incident_type=security_breach')], False),
    ('an alert that is a string', ['SlurmExporterDown'], False),
    ('a generatorURL of 5,000 characters', [changed(alert('c100c'), generatorURL='http://p/' + 'a' * 5000)], False),
    ('one bad alert among good ones', [alert('c100d'), alert('c100e', starts='noon')], False),
    # hostile
    ('a label value of 20,000 characters', [alert('c2001', big='x' * 20000)], False),
    ('200 labels', [alert('c2002', **{'l%03d' % n: 'v' for n in range(200)})], False),
    ('a label value nested 50 deep', [changed(alert('c2003'), labels={'alertname': 'X', 'deep': nested(50)})], False),
    ('1,001 alerts in one payload', [alert('%04x' % number) for number in range(1001)], False),
]


@pytest.fixture(scope='module')
def entry_points(tmp_path_factory):
    root = tmp_path_factory.mktemp('contract')
    config = build({'auth': {'bearer_token': 'contract-token'}, 'backend': 'record', 'spool': {'dir': str(root / 'spool'), 'max_pending': 100000},
                    'incident_store': str(root / 'launcher-store'), 'dedup_window': 0}, base_dir=str(root))
    launcher = Launcher(config, JsonLogger(stream=io.StringIO()))
    service = IncidentService(IncidentStore(str(root / 'store')), load_catalog(), actor='contract-test')
    return launcher, service


def through_launcher(launcher, body):
    status, answer = launcher.intake(body, '127.0.0.1')
    if status == 200:
        return True, sorted(entry_id.rsplit('-', 1)[1] for entry_id in answer['ids']), None
    return False, None, answer['reason']


def through_eda(body):
    try:
        events = eda.read_events(body)
    except eda.PayloadError as exc:
        return False, None, exc.reason
    return True, sorted(event['response']['fingerprint'] for event in events), None


def through_record(service, body):
    alerts = json.loads(body)['alerts']
    try:
        outcome = service.open(alerts=alerts)
    except ValidationError as exc:
        return False, None, str(exc)
    if outcome.after is None:  # resolved alerts of no open incident: accepted, nothing to open
        return True, None, None
    return True, sorted(entry['fingerprint'] for entry in outcome.after['alerts']), None


@pytest.mark.parametrize('name, alerts, valid', CORPUS, ids=[case[0] for case in CORPUS])
def test_the_same_corpus_gets_the_same_answer_everywhere(entry_points, name, alerts, valid):
    launcher, service = entry_points
    body = json.dumps(payload(*alerts)).encode()
    results = {'launcher': through_launcher(launcher, body), 'eda': through_eda(body), 'record': through_record(service, body)}
    accepted = {where: result[0] for where, result in results.items()}
    assert accepted == {'launcher': valid, 'eda': valid, 'record': valid}, (name, results)
    if valid:
        # the same fingerprints (lower-cased, or derived from the labels when absent) everywhere
        assert results['launcher'][1] == results['eda'][1], results
        if results['record'][1] is not None:
            assert set(results['eda'][1]) <= set(results['record'][1]), results
    else:
        assert results['launcher'][2] == results['eda'][2], results


@pytest.mark.parametrize('document, reason', [
    ({'alerts': [alert()]}, 'version'),
    (payload(version='3'), 'version'),
    (payload(alerts=[]), 'schema'),
    (payload(alerts={'0': alert()}), 'schema'),
    (payload(status='exploded'), 'schema'),
    (payload(receiver=['x']), 'schema'),
    (payload(commonLabels={'../x': 'y'}), 'schema'),
    ([payload()], 'schema'),
])
def test_the_payload_around_the_alerts_is_checked_alike_by_both_webhooks(entry_points, document, reason):
    launcher, _service = entry_points
    body = json.dumps(document).encode()
    assert through_launcher(launcher, body)[::2] == (False, reason)
    assert through_eda(body)[::2] == (False, reason)


@pytest.mark.parametrize('body, reason', [
    (b'{"version": "4", "alerts": [' + b'[' * 1000 + b']' * 1000 + b']}', 'too_deep'),
    (b'{"version": "4", "alerts": [', 'bad_json'),
    (b'\xff\xfe', 'bad_json'),
    (b'{"version": "4", "alerts": [{"status": NaN}]}', 'bad_json'),
])
def test_bodies_that_are_not_json_or_nest_too_deep(entry_points, body, reason):
    launcher, _service = entry_points
    assert through_launcher(launcher, body)[::2] == (False, reason)
    assert through_eda(body)[::2] == (False, reason)
