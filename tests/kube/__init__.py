# -*- coding: utf-8 -*-
# Copyright: contributors to slurm_exporter.incident_response
# GNU General Public License v3.0+ (see COPYING or https://www.gnu.org/licenses/gpl-3.0.txt)
# SPDX-License-Identifier: GPL-3.0-or-later
"""A real Kubernetes control plane for the tests: built from the Go module proxy (build.py), run on loopback
(cluster.py), used through pytest fixtures (fixtures.py). See tests/kube/README.md."""
