"""maas's Lambda handlers.

Cold start. Importing what a handler needs (Powertools, pydantic, botocore) creates a few
hundred thousand objects that live as long as the process, and with the default thresholds
the cyclic garbage collector walks that growing heap again and again while it happens: about
a fifth of the predict handler's import (`python -m bench.handler_overhead`). Nothing made
while a module loads is garbage worth hunting for, so the first collection threshold is
raised when this package is imported, and `loaded()` puts it back once a handler module has
finished loading. Collection still runs meanwhile, only far less often.
"""

from __future__ import annotations

import gc

_THRESHOLDS = gc.get_threshold()
_LOADING_THRESHOLD = 100_000
gc.set_threshold(max(_THRESHOLDS[0], _LOADING_THRESHOLD), *_THRESHOLDS[1:])


def loaded() -> None:
    """A handler module has loaded: what it built stays for good, so move it out of the
    collector's sight (`gc.freeze`), then collect at the usual pace again."""
    gc.freeze()
    gc.set_threshold(*_THRESHOLDS)
