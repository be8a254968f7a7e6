"""The generated bindings, under whatever module names componentize-py gave
them.

componentize-py names an imported interface's module after the interface
(``types``) unless two imported interfaces share that name; Ward's world
imports both ``wasi:http/types`` and ``ward:connector/types``, so both become
``wasi_http_types`` and ``ward_connector_types``, and the ``poll_loop``
helper that ships with componentize-py (which imports
``wit_world.imports.types``) cannot load. The SDK looks both names up here,
once, and never uses ``poll_loop``: its HTTP client blocks on the pollables
itself. Nothing else in the SDK imports ``wit_world``.
"""

import importlib
from types import ModuleType


def _first(*names: str) -> ModuleType:
    errors = []
    for name in names:
        try:
            return importlib.import_module(name)
        except ImportError as e:
            errors.append(f"{name}: {e}")
    raise ImportError(
        "the component's bindings have none of "
        + ", ".join(names)
        + " (build with componentize-py against Ward's wit/v0.2, world `plugin`): "
        + "; ".join(errors)
    )


http_types = _first("wit_world.imports.wasi_http_types", "wit_world.imports.types")
ward_types = _first("wit_world.imports.ward_connector_types", "wit_world.imports.types")
outgoing_handler = _first("wit_world.imports.outgoing_handler")
streams = _first("wit_world.imports.streams")
log = _first("wit_world.imports.log")
