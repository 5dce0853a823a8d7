"""The `reader` code, deployed as another function, whose policy allows nothing."""

from maas_fake_handlers.reader.routes import handler

__all__ = ["handler"]
