#!/usr/bin/env python3
"""Derives the Graph v1.0 schema our tests check against from Microsoft's own metadata.

Reads `v1.0-Prod.csdl` (microsoftgraph/msgraph-metadata, `schemas/v1.0-Prod.csdl`, MIT; a copy is
in `../shared/graph-metadata/`) and writes `testkit/fixtures/graph-v1.0-schema.json`: for every type
of the `microsoft.graph` namespace reachable from the resources we read, its properties (base
types' included) with their CSDL types, its navigation properties, and whether it is open; and
the members of every enum those reach. The tests never read the CSDL itself: a clean clone has
no `../shared`, and the fixture is small enough to review.

    python3 scripts/graph-schema.py [path/to/v1.0-Prod.csdl]
"""
import json
import sys
import xml.etree.ElementTree as ET
from pathlib import Path

EDM = "{http://docs.oasis-open.org/odata/ns/edm}"
NAMESPACE = "microsoft.graph"
# The resources sentinel reads, and what they are served in.
ROOTS = ["user", "group", "site", "drive", "driveItem", "permission", "publicError"]

here = Path(__file__).resolve().parent.parent
csdl = Path(sys.argv[1]) if len(sys.argv) > 1 else here.parent / "shared/graph-metadata/v1.0-Prod.csdl"
schema = next(
    s for s in ET.parse(csdl).getroot().iter(f"{EDM}Schema") if s.get("Namespace") == NAMESPACE
)


def local(type_name):
    """`graph.identity` or `microsoft.graph.identity` -> `identity`; Edm types stay as they are."""
    inner = type_name[len("Collection("):-1] if type_name.startswith("Collection(") else type_name
    for prefix in ("graph.", NAMESPACE + "."):
        if inner.startswith(prefix):
            return inner[len(prefix):]
    return inner


structured = {
    t.get("Name"): t for t in schema if t.tag in (f"{EDM}EntityType", f"{EDM}ComplexType")
}
enums = {t.get("Name"): t for t in schema if t.tag == f"{EDM}EnumType"}


def flattened(name):
    chain = []
    while name:
        node = structured[name]
        chain.append(node)
        base = node.get("BaseType")
        name = local(base) if base else None
    props, navigation, open_type = {}, {}, False
    for node in reversed(chain):
        open_type = open_type or node.get("OpenType") == "true"
        for p in node.findall(f"{EDM}Property"):
            props[p.get("Name")] = p.get("Type")
        for p in node.findall(f"{EDM}NavigationProperty"):
            navigation[p.get("Name")] = p.get("Type")
    return props, navigation, open_type


types, enum_out, queue = {}, {}, list(ROOTS)
while queue:
    name = queue.pop()
    if name in types:
        continue
    props, navigation, open_type = flattened(name)
    entity = structured[name].tag == f"{EDM}EntityType"
    types[name] = {"entity": entity, "open": open_type, "properties": props, "navigation": navigation}
    # Complex types of properties are served inline, so they are checked too; navigation
    # properties only appear when expanded, so only their names are kept.
    for t in props.values():
        inner = local(t)
        if inner in structured:
            queue.append(inner)
        elif inner in enums and inner not in enum_out:
            enum_out[inner] = [m.get("Name") for m in enums[inner].findall(f"{EDM}Member")]
    # Subtypes can be served where a base type is declared (e.g. sharePointIdentitySet).
    for other, node in structured.items():
        base = node.get("BaseType")
        if base and local(base) == name and other not in types:
            queue.append(other)

out = {
    "source": "microsoftgraph/msgraph-metadata schemas/v1.0-Prod.csdl (commit f54f11b6, MIT), "
    "via scripts/graph-schema.py",
    "roots": ROOTS,
    "types": dict(sorted(types.items())),
    "enums": dict(sorted(enum_out.items())),
}
target = here / "testkit/fixtures/graph-v1.0-schema.json"
target.write_text(json.dumps(out, indent=1, sort_keys=False) + "\n")
print(f"{target.relative_to(here)}: {len(types)} types, {len(enum_out)} enums")
