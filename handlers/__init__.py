"""maas's Lambda handlers: one folder per route group, one Lambda function per folder.

Each group (`predict`, `registry`, `deployments`, `training_jobs`, `meta`, and `events`, which
EventBridge calls with SageMaker's state changes) has the same three parts:

    routes.py   the Powertools routes and the function's entry point, `handler`
    service.py  the domain logic: pydantic models in, pydantic models out
    schemas.py  the group's request and response models

`shared/` holds what the groups share: AWS clients, the registry table, errors, idempotency,
the resolver and the entry point. The entry point of group G is `handlers.G.routes.handler`
(maas_contract.routes.handler_entry). The predict function runs from a SnapStart snapshot, so
each routes module does its work at import and warms clients and validators in the runtime's
before-snapshot hook, rather than on the first request after every restore.
"""
