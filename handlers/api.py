"""Writes the API's OpenAPI document (handlers.meta.service) to stdout:

python -m handlers.api > openapi.json
"""

from __future__ import annotations

import sys

from handlers.meta.service import render

if __name__ == "__main__":
    sys.stdout.write(render())
