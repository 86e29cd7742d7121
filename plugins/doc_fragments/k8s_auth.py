# -*- coding: utf-8 -*-
# Copyright: contributors to slurm_exporter.incident_response
# GNU General Public License v3.0+ (see COPYING or https://www.gnu.org/licenses/gpl-3.0.txt)
# SPDX-License-Identifier: GPL-3.0-or-later
"""How the collection's modules reach the Kubernetes API."""

from __future__ import annotations


class ModuleDocFragment:
    """Connection options, with the same names and environment variables as kubernetes.core."""

    DOCUMENTATION = r'''
options:
  kubeconfig:
    description:
      - Path to a kubeconfig. If not set, E(K8S_AUTH_KUBECONFIG), then the client's default (C(~/.kube/config)),
        then, when running in a pod, its service account.
    type: path
  context:
    description: Context of the kubeconfig to use (E(K8S_AUTH_CONTEXT)).
    type: str
  host:
    description: API server URL, overriding the kubeconfig's (E(K8S_AUTH_HOST)).
    type: str
  api_key:
    description: Bearer token, overriding the kubeconfig's (E(K8S_AUTH_API_KEY)). Never logged.
    type: str
  validate_certs:
    description: Verify the API server's TLS certificate (E(K8S_AUTH_VERIFY_SSL)).
    type: bool
    default: true
    aliases: [verify_ssl]
  ca_cert:
    description: CA bundle for the API server's certificate (E(K8S_AUTH_SSL_CA_CERT)).
    type: path
    aliases: [ssl_ca_cert]
  request_timeout:
    description: Seconds to wait for each API request (connect and read).
    type: float
    default: 30.0
requirements:
  - kubernetes (Python library) >= 30.1.0
'''
