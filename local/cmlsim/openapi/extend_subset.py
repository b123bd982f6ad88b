"""Extend the vendored CML 2.9 OpenAPI subset with operations copied verbatim from Cisco's whole
CML 2.9 document: `python local/cmlsim/openapi/extend_subset.py PATH/TO/cml-2.9-openapi-full.json`.

A maintenance tool, run by hand (never by tests or the simulator): it copies each operation in
`ADDED` and every component schema it references, transitively, and records the additions in
`info.x-subset-of.added`. Running it again changes nothing.
"""

from __future__ import annotations

import json
import sys
from pathlib import Path
from typing import Any

SUBSET = Path(__file__).resolve().parent / "cml-2.9-openapi-subset.json"

#: What Cisco's `virl2-client` 2.10 calls for everyday scripting that the first subset lacked.
ADDED: list[tuple[str, str]] = [
    ("/populate_lab_tiles", "get"),
    ("/node_definitions", "get"),
    ("/image_definitions", "get"),
    ("/labs/{lab_id}/nodes", "get"),
    ("/labs/{lab_id}/nodes/{node_id}", "get"),
    ("/labs/{lab_id}/nodes/{node_id}/interfaces", "get"),
    ("/labs/{lab_id}/nodes/{node_id}/state", "get"),
    ("/labs/{lab_id}/nodes/{node_id}/state/start", "put"),
    ("/labs/{lab_id}/nodes/{node_id}/state/stop", "put"),
    ("/labs/{lab_id}/nodes/{node_id}/check_if_converged", "get"),
    ("/labs/{lab_id}/links", "get"),
    ("/labs/{lab_id}/links/{link_id}", "get"),
    ("/labs/{lab_id}/interfaces/{interface_id}", "get"),
    ("/labs/{lab_id}/simulation_stats", "get"),
    ("/labs/{lab_id}/layer3_addresses", "get"),
    ("/labs/{lab_id}/resource_pools", "get"),
    ("/users/{username}/id", "get"),
]


def _refs(node: Any) -> set[str]:
    """Names of the component schemas `node` references."""
    found: set[str] = set()
    if isinstance(node, dict):
        ref = node.get("$ref")
        if isinstance(ref, str) and ref.startswith("#/components/schemas/"):
            found.add(ref.rsplit("/", 1)[1])
        for value in node.values():
            found |= _refs(value)
    elif isinstance(node, list):
        for value in node:
            found |= _refs(value)
    return found


def extend(subset: dict[str, Any], full: dict[str, Any]) -> list[str]:
    """Copy `ADDED` from `full` into `subset` (in place); the operations newly added."""
    added: list[str] = []
    schemas = subset["components"]["schemas"]
    pending: set[str] = set()
    for path, method in ADDED:
        operation = full["paths"][path][method]
        entry = subset["paths"].setdefault(path, {})
        if method not in entry:
            entry[method] = operation
            added.append(f"{method.upper()} {path}")
        pending |= _refs(operation)
    while pending:
        name = pending.pop()
        if name not in schemas:
            schemas[name] = full["components"]["schemas"][name]
            pending |= _refs(schemas[name])
    info = subset["info"]["x-subset-of"]
    info["added"] = sorted({*info.get("added", []), *(f"{m.upper()} {p}" for p, m in ADDED)})
    info["operations"] = sum(1 for item in subset["paths"].values() for m in item if m != "parameters")
    info["schemas"] = len(schemas)
    return added


def main() -> None:
    """Read the whole document named on the command line and rewrite the subset."""
    if len(sys.argv) != 2:
        raise SystemExit(__doc__)
    full = json.loads(Path(sys.argv[1]).read_text())
    subset = json.loads(SUBSET.read_text())
    added = extend(subset, full)
    SUBSET.write_text(json.dumps(subset, indent=1, ensure_ascii=False) + "\n")
    print(f"added {len(added)} operations; subset now {subset['info']['x-subset-of']['operations']} operations")


if __name__ == "__main__":
    main()
