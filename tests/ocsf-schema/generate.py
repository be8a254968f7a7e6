"""Regenerates the OCSF 1.3.0 JSON Schemas vendored beside this file.

Needs the PyPI package `ocsf-json-schema` (1.2.0), which bundles the
schema.ocsf.io export of every OCSF release and turns a class into a
JSON Schema (draft 2020-12) with every referenced object under `$defs`:

    python3 -m venv /tmp/ocsf && /tmp/ocsf/bin/pip install ocsf-json-schema==1.2.0
    /tmp/ocsf/bin/python tests/ocsf-schema/generate.py
"""

import json
import pathlib

from ocsf_json_schema import OcsfJsonSchemaEmbedded, get_ocsf_schema

VERSION = "1.3.0"
# Every class Ward maps to (ward-ocsf's CLASSES), the fallback included.
CLASSES = [0, 3001, 3002, 3005, 3006, 6003, 6006]

schema = OcsfJsonSchemaEmbedded(get_ocsf_schema(version=VERSION))
out = pathlib.Path(__file__).parent / VERSION
out.mkdir(exist_ok=True)
for uid in CLASSES:
    name = schema.lookup_class_name_from_uid(class_uid=uid)
    doc = schema.get_class_schema(class_name=name)
    (out / f"{uid}-{name}.json").write_text(json.dumps(doc, indent=1, sort_keys=True) + "\n")
