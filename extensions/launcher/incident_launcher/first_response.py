# -*- coding: utf-8 -*-
# Copyright: contributors to slurm_exporter.incident_response
# GNU General Public License v3.0+ (see COPYING or https://www.gnu.org/licenses/gpl-3.0.txt)
# SPDX-License-Identifier: GPL-3.0-or-later
"""First response in the launcher: isolate the workload of a security incident before the playbook starts.

Only for alerts the collection raised itself (:func:`isolation_rules`): a firing alert named after one of the
catalog's detection rules of a ``security`` type (or listed in ``first_response.alertnames``), carrying that rule's
``component`` label (and its ``incident_type``), classified as a ``security`` type. Everything else, a ``Watchdog``
labelled ``incident_type=security_breach`` included, waits for the response playbook. For those alerts the launcher
opens (or attaches to, with the playbook's correlation) the incident in-process, applies the emergency
isolation NetworkPolicy through ``module_utils/workload.py`` in the *configured* namespace (never one
named by an alert label) under the workload's Lease, with the incident's hold on the policy, and
records the action ``isolate_pods`` (phase containment) in the incident. The response playbook skips
an action already recorded as a success, so the policy is not applied twice.
"""

from __future__ import annotations

from incident_launcher import LauncherError
from incident_launcher.backends import store_factory
from ansible_collections.slurm_exporter.incident_response.plugins.module_utils import containment
from ansible_collections.slurm_exporter.incident_response.plugins.module_utils.detection import COMPONENT, rule_labels
from ansible_collections.slurm_exporter.incident_response.plugins.module_utils.errors import IncidentResponseError
from ansible_collections.slurm_exporter.incident_response.plugins.module_utils.k8s import Kubernetes
from ansible_collections.slurm_exporter.incident_response.plugins.module_utils.service import IncidentService
from ansible_collections.slurm_exporter.incident_response.plugins.module_utils.workload import Workload

ACTION = 'isolate_pods'
PHASE = 'containment'
CATEGORY = 'security'


def isolation_rules(catalog, alertnames=()):
    """``{alert name: labels it must carry}``: the alerts whose firing isolates in-process.

    The catalog's detection rules of the ``security`` category (with the catalog overrides of the configuration),
    then the configuration's ``first_response.alertnames`` (which must carry ``component: incident-response``).
    """
    allowed = {name: {'component': COMPONENT} for name in alertnames}
    allowed.update(rule_labels(catalog, CATEGORY))
    return allowed


class FirstResponder:
    def __init__(self, config, catalog, logger, stores=None):
        settings = config['first_response']
        self.kube_params = {'kubeconfig': settings['kubeconfig'], 'context': settings['context'],
                            'request_timeout': settings['request_timeout']}
        # Containment in the intake path: a few quick retries of transient API failures, never a long stall.
        self.retries = {'total': 2, 'backoff_factor': 0.1, 'backoff_max': 1.0}
        self.pod_selector = dict(settings['pod_selector'])
        self.allow_ingress = list(settings['allow_ingress'])
        self.allow_egress = list(settings['allow_egress'])
        self.namespace = config['incident_namespace']
        self.deployment = config['incident_deployment']
        self.workload = '%s/%s' % (self.namespace, self.deployment)
        self.correlation = config['correlation']
        self.stores = stores or store_factory(config)
        self.catalog = catalog
        self.logger = logger
        self.allowed = isolation_rules(catalog, settings['alertnames'])
        self._check()

    def _check(self):
        """Fail at start-up, not at the first breach: the Kubernetes access loads and the policy document is valid."""
        try:
            containment.isolation_policy(self.namespace, None, self.pod_selector, self.allow_ingress, self.allow_egress)
            Kubernetes(self.kube_params).close()
        except IncidentResponseError as exc:
            raise LauncherError('config: first_response: %s' % exc) from None

    def applies(self, entry):
        """A firing alert of a security type, raised by one of the allowed rules (name and that rule's labels)."""
        alert = entry['payload']['alerts'][0]
        labels = alert.get('labels') or {}
        wanted = self.allowed.get(labels.get('alertname'))
        return (entry.get('category') == CATEGORY and alert['status'] == 'firing' and wanted is not None
                and all(labels.get(key) == value for key, value in wanted.items()))

    def run(self, entry):
        """Open/attach, isolate, record; returns a summary (never raises for a Kubernetes failure: the playbook follows)."""
        service = IncidentService(self.stores(), self.catalog, actor='incident-launcher')
        # The same correlation as the playbook's open: the alert joins the incident the playbook will continue.
        outcome = service.open(alerts=entry['payload']['alerts'], workload=self.workload, correlation=self.correlation)
        incident_id = outcome.as_result()['id']
        if not incident_id:
            return {'result': 'skipped', 'reason': outcome.skipped}
        details = {'namespace': self.namespace, 'by': 'incident-launcher'}
        kube = None
        try:
            # Under the workload's Lease and with this incident's hold, as every other path (k8s_workload).
            kube = Kubernetes(self.kube_params, retry=self.retries)
            workload = Workload(kube, self.namespace, self.deployment, outcome.after, self.pod_selector)
            done = workload.perform(ACTION, {'allow_ingress': self.allow_ingress, 'allow_egress': self.allow_egress})
            details.update(done['details'])
            action = {'name': ACTION, 'phase': PHASE, 'result': done['result'], 'changed': bool(done['changed']), 'details': details}
        except IncidentResponseError as exc:
            details.update(exc.details.get('details') or {})
            details['error'] = str(exc)[:1000]
            action = {'name': ACTION, 'phase': PHASE, 'result': 'failed', 'changed': False, 'details': details}
        finally:
            if kube is not None:
                kube.close()
        service.update(incident_id, edits={'actions': [action]})
        self.logger.info('first_response', entry=entry['id'], incident=incident_id, result=action['result'],
                         changed=action['changed'], namespace=self.namespace, error=details.get('error'))
        return {'result': action['result'], 'incident': incident_id, 'changed': action['changed'], 'error': details.get('error')}
