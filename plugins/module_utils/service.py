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

from ansible_collections.slurm_exporter.incident_response.plugins.module_utils.errors import ValidationError
from ansible_collections.slurm_exporter.incident_response.plugins.module_utils import record as rec
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
        return result


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
        return [rec.normalise_alert(alert, now, 'alerts[%d]' % index) for index, alert in enumerate(alerts)]

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
    def open(self, type_name=None, alerts=None, fingerprint=None, severity=None, drill=False, title=None,
             summary=None, impact=None, edits=None):
        """Open an incident, or attach the alerts to the open incident that holds one of their fingerprints."""
        now = self.clock()
        entries = self._alerts(alerts, now)
        type_name = self._classify(type_name, alerts)
        if severity is not None:
            self.catalog.require_severity(severity)
        fingerprints = [entry['fingerprint'] for entry in entries]
        if fingerprint:
            fingerprints.append(rec.validate_fingerprint(fingerprint))
        prepared_edits = self._prepare_edits(edits or {})
        with self.store.locked():
            index, _invalid = self.store.refresh_index(persist=not self.check_mode)
            open_ids = self.store.find_open(fingerprints, index) if fingerprints else []
            if open_ids:
                before = self.store.read(open_ids[0])
                after = copy.deepcopy(before)
                for entry in entries:
                    rec.merge_alert(after, entry, now, self.actor)
                self._auto_progress(after, now)
                self._apply_edits(after, prepared_edits, now)
                changed, after = self._commit(before, after, 'attach')
                return Outcome(before, after, changed, attached=True)
            handled = self._handled_by_resolved(entries, index)
            if handled is not None:
                # The resolution of an alert the incident handled is recorded (the incident stays resolved);
                # a resend of the firing alert changes nothing.
                after = copy.deepcopy(handled)
                for entry in entries:
                    if entry['status'] == 'resolved':
                        rec.merge_alert(after, entry, now, self.actor)
                changed, after = self._commit(handled, after, 'attach')
                if changed:
                    return Outcome(handled, after, True, attached=True)
                return Outcome(handled, handled, False, attached=True,
                               skipped='alert(s) %s belong to incident %s, which is resolved: the same firing (fingerprint and '
                                       'startsAt) is not opened twice' % (', '.join(fingerprints), handled['id']))
            if entries and all(entry['status'] == 'resolved' for entry in entries):
                return Outcome(None, None, False, skipped='resolved alert(s) %s match no open incident; nothing to open'
                               % ', '.join(fingerprints))
            incident_id = self.store.next_id(now, index)
            after = rec.new_record(self.catalog, incident_id, type_name, now, severity=severity, drill=drill,
                                   title=title, summary=summary, impact=impact, actor=self.actor)
            if fingerprint and not entries:
                entries = [rec.normalise_alert({'fingerprint': fingerprint, 'labels': {}}, now, 'fingerprint')]
            for entry in entries:
                rec.merge_alert(after, entry, now, self.actor)
            self._apply_edits(after, prepared_edits, now)
            if not self.check_mode:
                after = self.store.write(after, self.actor, 'open')
            return Outcome(None, after, True, created=True)

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
        """Operational incidents whose alerts all resolved move to monitoring; security ones never do."""
        if not record['alerts'] or record['status'] in ('monitoring', 'resolved'):
            return
        if not all(alert['status'] == 'resolved' for alert in record['alerts']):
            return
        if self.catalog.categories.get(record['category'], {}).get('auto_resolve', False):
            rec.set_status(record, 'monitoring', now, self.actor, 'all alerts resolved')

    def update(self, incident_id, edits=None):
        now = self.clock()
        rec.validate_id(incident_id)
        prepared = self._prepare_edits(edits or {})
        with self.store.locked():
            before = self._read(incident_id)
            if before is None:
                return self._planned(incident_id)
            after = copy.deepcopy(before)
            self._apply_edits(after, prepared, now)
            changed, after = self._commit(before, after, 'update')
        return Outcome(before, after, changed)

    def acknowledge(self, incident_id, reason=None):
        now = self.clock()
        rec.validate_id(incident_id)
        with self.store.locked():
            before = self._read(incident_id)
            if before is None:
                return self._planned(incident_id)
            after = copy.deepcopy(before)
            if not after['acknowledged_at']:
                after['acknowledged_at'] = timeutil.format_ts(now)
                after['acknowledged_by'] = self.actor
                rec.add_timeline(after, now, 'triage', 'acknowledgement',
                                 'Acknowledged by %s%s' % (self.actor, ': %s' % reason if reason else ''), self.actor)
            changed, after = self._commit(before, after, 'acknowledge')
        return Outcome(before, after, changed)

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
        if 'status' in edits:
            if edits['status'] == 'resolved' and record['status'] != 'resolved' and not record['resolution']:
                raise ValidationError("incident %s: resolving needs a resolution (what fixed it)" % record['id'])
            rec.set_status(record, edits['status'], now, actor, edits.get('status_reason'))
