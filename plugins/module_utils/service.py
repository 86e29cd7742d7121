# -*- coding: utf-8 -*-
# Copyright: contributors to slurm_exporter.incident_response
# GNU General Public License v3.0+ (see COPYING or https://www.gnu.org/licenses/gpl-3.0.txt)
# SPDX-License-Identifier: GPL-3.0-or-later
"""Incident lifecycle operations over a store and a catalog.

Every operation validates all of its input before it takes the lock, computes the
new record in memory, and writes only when something changed and not in check
mode. Each returns a :class:`Outcome` with the record before and after.
"""

from __future__ import annotations

import copy
import functools

from ansible_collections.slurm_exporter.incident_response.plugins.module_utils.errors import ValidationError
from ansible_collections.slurm_exporter.incident_response.plugins.module_utils import correlation as corr
from ansible_collections.slurm_exporter.incident_response.plugins.module_utils import record as rec
from ansible_collections.slurm_exporter.incident_response.plugins.module_utils import runs as runs_mod
from ansible_collections.slurm_exporter.incident_response.plugins.module_utils import timeutil


class Outcome:
    """What an operation did."""

    def __init__(self, before, after, changed, created=False, attached=False, skipped=None, planned_id=None):
        self.planned_id = planned_id
        self.before = before
        self.after = after
        self.changed = changed
        self.created = created
        self.attached = attached
        self.skipped = skipped
        # open(): how the alerts were matched, and whether this payload's response runs the plan (and as which run).
        self.correlated = None
        self.run_plan = None
        self.plan_reason = None
        self.run = None

    def as_result(self):
        result = {
            'changed': self.changed,
            'created': self.created,
            'attached': self.attached,
            'id': (self.after or {}).get('id') or self.planned_id,
            'incident': self.after,
        }
        if self.skipped:
            result['skipped_reason'] = self.skipped
        if self.planned_id:
            result['planned'] = True
        if self.run_plan is not None:
            result.update(run_plan=self.run_plan, plan_reason=self.plan_reason, run=self.run, correlated=self.correlated)
        return result


def _transaction(operation):
    """Run the operation through ``store.run``: the file store runs it once (under its flock), the kubernetes store runs
    it again when a concurrent writer changed what it read (module_utils/kubestore.py)."""
    @functools.wraps(operation)
    def wrapper(self, *args, **kwargs):
        return self.store.run(lambda: operation(self, *args, **kwargs))
    return wrapper


class IncidentService:
    """Open, attach, update, acknowledge, escalate and resolve incidents."""

    def __init__(self, store, catalog, actor='automation', check_mode=False, clock=timeutil.utcnow):
        self.store = store
        if check_mode:
            # Check mode must not create the store, its lock file or anything else.
            store.read_only = True
        self.catalog = catalog
        self.actor = actor
        self.check_mode = check_mode
        self.clock = clock

    # -- helpers -------------------------------------------------------------------
    def _commit(self, before, after, operation):
        changed = before != after
        if changed and not self.check_mode:
            after = self.store.write(after, self.actor, operation, before)
        return changed, after

    def _read(self, incident_id):
        """The record, or None in check mode for the incident an earlier task of this run would open."""
        return self.store.read_or_planned(incident_id, self.clock())

    @staticmethod
    def _planned(incident_id):
        reason = 'check mode: incident %s would be opened by an earlier task of this run; this change would apply to it' % incident_id
        return Outcome(None, None, True, planned_id=incident_id, skipped=reason)

    def find_id(self, incident_id=None, fingerprint=None):
        """The id to act on: ``incident_id`` (validated) or the unresolved incident holding ``fingerprint``."""
        if incident_id:
            return rec.validate_id(incident_id)
        if not fingerprint:
            raise ValidationError("id (INC-YYYYMMDD-NNNN) or fingerprint is required")
        fingerprint = rec.validate_fingerprint(fingerprint)
        ids = self.store.find_open([fingerprint])
        if not ids:
            raise ValidationError("no open incident holds alert fingerprint %s" % fingerprint)
        return ids[0]

    def _alerts(self, alerts, now):
        if alerts is None:
            return []
        if not isinstance(alerts, list):
            raise ValidationError("alerts: expected a list of Alertmanager alerts, got %s" % type(alerts).__name__)
        return rec.normalise_alerts(alerts, now)

    def _classify(self, type_name, raw_alerts):
        if type_name:
            self.catalog.require_type(type_name)
            return type_name
        if not raw_alerts:
            raise ValidationError("type: required when no alerts are given (known types: %s)" % ', '.join(sorted(self.catalog.types)))
        kinds = {}
        for index, alert in enumerate(raw_alerts):
            kind, _reason = self.catalog.classify(alert)
            kinds.setdefault(kind, index)
        if len(kinds) > 1:
            raise ValidationError("alerts classify to different incident types (%s); open one incident per type"
                                  % ', '.join('alerts[%d] -> %s' % (index, kind) for kind, index in sorted(kinds.items(), key=lambda kv: kv[1])))
        return next(iter(kinds))

    # -- operations --------------------------------------------------------------------
    @_transaction
    def open(self, type_name=None, alerts=None, fingerprint=None, severity=None, drill=False, title=None,  # pylint: disable=too-many-arguments,too-many-locals
             summary=None, impact=None, edits=None, workload=None, correlation=None, claim_run=None):
        """Open an incident, or attach the alerts to the incident they belong to.

        Alerts belong to the unresolved incident holding one of their fingerprints; else, with ``workload``
        (``namespace/deployment``), to the incident that the correlation settings group them with (module_utils/
        correlation.py): an open one of the same or a related type, or a resolved one of the same type within the
        cool-down, which is reopened. ``claim_run`` (``{'deadline': seconds}``) decides whether this payload's response
        runs the plan (module_utils/runs.py) and, if so, records the run in the same write.
        """
        now = self.clock()
        entries = self._alerts(alerts, now)
        type_name = self._classify(type_name, alerts)
        if severity is not None:
            self.catalog.require_severity(severity)
        if workload is not None:
            corr.validate_workload(workload)
        config = corr.settings(correlation, self.catalog)
        if claim_run is not None and not isinstance(claim_run, dict):
            raise ValidationError('claim_run: expected a mapping such as {deadline: 3600}')
        fingerprints = [entry['fingerprint'] for entry in entries]
        if fingerprint:
            fingerprints.append(rec.validate_fingerprint(fingerprint))
        prepared_edits = self._prepare_edits(edits or {})
        firing = any(entry['status'] == 'firing' for entry in entries)
        with self.store.locked():
            index = self.store.related(fingerprints, workload, now, config['cooldown'])
            open_ids = self.store.find_open(fingerprints, index) if fingerprints else []
            how = 'fingerprint' if open_ids else None
            if not open_ids:
                handled = self._handled_by_resolved(entries, index)
                if handled is not None:
                    return self._resolution_of_handled(handled, entries, now)
                if not drill:
                    # A drill never joins a real incident (nor the reverse: corr.match skips drills).
                    found, how = corr.match(list(index.values()), type_name, workload, now, config, firing)
                    open_ids = [found] if found else []
            if open_ids:
                before = self.store.read(open_ids[0])
                after = copy.deepcopy(before)
                reopened = how == 'reopen'
                if reopened:
                    since = int((now - timeutil.parse_ts(before['resolved_at'])).total_seconds()) if before.get('resolved_at') else 0
                    rec.set_status(after, 'investigating', now, self.actor,
                                   'reopened: the alert fired again %ds after the incident resolved (correlation cool-down %ds); '
                                   'the changes already made are not repeated (flapping damping)' % (since, config['cooldown']))
                    after['resolved_at'] = None
                    after['resolution'] = None
                for entry in entries:
                    if how == 'related' and entry['fingerprint'] not in {a['fingerprint'] for a in after['alerts']}:
                        entry = dict(entry, related_type=type_name)
                    rec.merge_alert(after, entry, now, self.actor)
                if how in ('same_type', 'related') and entries:
                    rec.add_timeline(after, now, 'detection', 'alert', 'Correlated with this incident (%s on %s): %s' % (
                        'the same type' if how == 'same_type' else 'related type %s' % type_name, workload,
                        ', '.join(entry['labels'].get('alertname', entry['fingerprint']) for entry in entries)), self.actor,
                        {'correlation': how, 'workload': workload, 'type': type_name,
                         'fingerprints': [entry['fingerprint'] for entry in entries]})
                if workload and not after.get('workload'):
                    after['workload'] = workload
                self._auto_progress(after, now)
                self._apply_edits(after, prepared_edits, now)
                outcome = self._claim(before, after, claim_run, now, created=False, reopened=reopened)
                outcome.attached, outcome.correlated = True, how
                return outcome
            if entries and all(entry['status'] == 'resolved' for entry in entries):
                return Outcome(None, None, False, skipped='resolved alert(s) %s match no open incident; nothing to open'
                               % ', '.join(fingerprints))
            incident_id = self.store.next_id(now, index)
            after = rec.new_record(self.catalog, incident_id, type_name, now, severity=severity, drill=drill,
                                   title=title, summary=summary, impact=impact, actor=self.actor)
            if workload:
                after['workload'] = workload
            if fingerprint and not entries:
                entries = [rec.normalise_alert({'fingerprint': fingerprint, 'labels': {}}, now, 'fingerprint')]
            for entry in entries:
                rec.merge_alert(after, entry, now, self.actor)
            self._apply_edits(after, prepared_edits, now)
            outcome = self._claim(None, after, claim_run, now, created=True)
            outcome.created = True
            return outcome

    def _claim(self, before, after, claim_run, now, created, reopened=False):
        """Write the opened or attached record; with ``claim_run``, decide whether the plan runs and record the run."""
        run = None
        decision, reason = (None, None)
        if claim_run is not None:
            run_id = claim_run.get('id') or None
            decision, reason = runs_mod.plan_decision(after, now, created=created, reopened=reopened, run_id=run_id)
            if decision:
                run = runs_mod.new_run(now, self.actor, claim_run.get('deadline') or runs_mod.DEFAULT_DEADLINE, run_id)
                runs = after.setdefault('runs', [])
                resumed = [index for index, item in enumerate(runs) if item['id'] == run['id'] and item['outcome'] == 'running']
                if resumed:
                    run['started_at'] = runs[resumed[0]]['started_at']
                    runs[resumed[0]] = run
                    message = 'Response run %s resumed by %s (deadline %s)' % (run['id'], self.actor, run['deadline_at'])
                else:
                    runs.append(run)
                    message = 'Response run %s started by %s (%s; deadline %s)' % (run['id'], self.actor, reason, run['deadline_at'])
                del runs[:-runs_mod.MAX_RUNS]
                rec.add_timeline(after, now, 'triage', 'update', message, self.actor, {'run': run['id']})
        if before is None:
            if not self.check_mode:
                after = self.store.write(after, self.actor, 'open')
            outcome = Outcome(None, after, True)
        else:
            changed, after = self._commit(before, after, 'attach')
            outcome = Outcome(before, after, changed)
        outcome.run_plan, outcome.plan_reason, outcome.run = decision, reason, run
        return outcome

    def _resolution_of_handled(self, handled, entries, now):
        """The resolution of an alert the resolved incident handled is recorded; a resend of the firing alert changes nothing."""
        after = copy.deepcopy(handled)
        for entry in entries:
            if entry['status'] == 'resolved':
                rec.merge_alert(after, entry, now, self.actor)
        changed, after = self._commit(handled, after, 'attach')
        if changed:
            outcome = Outcome(handled, after, True, attached=True)
        else:
            outcome = Outcome(handled, handled, False, attached=True,
                              skipped='alert(s) %s belong to incident %s, which is resolved: the same firing (fingerprint and '
                                      'startsAt) is not opened twice' % (', '.join(entry['fingerprint'] for entry in entries),
                                                                         handled['id']))
        outcome.correlated, outcome.run_plan, outcome.plan_reason = 'fingerprint', False, 'the incident is resolved'
        return outcome

    def _handled_by_resolved(self, entries, index):
        """The resolved incident that already handled these very alerts (same fingerprint and startsAt), or None.

        Alertmanager resends a firing alert until it resolves, and a response replayed from a spool or a
        job queue sees the same payload again: neither is a new incident. An alert that fires again has a
        new startsAt and opens a new incident.
        """
        if not entries or any(not entry.get('startsAt') for entry in entries):
            return None
        for incident_id in self.store.find_resolved([entry['fingerprint'] for entry in entries], index):
            record = self._read(incident_id)
            if record is None:
                continue
            known = {(alert['fingerprint'], alert.get('startsAt')) for alert in record['alerts']}
            if all((entry['fingerprint'], entry['startsAt']) in known for entry in entries):
                return record
        return None

    def _auto_progress(self, record, now):
        """Operational incidents whose alerts all resolved move to monitoring; security ones never do, nor an incident
        whose response failed or waits for a person (it stays open and escalates)."""
        if not record['alerts'] or record['status'] in ('monitoring', 'resolved') or runs_mod.handed_over(record):
            return
        if not all(alert['status'] == 'resolved' for alert in record['alerts']):
            return
        if self.catalog.categories.get(record['category'], {}).get('auto_resolve', False):
            rec.set_status(record, 'monitoring', now, self.actor, 'all alerts resolved')

    def _change(self, incident_id, operation, change):
        """Read the record under the lock, apply ``change(record, now)`` to a copy and write it when it changed."""
        now = self.clock()
        rec.validate_id(incident_id)
        with self.store.locked():
            before = self._read(incident_id)
            if before is None:
                return self._planned(incident_id)
            after = copy.deepcopy(before)
            change(after, now)
            changed, after = self._commit(before, after, operation)
        return Outcome(before, after, changed)

    @_transaction
    def update(self, incident_id, edits=None):
        rec.validate_id(incident_id)
        prepared = self._prepare_edits(edits or {})
        return self._change(incident_id, 'update', lambda after, now: self._apply_edits(after, prepared, now))

    @_transaction
    def edit(self, incident_id, operation, change):
        """Apply ``change(record, now)`` under the lock and write the result (approvals, inbound notes: module_utils/approvals.py,
        people.py). ``change`` edits the record in place with the pure functions of those modules and may raise
        ValidationError, which leaves the record as it was."""
        return self._change(incident_id, operation, change)

    @_transaction
    def acknowledge(self, incident_id, reason=None):
        def change(after, now):
            if not after['acknowledged_at']:
                after['acknowledged_at'] = timeutil.format_ts(now)
                after['acknowledged_by'] = self.actor
                rec.add_timeline(after, now, 'triage', 'acknowledgement',
                                 'Acknowledged by %s%s' % (self.actor, ': %s' % reason if reason else ''), self.actor)
        return self._change(incident_id, 'acknowledge', change)

    @_transaction
    def escalate(self, incident_id, level=None, reason=None):
        """Raise the escalation level (to ``level``, or by one); a level already reached is a no-op."""
        now = self.clock()
        if level is not None and (not isinstance(level, int) or isinstance(level, bool) or level < 1):
            raise ValidationError("level: expected a positive integer, got %r" % (level,))
        rec.validate_id(incident_id)
        with self.store.locked():
            before = self._read(incident_id)
            if before is None:
                return self._planned(incident_id)
            after = copy.deepcopy(before)
            target = before['escalation_level'] + 1 if level is None else level
            if before['status'] == 'resolved':
                raise ValidationError("incident %s is resolved; it cannot be escalated" % incident_id)
            if target > before['escalation_level']:
                after['escalation_level'] = target
                after['escalation_due_at'] = timeutil.format_ts(self.catalog.escalation_due(after['severity'], now))
                rec.add_timeline(after, now, 'escalation', 'escalation',
                                 'Escalated to level %d%s' % (target, ': %s' % reason if reason else ''), self.actor,
                                 {'from': before['escalation_level'], 'to': target})
            changed, after = self._commit(before, after, 'escalate')
        return Outcome(before, after, changed)

    @_transaction
    def resolve(self, incident_id, resolution=None, root_cause=None, edits=None):
        now = self.clock()
        edits = dict(edits or {})
        edits['status'] = 'resolved'
        if resolution is not None:
            edits['resolution'] = resolution
        if root_cause is not None:
            edits['root_cause'] = root_cause
        rec.validate_id(incident_id)
        prepared = self._prepare_edits(edits)
        with self.store.locked():
            before = self._read(incident_id)
            if before is None:
                return self._planned(incident_id)
            after = copy.deepcopy(before)
            if before['status'] != 'resolved' and not (prepared.get('resolution') or before['resolution']):
                raise ValidationError("incident %s: resolving needs a resolution (what fixed it)" % incident_id)
            self._apply_edits(after, prepared, now)
            changed, after = self._commit(before, after, 'resolve')
        return Outcome(before, after, changed)

    def _end_run(self, record, run, now):
        """End a response run; a failed or lost run hands the incident over: its escalation is due now."""
        ended = runs_mod.end_run(record, run['id'], run['outcome'], now, run.get('reason'))
        if ended is None:
            raise ValidationError("run: incident %s has no response run %s" % (record['id'], run['id']))
        message = 'Response run %s %s' % (run['id'], run['outcome'])
        if run.get('reason'):
            message += ': %s' % run['reason']
        details = {'run': run['id'], 'outcome': run['outcome']}
        if run['outcome'] in ('failed', 'lost') and not record.get('drill') and record['status'] != 'resolved':
            stamp = timeutil.format_ts(now)
            if not record.get('escalation_due_at') or record['escalation_due_at'] > stamp:
                record['escalation_due_at'] = stamp
                details['escalation_due_at'] = stamp
                message += '. Handed over to a person; escalation is due now'
        rec.add_timeline(record, now, 'recovery' if run['outcome'] == 'completed' else 'escalation',
                         'update' if run['outcome'] == 'completed' else 'escalation', message, self.actor, details)

    @_transaction
    def lose_stale_runs(self, incident_id, reason='the run did not finish by its deadline (killed, or cut off by a time-out)'):
        """Mark the incident's runs that are past their deadline as lost (hand-over); returns the outcome."""
        def change(after, now):
            for run in runs_mod.stale_runs(after, now):
                self._end_run(after, {'id': run['id'], 'outcome': 'lost', 'reason': reason}, now)
        return self._change(incident_id, 'update', change)

    # -- edits -----------------------------------------------------------------------
    _TEXT_FIELDS = ('title', 'summary', 'impact', 'root_cause', 'resolution')

    def _prepare_edits(self, edits):
        """Validate edits up front, so that bad input fails before the lock and changes nothing."""
        prepared = {}
        for key in self._TEXT_FIELDS:
            value = edits.get(key)
            if value is not None:
                if not isinstance(value, str):
                    raise ValidationError("%s: expected a string" % key)
                if len(value) > rec.MAX_TEXT:
                    raise ValidationError("%s: longer than %d characters" % (key, rec.MAX_TEXT))
                prepared[key] = value
        status = edits.get('status')
        if status is not None:
            if status not in rec.STATUSES:
                raise ValidationError("status: unknown status %r; use one of: %s" % (status, ', '.join(rec.STATUSES)))
            prepared['status'] = status
            prepared['status_reason'] = edits.get('status_reason')
        for key, required in (('timeline', ('message',)), ('actions', ('name',)), ('evidence', ('path', 'sha256')),
                              ('notifications', ('channel',)), ('follow_ups', ('title',))):
            items = edits.get(key) or []
            if not isinstance(items, list):
                raise ValidationError("%s: expected a list" % key)
            for index, item in enumerate(items):
                if not isinstance(item, dict):
                    raise ValidationError("%s[%d]: expected a mapping" % (key, index))
                for field in required:
                    if not isinstance(item.get(field), str) or not item[field]:
                        raise ValidationError("%s[%d].%s: required (a non-empty string)" % (key, index, field))
                phase = item.get('phase')
                if phase is not None and phase not in rec.PHASES:
                    raise ValidationError("%s[%d].phase: unknown phase %r; use one of: %s" % (key, index, phase, ', '.join(rec.PHASES)))
                details = item.get('details')
                if details is not None and not isinstance(details, dict):
                    raise ValidationError("%s[%d].details: expected a mapping" % (key, index))
            prepared[key] = items
        for index, item in enumerate(prepared.get('actions', [])):
            if item.get('result') not in (None,) + rec.ACTION_RESULTS:
                raise ValidationError("actions[%d].result: expected one of %s" % (index, ', '.join(rec.ACTION_RESULTS)))
        for index, item in enumerate(prepared.get('evidence', [])):
            digest = item['sha256']
            if len(digest) != 64 or any(char not in '0123456789abcdefABCDEF' for char in digest):
                raise ValidationError("evidence[%d].sha256: expected 64 hexadecimal characters" % index)
        for index, item in enumerate(prepared.get('notifications', [])):
            if item.get('status') not in (None,) + rec.NOTIFICATION_STATUSES:
                raise ValidationError("notifications[%d].status: expected one of %s" % (index, ', '.join(rec.NOTIFICATION_STATUSES)))
        for index, item in enumerate(prepared.get('follow_ups', [])):
            if item.get('status') not in (None,) + rec.FOLLOW_UP_STATUSES:
                raise ValidationError("follow_ups[%d].status: expected one of %s" % (index, ', '.join(rec.FOLLOW_UP_STATUSES)))
        reports = edits.get('reports') or []
        if not isinstance(reports, list) or not all(isinstance(item, dict) and isinstance(item.get('kind'), str)
                                                    and isinstance(item.get('path'), str) for item in reports):
            raise ValidationError("reports: expected a list of mappings with kind and path")
        if reports:
            prepared['reports'] = reports
        run = edits.get('run')
        if run is not None:
            if not isinstance(run, dict) or not isinstance(run.get('id'), str) or not run['id']:
                raise ValidationError("run: expected a mapping with the run's id and its outcome")
            if run.get('outcome') not in runs_mod.RUN_OUTCOMES[1:]:
                raise ValidationError("run.outcome: expected one of %s, got %r" % (', '.join(runs_mod.RUN_OUTCOMES[1:]), run.get('outcome')))
            if run.get('reason') is not None and not isinstance(run['reason'], str):
                raise ValidationError("run.reason: expected a string")
            prepared['run'] = run
        extensions = edits.get('extensions') or {}
        if not isinstance(extensions, dict) or any(not isinstance(key, str) or not key.startswith('x_') for key in extensions):
            raise ValidationError("extensions: expected a mapping of fields whose names start with x_")
        if extensions:
            prepared['extensions'] = extensions
        for index, item in enumerate(prepared.get('timeline', [])):
            if item.get('kind') not in (None,) + rec.TIMELINE_KINDS:
                raise ValidationError("timeline[%d].kind: expected one of %s" % (index, ', '.join(rec.TIMELINE_KINDS)))
        return prepared

    def _apply_edits(self, record, edits, now):
        actor = self.actor
        for key in self._TEXT_FIELDS:
            if key in edits and record[key] != edits[key]:
                record[key] = edits[key]
                if key in ('root_cause', 'resolution'):
                    rec.add_timeline(record, now, 'lessons_learned' if key == 'root_cause' else 'recovery', key,
                                     '%s: %s' % (key.replace('_', ' ').capitalize(), edits[key]), actor)
        for entry in edits.get('timeline', []):
            rec.add_timeline(record, now, entry.get('phase') or 'investigation', entry.get('kind') or 'note',
                             entry['message'], entry.get('actor') or actor, entry.get('details'))
        for action in edits.get('actions', []):
            rec.upsert_action(record, action, now, actor)
        for evidence in edits.get('evidence', []):
            rec.add_evidence(record, evidence, now, actor)
        for notification in edits.get('notifications', []):
            rec.add_notification(record, notification, now, actor)
        for item in edits.get('follow_ups', []):
            rec.add_follow_up(record, item, now, actor)
        for report in edits.get('reports', []):
            rec.add_report(record, report, now, actor)
        for key, value in edits.get('extensions', {}).items():
            record[key] = value
        if 'run' in edits:
            self._end_run(record, edits['run'], now)
        if 'status' in edits:
            if edits['status'] == 'resolved' and record['status'] != 'resolved' and not record['resolution']:
                raise ValidationError("incident %s: resolving needs a resolution (what fixed it)" % record['id'])
            rec.set_status(record, edits['status'], now, actor, edits.get('status_reason'))
