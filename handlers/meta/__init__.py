"""The API's own description: GET /v1/openapi.json."""
