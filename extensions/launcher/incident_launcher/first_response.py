# -*- coding: utf-8 -*-
# Copyright: contributors to slurm_exporter.incident_response
# GNU General Public License v3.0+ (see COPYING or https://www.gnu.org/licenses/gpl-3.0.txt)
# SPDX-License-Identifier: GPL-3.0-or-later
"""First response in the launcher: isolate the workload of a security incident before the playbook starts.

For a firing alert whose incident type belongs to the ``security`` category, the launcher opens
(or attaches to) the incident in-process, applies the emergency isolation NetworkPolicy with
``module_utils/containment.py`` in the *configured* namespace (never one named by an alert label)
and records the action ``isolate_pods`` (phase containment) in the incident. The response playbook
skips an action already recorded as a success, so the policy is not applied twice.
"""

from __future__ import annotations

from incident_launcher import LauncherError
from incident_launcher.collection import module_utils

ACTION = 'isolate_pods'
PHASE = 'containment'
CATEGORY = 'security'


class FirstResponder:
    def __init__(self, config, catalog, logger):
        settings = config['first_response']
        self.kube_params = {'kubeconfig': settings['kubeconfig'], 'context': settings['context'],
                            'request_timeout': settings['request_timeout']}
        self.pod_selector = dict(settings['pod_selector'])
        self.allow_ingress = list(settings['allow_ingress'])
        self.allow_egress = list(settings['allow_egress'])
        self.namespace = config['incident_namespace']
        self.store = config['incident_store']
        self.catalog = catalog
        self.logger = logger
        self._check()

    def _check(self):
        """Fail at start-up, not at the first breach: the Kubernetes access loads and the policy document is valid."""
        errors = module_utils('errors')
        try:
            module_utils('containment').isolation_policy(self.namespace, None, self.pod_selector, self.allow_ingress, self.allow_egress)
            module_utils('k8s').Kubernetes(self.kube_params).close()
        except errors.IncidentResponseError as exc:
            raise LauncherError('config: first_response: %s' % exc) from None

    def applies(self, entry):
        return entry.get('category') == CATEGORY and entry['payload']['alerts'][0]['status'] == 'firing'

    def run(self, entry):
        """Open/attach, isolate, record; returns a summary (never raises for a Kubernetes failure: the playbook follows)."""
        errors = module_utils('errors')
        service = module_utils('service').IncidentService(module_utils('store').IncidentStore(self.store), self.catalog,
                                                          actor='incident-launcher')
        outcome = service.open(alerts=entry['payload']['alerts'])
        incident_id = outcome.as_result()['id']
        if not incident_id:
            return {'result': 'skipped', 'reason': outcome.skipped}
        containment = module_utils('containment')
        details = {'namespace': self.namespace, 'policy': containment.ISOLATION_POLICY_NAME, 'by': 'incident-launcher'}
        kube = None
        try:
            kube = module_utils('k8s').Kubernetes(self.kube_params)
            applied = containment.apply_isolation(kube, self.namespace, incident_id, self.pod_selector,
                                                  allow_ingress=self.allow_ingress, allow_egress=self.allow_egress)
            details.update(policy=applied['name'], operation=applied.get('operation'))
            action = {'name': ACTION, 'phase': PHASE, 'result': 'success', 'changed': bool(applied['changed']), 'details': details}
        except errors.IncidentResponseError as exc:
            details['error'] = str(exc)[:1000]
            action = {'name': ACTION, 'phase': PHASE, 'result': 'failed', 'changed': False, 'details': details}
        finally:
            if kube is not None:
                kube.close()
        service.update(incident_id, edits={'actions': [action]})
        self.logger.info('first_response', entry=entry['id'], incident=incident_id, result=action['result'],
                         changed=action['changed'], namespace=self.namespace, error=details.get('error'))
        return {'result': action['result'], 'incident': incident_id, 'changed': action['changed'], 'error': details.get('error')}
