"""maas: the Python client of the Model-as-a-Service API, and the `maas` command.

    import maas

    client = maas.Client.connect(api_url, api_key=key, token=access_token)  # a deployed stage
    client = maas.Client.local()  # or the stack `maas local up` started on this machine

    client.predict("digits", [[0.0] * 64])
    client.deploy("digits", {"version": 2, "canary_percent": 10})

`help(maas.Client)` lists every call. An error answer raises `maas.ApiError`, which carries
the API's message, code and request id. The `maas` command (`maas --help`) drives the same
client from a shell and runs the local stack; that stack (the `maas_local` package) is loaded
only by the commands that need it.
"""

from maas.client import Client
from maas.credentials import Credentials
from maas.errors import ApiError

__all__ = ["ApiError", "Client", "Credentials"]
