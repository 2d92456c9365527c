#!/usr/bin/env python3
"""Build exporter/data/demo-geoip.mmdb from exporter.geo.demo.DEMO_NETWORKS (synthetic data).

Needs mmdb-writer (MIT; test extra). The metadata build time is fixed (DEMO_BUILD_EPOCH, or
$SOURCE_DATE_EPOCH) so that rebuilding gives the same bytes and a diff shows real changes only.

    python scripts/build_demo_geoip.py [--output PATH]
"""

from __future__ import annotations

import argparse
import os
import sys
from pathlib import Path

from mmdb_writer import MMDBWriter
from netaddr import IPSet

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from exporter.geo.demo import (  # noqa: E402
    DEMO_BUILD_EPOCH,
    DEMO_DATABASE_TYPE,
    DEMO_NETWORKS,
    demo_database_path,
    demo_record,
)


class _FixedEpochWriter(MMDBWriter):
    """MMDBWriter stamps time.time() into the metadata; pin it for reproducible output."""

    def __init__(self, epoch: int, **kwargs) -> None:
        super().__init__(**kwargs)
        self._epoch = epoch

    def _build_meta(self):
        meta = super()._build_meta()
        meta["build_epoch"] = self._epoch
        return meta


def build(output: str, epoch: int = DEMO_BUILD_EPOCH) -> None:
    """Write the demo database to `output` (atomically: temp file + rename)."""
    writer = _FixedEpochWriter(
        epoch,
        ip_version=6,
        ipv4_compatible=True,
        database_type=DEMO_DATABASE_TYPE,
        languages=["en"],
        description={
            "en": "storagenode-exporter demo: SYNTHETIC networks in 198.18.0.0/15, "
            "not real geolocation"
        },
    )
    for cidr, country, city, lat, lon in DEMO_NETWORKS:
        writer.insert_network(IPSet([cidr]), demo_record(country, city, lat, lon))
    tmp = f"{output}.tmp"
    writer.to_db_file(tmp)
    os.replace(tmp, output)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--output", default=demo_database_path())
    args = parser.parse_args(argv)
    epoch = int(os.environ.get("SOURCE_DATE_EPOCH", DEMO_BUILD_EPOCH))
    build(args.output, epoch)
    print(
        f"wrote {args.output} ({os.path.getsize(args.output)} bytes, {len(DEMO_NETWORKS)} networks)"
    )
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
