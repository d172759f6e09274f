#!/usr/bin/env python3
"""Regenerate portal/data/communes_mgp.json, the bundled reference list of the
communes of the Métropole du Grand Paris (INSEE code, name, département).

Source: the npm package ``@etalab/decoupage-administratif`` (Etalab / DINUM,
licence MIT for the code, data from the INSEE Code officiel géographique and the
DGCL BANATIC list of EPCI members). The EPCI of the Métropole du Grand Paris has
the SIREN 200054781; its ``membres`` are the communes listed here.

Usage (from the repository root, needs ``npm`` on the PATH):

    python3 scripts/build_communes_mgp.py                 # latest published version
    python3 scripts/build_communes_mgp.py --version 6.0.0 # a given version
    python3 scripts/build_communes_mgp.py --package-dir /path/to/unpacked/package

The script downloads the package tarball with ``npm pack`` (the npm registry,
no other network access), reads ``data/epci.json`` and ``data/communes.json``
and writes the JSON file with its provenance (package version, EPCI, date).
"""
from __future__ import annotations

import argparse
import datetime as dt
import json
import pathlib
import subprocess
import tarfile
import tempfile

PACKAGE = "@etalab/decoupage-administratif"
MGP_SIREN = "200054781"
OUTPUT = pathlib.Path(__file__).resolve().parent.parent / "portal" / "data" / "communes_mgp.json"


def unpack(version: str | None, workdir: pathlib.Path) -> pathlib.Path:
    spec = f"{PACKAGE}@{version}" if version else PACKAGE
    out = subprocess.run(["npm", "pack", spec, "--silent"], cwd=workdir, check=True,
                         capture_output=True, text=True).stdout.strip().splitlines()[-1]
    with tarfile.open(workdir / out) as archive:
        archive.extractall(workdir, filter="data")
    return workdir / "package"


def build(package_dir: pathlib.Path) -> dict:
    meta = json.loads((package_dir / "package.json").read_text(encoding="utf-8"))
    epcis = json.loads((package_dir / "data" / "epci.json").read_text(encoding="utf-8"))
    communes = json.loads((package_dir / "data" / "communes.json").read_text(encoding="utf-8"))
    epci = next(e for e in epcis if e["code"] == MGP_SIREN)
    by_code = {c["code"]: c for c in communes if c.get("type") == "commune-actuelle"}
    rows = []
    for member in epci["membres"]:
        commune = by_code[member["code"]]
        rows.append({"insee": commune["code"], "nom": commune["nom"],
                     "departement": commune["departement"]})
    rows.sort(key=lambda r: (r["departement"], r["nom"]))
    return {
        "source": f"npm {PACKAGE} {meta['version']} (data/epci.json, data/communes.json)",
        "source_url": "https://www.npmjs.com/package/@etalab/decoupage-administratif",
        "epci": {"siren": MGP_SIREN, "nom": epci["nom"]},
        "generated_on": dt.date.today().isoformat(),
        "regenerate": "python3 scripts/build_communes_mgp.py",
        "communes": rows,
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--version", help="package version (default: latest)")
    parser.add_argument("--package-dir", type=pathlib.Path,
                        help="an already unpacked package directory")
    parser.add_argument("--output", type=pathlib.Path, default=OUTPUT)
    args = parser.parse_args()
    with tempfile.TemporaryDirectory() as tmp:
        package_dir = args.package_dir or unpack(args.version, pathlib.Path(tmp))
        data = build(package_dir)
    args.output.write_text(json.dumps(data, ensure_ascii=False, indent=1) + "\n", encoding="utf-8")
    print(f"{len(data['communes'])} communes written to {args.output} ({data['source']})")


if __name__ == "__main__":
    main()
