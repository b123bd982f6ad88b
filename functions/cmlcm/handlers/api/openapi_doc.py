"""The OpenAPI document, made exact: what Powertools generates from the routes and models, plus
what it cannot know.

Powertools documents each operation with its return model under 200 and a 422
`HTTPValidationError`. The API answers more than that, and errors in one shape: this module
documents, per operation, every status it can answer (`STATUSES`, one table; a test checks it
names exactly the registered routes), the error body `{error, message, field}` as the `Error`
schema, the Cognito bearer scheme on every non-public operation, the YAML bodies of lab
download and import, and the success statuses that are not 200 (202, 204).
"""

from __future__ import annotations

import copy
from typing import Any

from cmlcm.handlers.api.auth import PUBLIC_PATHS
from cmlcm.handlers.api.models import ErrorBody

YAML_MEDIA_TYPE = "application/x-yaml"
SECURITY_SCHEME = "cognito"

# Building blocks. Every operation can be throttled by API Gateway (429); every authenticated
# one answers 401 without a valid token and 403 below its role.
_THROTTLED = (429,)
_AUTH = (401, 403, *_THROTTLED)
_WORKER = (404,)  # the worker (or lab) in the path does not exist
_JSON_BODY = (400, 413, 415, 422)  # unreadable, too large, not JSON, invalid
_QUERY = (422,)
_AWS = (409, 422, 502, 503)  # illegal transition; EC2 refused a parameter; EC2 fault/throttle
_CML = (409, 422, 502, 503)  # worker not running; CML refused; CML unreachable/faulty

#: "METHOD /path" → (success statuses, error statuses). The first success status carries the
#: return model Powertools documented under 200.
STATUSES: dict[str, tuple[tuple[int, ...], tuple[int, ...]]] = {
    "GET /health": ((200,), _THROTTLED),
    "GET /openapi.json": ((200,), _THROTTLED),
    "GET /workers": ((200,), (*_AUTH, *_QUERY)),
    "POST /workers": ((202, 200), (*_AUTH, *_JSON_BODY, 409, 502, 503)),
    "POST /workers/import": ((200,), (*_AUTH, *_JSON_BODY, 404, 409, 502, 503)),
    "GET /workers/{worker_id}": ((200,), (*_AUTH, *_WORKER)),
    "DELETE /workers/{worker_id}": ((200,), (*_AUTH, *_WORKER, *_QUERY, *_AWS)),
    "POST /workers/{worker_id}/start": ((200,), (*_AUTH, *_WORKER, *_AWS)),
    "POST /workers/{worker_id}/stop": ((200,), (*_AUTH, *_WORKER, *_AWS)),
    "POST /workers/{worker_id}/pause": ((200,), (*_AUTH, *_WORKER, *_JSON_BODY, *_AWS)),
    "POST /workers/{worker_id}/resume": ((200,), (*_AUTH, *_WORKER, *_JSON_BODY, *_AWS)),
    "POST /workers/{worker_id}/terminate": ((200,), (*_AUTH, *_WORKER, *_AWS)),
    "POST /workers/{worker_id}/refresh": ((200,), (*_AUTH, *_WORKER, 409, 502, 503)),
    "POST /workers/{worker_id}/monitoring": ((200,), (*_AUTH, *_WORKER, *_AWS)),
    "GET /workers/{worker_id}/metrics": ((200,), (*_AUTH, *_WORKER, *_QUERY)),
    "PUT /workers/{worker_id}/tags": ((200,), (*_AUTH, *_WORKER, *_JSON_BODY, *_AWS)),
    "PUT /workers/{worker_id}/idle-detection": ((200,), (*_AUTH, *_WORKER, *_JSON_BODY, 409)),
    "PUT /workers/{worker_id}/owner": ((200,), (*_AUTH, *_WORKER, *_JSON_BODY, 409)),
    "GET /workers/{worker_id}/labs": ((200,), (*_AUTH, *_WORKER)),
    "POST /workers/{worker_id}/labs/refresh": ((200,), (*_AUTH, *_WORKER, *_CML)),
    "POST /workers/{worker_id}/labs/import": ((200,), (*_AUTH, *_WORKER, 413, *_QUERY, *_CML)),
    "PUT /workers/{worker_id}/labs/{lab_id}/start": ((200,), (*_AUTH, *_WORKER, *_CML)),
    "PUT /workers/{worker_id}/labs/{lab_id}/stop": ((200,), (*_AUTH, *_WORKER, *_CML)),
    "PUT /workers/{worker_id}/labs/{lab_id}/wipe": ((200,), (*_AUTH, *_WORKER, *_CML)),
    "DELETE /workers/{worker_id}/labs/{lab_id}": ((204,), (*_AUTH, *_WORKER, *_CML)),
    "GET /workers/{worker_id}/labs/{lab_id}/download": ((200,), (*_AUTH, *_WORKER, *_CML)),
    "GET /workers/{worker_id}/licence": ((200,), (*_AUTH, *_WORKER, *_CML)),
    "POST /workers/{worker_id}/licence": ((202,), (*_AUTH, *_WORKER, *_JSON_BODY, *_CML)),
    "DELETE /workers/{worker_id}/licence": ((200,), (*_AUTH, *_WORKER, *_CML)),
    "GET /workers/{worker_id}/policy": ((200,), (*_AUTH, *_WORKER)),
    "GET /savings": ((200,), _AUTH),
    "GET /schedules": ((200,), _AUTH),
    "POST /schedules": ((201,), (*_AUTH, *_JSON_BODY, 409)),
    "GET /schedules/{name}": ((200,), (*_AUTH, 404)),
    "PUT /schedules/{name}": ((200,), (*_AUTH, 404, *_JSON_BODY, 409)),
    "DELETE /schedules/{name}": ((204,), (*_AUTH, 404)),
    "POST /schedules/{name}/overrides": ((200,), (*_AUTH, 404, *_JSON_BODY, 409)),
    "GET /settings": ((200,), _AUTH),
    "PUT /settings": ((200,), (*_AUTH, *_JSON_BODY, 409, 502, 503)),
    "PATCH /settings": ((200,), (*_AUTH, *_JSON_BODY, 409, 502, 503)),
    "GET /jobs": ((200,), (*_AUTH, 502, 503)),
    "GET /jobs/{job}": ((200,), (*_AUTH, 404, 502, 503)),
    "POST /jobs/{job}/run": ((202,), (*_AUTH, 404, 409, 502, 503)),
    "POST /jobs/{job}/pause": ((200,), (*_AUTH, 404, 502, 503)),
    "POST /jobs/{job}/resume": ((200,), (*_AUTH, 404, 502, 503)),
}

_REASONS = {
    400: "The request cannot be read: not JSON, not UTF-8, or nested too deeply",
    401: "No valid token (API Gateway's Cognito authorizer)",
    403: "The caller's role is below the operation's",
    404: "The worker, lab, schedule, job or route does not exist",
    409: "The request collides with the current state (transition, version, duplicate, idempotency key)",
    413: "The request body is larger than the operation accepts",
    415: "The request body is not application/json",
    422: "A parameter or body field breaks a rule (`field` names it), or AWS/CML refused it",
    429: "Throttled (API Gateway), refreshed too often (Retry-After), or an AWS quota",
    502: "AWS or CML failed (recorded on the worker as last_error)",
    503: "AWS or CML is throttling or temporarily unavailable",
}
_SUCCESS = {
    200: "OK",
    201: "Created",
    202: "Accepted: the work goes on in the background",
    204: "Done; no body",
}


def _error_response(status: int) -> dict[str, Any]:
    response: dict[str, Any] = {
        "description": _REASONS[status],
        "content": {"application/json": {"schema": {"$ref": "#/components/schemas/Error"}}},
    }
    if status == 429:
        response["headers"] = {
            "Retry-After": {"description": "Seconds to wait (on-demand refresh)", "schema": {"type": "string"}}
        }
    return response


def _operation_key(method: str, path: str) -> str:
    return f"{method.upper()} {path}"


def _refine(key: str, operation: dict[str, Any]) -> None:
    """The few operations whose bodies are not JSON models."""
    if key == "GET /workers/{worker_id}/labs/{lab_id}/download":
        # The body is YAML text; parsed (as clients and schemathesis do), a CML topology document.
        topology = {"type": "object", "required": ["lab"], "description": "A CML topology: lab, nodes, links"}
        operation["responses"]["200"]["content"] = {YAML_MEDIA_TYPE: {"schema": topology}}
        operation["responses"]["200"]["headers"] = {
            "Content-Disposition": {"description": "attachment; filename=<lab_id>.yaml", "schema": {"type": "string"}}
        }
    if key == "POST /workers/{worker_id}/labs/import":
        operation["requestBody"] = {
            "required": True,
            "description": "The lab's CML topology YAML (any Content-Type), at most 1 MiB",
            "content": {YAML_MEDIA_TYPE: {"schema": {"type": "string", "minLength": 1}}},
        }


def _only_regions(schema: dict[str, Any], regions: list[str]) -> None:
    """A region string (or nullable one) becomes the deployment's supported regions."""
    for option in schema.get("anyOf", [schema]):
        if option.get("type") == "string":
            option["enum"] = regions


def _document_regions(doc: dict[str, Any], regions: list[str]) -> None:
    """Regions are the deployment's (SUPPORTED_REGIONS): the document says which, so a client
    (or the fuzzer) knows an unsupported one is a 422 before trying."""
    for schema in doc["components"]["schemas"].values():
        properties = schema.get("properties") or {}
        if "region" in properties:
            _only_regions(properties["region"], regions)
        if "region_defaults" in properties:
            for option in properties["region_defaults"].get("anyOf", [properties["region_defaults"]]):
                if option.get("type") == "object":
                    option["propertyNames"] = {"enum": regions}
    for operations in doc.get("paths", {}).values():
        for operation in operations.values():
            for parameter in operation.get("parameters", []):
                if parameter.get("name") == "region" and parameter.get("in") == "query":
                    _only_regions(parameter["schema"], regions)


def document(generated: dict[str, Any], *, regions: tuple[str, ...] | list[str]) -> dict[str, Any]:
    """The exact document from Powertools' generated one (not changed in place), for a
    deployment serving `regions`."""
    doc = copy.deepcopy(generated)
    schemas = doc.setdefault("components", {}).setdefault("schemas", {})
    schemas.pop("HTTPValidationError", None)
    schemas.pop("ValidationError", None)
    schemas.pop("ResponseValidationError", None)
    schemas["Error"] = ErrorBody.model_json_schema()
    schemas["Error"]["description"] = "Every error, from the function and from API Gateway"
    doc["components"]["securitySchemes"] = {
        SECURITY_SCHEME: {
            "type": "http",
            "scheme": "bearer",
            "bearerFormat": "JWT",
            "description": "A Cognito user pool ID token; its cognito:groups claim gives the role",
        }
    }
    for path, operations in doc.get("paths", {}).items():
        for method, operation in operations.items():
            key = _operation_key(method, path)
            if key not in STATUSES:
                raise KeyError(f"{key}: no statuses documented in openapi_doc.STATUSES")
            successes, errors = STATUSES[key]
            generated_success = operation["responses"].get("200") or operation["responses"].get(200)
            responses: dict[str, Any] = {}
            for status in successes:
                if status == 204:
                    responses["204"] = {"description": _SUCCESS[204]}
                else:
                    success = copy.deepcopy(generated_success) or {}
                    success["description"] = _SUCCESS[status]
                    responses[str(status)] = success
            for status in sorted(set(errors)):
                responses[str(status)] = _error_response(status)
            operation["responses"] = responses
            public = path.lstrip("/") in {p.lstrip("/") for p in PUBLIC_PATHS}
            operation["security"] = [] if public else [{SECURITY_SCHEME: []}]
            _refine(key, operation)
    _document_regions(doc, list(regions))
    return doc
