"""API Gateway's own answers (no token, too large, throttled, another method on a public path)
come in the API's one error shape, like the function's and the local gateway's."""

from __future__ import annotations

import json

from cmlcm.handlers.api.models import ErrorBody
from cmlcm_infra.rest_api import GATEWAY_RESPONSES


def _gateway_responses(resources: dict) -> dict[str, dict]:
    found = [r["Properties"] for r in resources.values() if r["Type"] == "AWS::ApiGateway::GatewayResponse"]
    by_type = {p["ResponseType"]: p for p in found}
    # Two responses of one type on one API fail the deployment (CloudFormation: already exists).
    assert len(by_type) == len(found), sorted(p["ResponseType"] for p in found)
    return by_type


def test_every_gateway_answer_is_the_error_shape(resources):  # noqa: ANN001
    responses = _gateway_responses(resources)
    assert set(responses) == set(GATEWAY_RESPONSES) >= {"UNAUTHORIZED", "DEFAULT_4XX", "DEFAULT_5XX"}
    for response_type, props in responses.items():
        template = props["ResponseTemplates"]["application/json"]
        # API Gateway fills $context.error.messageString with a quoted string
        body = json.loads(template.replace("$context.error.messageString", '"a message"'))
        assert set(body) == set(ErrorBody.model_fields), response_type
        ErrorBody.model_validate(body)


def test_every_gateway_answer_carries_the_dashboard_origin(resources):  # noqa: ANN001
    # The page must be able to read a 401 or a 429 as well as a 4XX/5XX default
    for response_type, props in _gateway_responses(resources).items():
        assert "gatewayresponse.header.Access-Control-Allow-Origin" in props["ResponseParameters"], response_type


def test_no_token_is_401_with_bearer_and_another_method_on_a_public_path_is_405_allow_get(resources):  # noqa: ANN001
    responses = _gateway_responses(resources)
    unauthorized = responses["UNAUTHORIZED"]
    assert unauthorized["StatusCode"] == "401"
    assert unauthorized["ResponseParameters"]["gatewayresponse.header.WWW-Authenticate"] == "'Bearer'"
    assert '"error": "Unauthorized"' in unauthorized["ResponseTemplates"]["application/json"]
    missing = responses["MISSING_AUTHENTICATION_TOKEN"]
    assert missing["StatusCode"] == "405"
    assert missing["ResponseParameters"]["gatewayresponse.header.Allow"] == "'GET'"
    assert responses["REQUEST_TOO_LARGE"]["StatusCode"] == "413" and responses["THROTTLED"]["StatusCode"] == "429"


def test_the_local_gateway_answers_401_with_the_same_code():
    from starlette.testclient import TestClient

    from cmlcm_local.gateway import build_gateway

    client = TestClient(build_gateway(lambda event, context: {"statusCode": 200, "body": ""}))
    response = client.get("/workers")
    assert response.status_code == 401 and response.headers["www-authenticate"] == "Bearer"
    assert response.json()["error"] == GATEWAY_RESPONSES["UNAUTHORIZED"][1]
