# -*- coding: utf-8 -*-
# Copyright: contributors to slurm_exporter.incident_response
# GNU General Public License v3.0+ (see COPYING or https://www.gnu.org/licenses/gpl-3.0.txt)
# SPDX-License-Identifier: GPL-3.0-or-later
"""Regenerate the screenshots in docs/images/ (``make screenshots``): the post-incident report and the trends page,
rendered by the collection's own code from the sample records in tests/report_samples.py, drawn by headless
Chromium (Debian package chromium) and captured whole through the DevTools protocol.

    python3 scripts/screenshots.py [--out docs/images] [--keep-html DIR]
"""

from __future__ import annotations

import argparse
import datetime
import os
import sys
import tempfile

HERE = os.path.dirname(os.path.abspath(__file__))
ROOT = os.path.dirname(HERE)
sys.path.insert(0, ROOT)

from tests.collection_path import link_collection  # noqa: E402  pylint: disable=wrong-import-position

link_collection()

from ansible_collections.slurm_exporter.incident_response.plugins.module_utils.catalog import load_catalog  # noqa: E402
from ansible_collections.slurm_exporter.incident_response.plugins.plugin_utils import report  # noqa: E402
from tests import report_samples  # noqa: E402
from tests.chromium import Chromium, CdpError  # noqa: E402

NOW = datetime.datetime(2026, 11, 28, tzinfo=datetime.timezone.utc)
LINKS = {'report_url': 'https://incidents.example.org/reports/{id}/report.html',
         'grafana_url': 'https://grafana.example.org/d/slurm-exporter/overview?orgId=1'}


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.split('\n\n', 1)[0])
    parser.add_argument('--out', default=os.path.join(ROOT, 'docs', 'images'), help='where the PNG files go (default docs/images)')
    parser.add_argument('--keep-html', help='also write the rendered HTML pages to this directory')
    parser.add_argument('--width', type=int, default=1100, help='page width in pixels (default 1100)')
    args = parser.parse_args(argv)
    catalog = load_catalog()
    record = report_samples.dense_breach()
    incident = report.render_incident_report(record, catalog.profile(record['type'], record['severity']),
                                             {'lessons': ['Keep the SLURM controllers in every inventory that responds to breaches'],
                                              'contributing_factors': ['Request headers logged at debug level']}, now=NOW, links=LINKS)
    trends = report.render_trends(report_samples.trend_records(), now=NOW,
                                  profile_for=lambda item: catalog.profile(item['type'], item['severity']))
    html_dir = args.keep_html or tempfile.mkdtemp(prefix='ir-screenshots-')
    os.makedirs(html_dir, exist_ok=True)
    os.makedirs(args.out, exist_ok=True)
    pages = {'report': incident['html'], 'trends': trends['html']}
    try:
        with Chromium(width=args.width, height=900) as browser:
            for name, html in pages.items():
                page = os.path.join(html_dir, '%s.html' % name)
                with open(page, 'w', encoding='utf-8') as handle:
                    handle.write(html)
                browser.load(page)
                target = browser.screenshot(os.path.join(args.out, '%s.png' % name))
                print('%s: %s (%d bytes)' % (name, os.path.relpath(target, ROOT), os.path.getsize(target)))
    except CdpError as exc:
        print('screenshots: %s' % exc, file=sys.stderr)
        return 2
    return 0


if __name__ == '__main__':
    sys.exit(main())
