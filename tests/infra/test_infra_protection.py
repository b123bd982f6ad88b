"""API protection: the expensive routes have their own, lower stage throttling without changing
how any other path is routed; the WAF web ACL is off unless `cmlcm:waf=true` (tested in
test_infra_deploy_confidence with the flag on)."""

from __future__ import annotations

import re

import pytest
from _app import REPO_ROOT
from _template import of_type

pytestmark = pytest.mark.infra


def _paths(resources: dict) -> dict[str, str]:
    """API Gateway resource logical id → full path."""
    api_resources = of_type(resources, "AWS::ApiGateway::Resource")

    def full(logical_id: str) -> str:
        props = api_resources[logical_id]["Properties"]
        parent = props["ParentId"]
        prefix = full(parent["Ref"]) if "Ref" in parent else ""
        return f"{prefix}/{props['PathPart']}"

    return {logical_id: full(logical_id) for logical_id in api_resources}


def _methods(resources: dict) -> set[tuple[str, str]]:
    paths = _paths(resources)
    return {
        (
            m["Properties"]["HttpMethod"],
            paths[m["Properties"]["ResourceId"]["Ref"]] if "Ref" in m["Properties"]["ResourceId"] else "/",
        )
        for m in of_type(resources, "AWS::ApiGateway::Method").values()
    }


def _stage_settings(resources: dict) -> list[dict]:
    (stage,) = of_type(resources, "AWS::ApiGateway::Stage").values()
    return stage["Properties"]["MethodSettings"]


def test_each_expensive_route_has_a_lower_throttle_than_the_stage(resources):
    from cmlcm_infra.protection import THROTTLED_ROUTES

    settings = _stage_settings(resources)
    stage_wide = settings[0]
    assert (stage_wide["HttpMethod"], stage_wide["ResourcePath"]) == ("*", "/*")
    by_route = {(s["HttpMethod"], s["ResourcePath"].replace("~1", "/")[1:]): s for s in settings[1:]}
    assert set(by_route) == set(THROTTLED_ROUTES)
    methods = _methods(resources)
    for route, setting in by_route.items():
        assert route in methods, route
        assert setting["ThrottlingRateLimit"] < stage_wide["ThrottlingRateLimit"], route
        assert setting["ThrottlingBurstLimit"] < stage_wide["ThrottlingBurstLimit"], route
        # a method setting replaces the stage's for that method: logs and metrics stay on
        assert (setting["LoggingLevel"], setting["MetricsEnabled"], setting["DataTraceEnabled"]) == (
            "ERROR",
            True,
            False,
        )


def test_throttled_routes_are_routes_of_the_api_function():
    # The function's resolver declares them (`<worker_id>` there, `{worker_id}` here).
    from cmlcm_infra.protection import THROTTLED_ROUTES

    declared = set()
    for source in (REPO_ROOT / "functions" / "cmlcm" / "handlers" / "api").glob("routes_*.py"):
        for method, path in re.findall(r'@router\.(get|post|put|patch|delete)\(\s*"([^"]+)"', source.read_text()):
            declared.add((method.upper(), re.sub(r"<(\w+)>", r"{\1}", path)))
    assert set(THROTTLED_ROUTES) <= declared, set(THROTTLED_ROUTES) - declared


def test_every_other_path_still_reaches_the_function(resources):
    # Explicit resources shadow `/{proxy+}` for their own path: each answers ANY, and deeper
    # paths are caught by a `{proxy+}` child unless a path variable already catches them.
    methods = _methods(resources)
    paths = set(_paths(resources).values())
    assert ("ANY", "/") in methods and ("ANY", "/{proxy+}") in methods
    for path in paths:
        if path.endswith("{proxy+}") or path in {"/health", "/openapi.json"}:
            continue
        assert ("ANY", path) in methods, path
        children = [p for p in paths if p.rsplit("/", 1)[0] == path]
        if not any(c.rsplit("/", 1)[1].startswith("{") for c in children):
            assert ("ANY", f"{path}/{{proxy+}}") in methods, path


def test_every_method_but_the_public_gets_needs_a_cognito_token(resources):
    for method in of_type(resources, "AWS::ApiGateway::Method").values():
        props = method["Properties"]
        if props["AuthorizationType"] == "NONE":
            # the public GETs, and CORS preflights (browsers send OPTIONS without a token)
            assert props["HttpMethod"] in ("GET", "OPTIONS"), props
        else:
            assert props["AuthorizationType"] == "COGNITO_USER_POOLS"


def test_no_web_acl_unless_asked(resources):
    assert [r["Type"] for r in resources.values() if r["Type"].startswith("AWS::WAFv2::")] == []
