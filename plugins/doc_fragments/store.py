# -*- coding: utf-8 -*-
# Copyright: contributors to slurm_exporter.incident_response
# GNU General Public License v3.0+ (see COPYING or https://www.gnu.org/licenses/gpl-3.0.txt)
# SPDX-License-Identifier: GPL-3.0-or-later
"""Options shared by every module that reads or writes the incident store."""

from __future__ import annotations


class ModuleDocFragment:
    """Documentation of the store and catalog options."""

    DOCUMENTATION = r'''
options:
  store:
    description:
      - Directory that holds the incident records (C(incident-<ID>.json)), C(audit.log), the listing index
        C(.index/index.sqlite3) (a cache rebuilt from the records), the writers' lock C(.lock)
        and the C(evidence/), C(reports/) and C(outbox/) sub-directories. See C(docs/incident-record.md).
      - With O(store_backend=kubernetes) the records and their audit trail are in the cluster, and this directory
        holds only the evidence bundles, reports and the notification outbox (on the machine that runs the task).
      - Created with mode 0750 when missing.
      - If not set, the environment variable E(INCIDENT_RESPONSE_STORE) is used, then C(/var/incident-response).
    type: path
    default: /var/incident-response
  store_backend:
    description:
      - Where the incident records are kept.
      - V(file) (the default) - one JSON file per incident in O(store), written atomically under a lock file; for one
        machine (or one volume).
      - V(kubernetes) - one C(Incident) object per incident (C(incident-response.slurm-exporter.io/v1)) in
        O(store_namespace) of a cluster, written with C(resourceVersion) preconditions; a write that loses the race
        to a concurrent writer runs again on the new state, so several launcher replicas, AWX jobs and playbook runs
        share one store without lost updates. Needs the CustomResourceDefinition
        (C(roles/deploy/files/incidents.crd.yaml), installed by the deploy role) and, for the identity the tasks
        run as, the store's permissions in that namespace. See C(docs/incident-store.md).
      - Every module of the collection that reads or writes incidents selects it with this one setting (or the
        environment variable below, for every task of a playbook run, which is how an AWX job template or the EDA path sets it once).
      - If not set, the environment variable E(INCIDENT_RESPONSE_STORE_BACKEND) is used, then V(file).
    type: str
    choices: [file, kubernetes]
    default: file
  store_namespace:
    description:
      - Namespace of the C(Incident) objects with O(store_backend=kubernetes).
      - If not set, the environment variable E(INCIDENT_RESPONSE_STORE_NAMESPACE) is used, then C(incident-response).
    type: str
    default: incident-response
  store_kubernetes:
    description:
      - How to reach the API server with O(store_backend=kubernetes). Each key not given is taken from the environment,
        E(INCIDENT_RESPONSE_STORE_KUBECONFIG) and E(INCIDENT_RESPONSE_STORE_CONTEXT) first, then the variables of
        C(kubernetes.core) (E(K8S_AUTH_KUBECONFIG), E(K8S_AUTH_CONTEXT), E(K8S_AUTH_HOST),
        E(K8S_AUTH_API_KEY), E(K8S_AUTH_VERIFY_SSL), E(K8S_AUTH_SSL_CA_CERT), which an AWX Kubernetes credential
        sets), then from the default kubeconfig, then, in a pod, from its service account.
    type: dict
    default: {}
    suboptions:
      kubeconfig:
        description: Path to a kubeconfig.
        type: path
      context:
        description: Context of the kubeconfig.
        type: str
      host:
        description: API server URL.
        type: str
      api_key:
        description: Bearer token. Never logged.
        type: str
      validate_certs:
        description: Verify the API server's certificate (default true).
        type: bool
        aliases: [verify_ssl]
      ca_cert:
        description: CA bundle of the API server's certificate.
        type: path
        aliases: [ssl_ca_cert]
      request_timeout:
        description: Seconds to wait for each API request (default 30).
        type: float
  lock_timeout:
    description:
      - Seconds to wait for the store's writer lock before failing (file store).
      - With O(store_backend=kubernetes), seconds during which a change that keeps losing the race to concurrent
        writers is tried again before failing.
    type: float
    default: 30.0
  catalog:
    description:
      - Overrides of the incident catalog, deep-merged over the catalog shipped with the collection
        and validated; an invalid field fails the task with its path named.
      - Usually set once for all modules with C(module_defaults) for the action group
        C(group/slurm_exporter.incident_response.incident_response), from the inventory variable C(incident_catalog).
      - See C(docs/catalog.md) for the structure (C(types), C(severities), C(categories), C(classification), C(business_hours)).
    type: dict
requirements:
  - kubernetes (Python library) >= 30.1.0, for O(store_backend=kubernetes)
'''
