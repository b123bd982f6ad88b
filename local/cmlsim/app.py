"""The simulator's ASGI app: the CML 2.9 API under `/controllers/{id}/api/v0`, one virtual
controller per id, plus an admin API under `/_sim` to add controllers and inject faults.

Bodies follow the vendored `openapi/cml-2.9-openapi-subset.json` (the conformance tests validate every
one of them, errors included).

Admin API (JSON in and out)::

    GET    /_sim/controllers                      every controller's id, readiness, labs, faults
    POST   /_sim/controllers                      {"id", "labs"?, "running_labs"?, "boot_seconds"?}
    GET    /_sim/controllers/{id}
    DELETE /_sim/controllers/{id}
    PUT    /_sim/controllers/{id}/faults          {"latency": 0.2, "error_rate": 1, ...} (see Faults),
                                                  plus "boot_seconds": N to reboot; {} + ?reset=true clears
    POST   /_sim/controllers/{id}/labs            {"title", "nodes"?, "state"?} → {"id"}
    POST   /_sim/bulk                             {"ids": [...], "labs"?, "running_labs"?, "faults"?}
    GET    /_sim/stats                            {"controllers", "requests"}
"""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable, Callable
from dataclasses import asdict
from typing import Any

import yaml
from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import JSONResponse, Response
from starlette.routing import Route

from cmlsim.fleet import CML_VERSION, OWNER_ID, Controller, SimulatedFleet, parse_topology

Handler = Callable[[Request, Controller], Awaitable[Response]]


def error(status: int, description: str) -> JSONResponse:
    """CML's error body (`Error` / `ErrorResponse` in the spec)."""
    return JSONResponse({"code": status, "description": description}, status_code=status)


def build_app(fleet: SimulatedFleet) -> Starlette:
    """The ASGI app over `fleet` (serve with uvicorn, or call in-process via httpx.ASGITransport)."""

    def controller_route(path: str, handler: Handler, methods: list[str], *, auth: bool = True) -> Route:
        async def endpoint(request: Request) -> Response:
            fleet.requests += 1
            controller = fleet.get(request.path_params["cid"])
            if controller is None:
                return error(404, f"No controller {request.path_params['cid']}")
            faults = controller.faults
            if faults.latency:
                await asyncio.sleep(faults.latency)
            if faults.timeout:
                await asyncio.sleep(faults.hang_seconds)
            if faults.error_rate and fleet.random.random() < faults.error_rate:
                return error(faults.error_status, "Internal Server Error (injected)")
            if faults.garbage:
                return Response("{this is not json", media_type="application/json")
            if auth:
                header = request.headers.get("authorization", "")
                token = header.removeprefix("Bearer ").strip() if header.startswith("Bearer ") else None
                if not fleet.authorized(controller, token):
                    return error(401, "No authorization token provided." if token is None else "Token expired")
            return await handler(request, controller)

        return Route(f"/controllers/{{cid}}/api/v0{path}", endpoint, methods=methods)

    def lab_or_404(controller: Controller, lab_id: str) -> Any:
        return controller.labs.get(lab_id) or error(404, f"Lab not found: {lab_id}")

    # --- auth ---

    async def authenticate(request: Request, controller: Controller) -> Response:
        try:
            body = await request.json()
            token = fleet.login(controller, str(body["username"]), str(body["password"]))
        except (ValueError, KeyError, TypeError):
            return error(400, 'Expected {"username": ..., "password": ...}')
        if token is None:
            return error(403, "Authentication failed!")
        return JSONResponse(token)

    async def authok(request: Request, controller: Controller) -> Response:
        return JSONResponse("OK")  # the spec's 200 body is a string

    async def logout(request: Request, controller: Controller) -> Response:
        token = request.headers.get("authorization", "").removeprefix("Bearer ").strip()
        controller.tokens.discard(token)
        return JSONResponse(True)

    # --- system ---

    async def system_information(request: Request, controller: Controller) -> Response:
        return JSONResponse(
            {
                "version": CML_VERSION,
                "ready": fleet.ready(controller),
                "allow_ssh_pubkey_auth": False,
                "oui": "52:54:00:00:00:00",
            }
        )

    async def system_health(request: Request, controller: Controller) -> Response:
        ready = fleet.ready(controller)
        licensed = fleet.licence(controller).status == "COMPLETED"
        compute = {
            "kvm_vmx_enabled": True,
            "enough_cpus": True,
            "lld_connected": ready,
            "lld_synced": ready,
            "libvirt": True,
            "fabric": True,
            "device_mux": True,
            "refplat_images_available": True,
            "docker_shim": True,
            "valid": ready,
            "admission_state": "READY" if ready else "REGISTERED",
            "is_controller": True,
            "hostname": "cml-controller",
        }
        return JSONResponse(
            {
                "valid": ready,
                "is_licensed": licensed,
                "is_enterprise": False,
                "computes": {controller.compute_id: compute},
                "controller": {"core_connected": ready, "nodes_loaded": ready, "images_loaded": ready, "valid": ready},
            }
        )

    async def system_stats(request: Request, controller: Controller) -> Response:
        running = fleet.running_nodes(controller)
        total_nodes = sum(lab.node_count for lab in controller.labs.values())
        cpu = min(95.0, 3.0 + 4.0 * running)
        gib = 1024**3
        memory = {"used": (8 + 2 * running) * gib, "free": (256 - 8 - 2 * running) * gib, "total": 256 * gib}
        disk = {"used": 120 * gib, "free": 880 * gib, "total": 1000 * gib}
        compute = {
            "hostname": "cml-controller",
            "is_controller": True,
            "stats": {
                "cpu": {
                    "count": 96,
                    "percent": cpu,
                    "model": "Intel Xeon (simulated)",
                    "predicted": running,
                    "load": [cpu / 25, cpu / 30, cpu / 35],
                },
                "memory": memory,
                "disk": disk,
                "dominfo": {
                    "allocated_cpus": running,
                    "allocated_memory": 2048 * running,
                    "total_nodes": total_nodes,
                    "running_nodes": running,
                    "total_orphans": 0,
                    "running_orphans": 0,
                },
            },
        }
        return JSONResponse(
            {
                "all": {"cpu": {"count": 96, "percent": cpu}, "memory": memory, "disk": disk},
                "computes": {controller.compute_id: compute},
                "controller": {"disk": disk},
            }
        )

    # --- labs ---

    def lab_body(lab: Any) -> dict[str, Any]:
        return {
            "id": lab.id,
            "created": lab.created.isoformat(),
            "modified": lab.modified.isoformat(),
            "lab_description": str((lab.topology.get("lab") or {}).get("description", ""))[:4096],
            "lab_notes": "",
            "lab_title": lab.title,
            "owner": OWNER_ID,
            "owner_username": "admin",
            "owner_fullname": "Administrator",
            "state": lab.state,
            "node_count": lab.node_count,
            "link_count": lab.link_count,
            "groups": [],
            "effective_permissions": ["lab_admin", "lab_edit", "lab_exec", "lab_view"],
        }

    async def list_labs(request: Request, controller: Controller) -> Response:
        return JSONResponse(sorted(controller.labs))

    async def get_lab(request: Request, controller: Controller) -> Response:
        lab = lab_or_404(controller, request.path_params["lab_id"])
        return lab if isinstance(lab, Response) else JSONResponse(lab_body(lab))

    def lab_action(action: str) -> Handler:
        async def act(request: Request, controller: Controller) -> Response:
            lab = lab_or_404(controller, request.path_params["lab_id"])
            if isinstance(lab, Response):
                return lab
            problem = fleet.lab_action(controller, lab, action)
            return error(400, problem) if problem else Response(status_code=204)

        return act

    async def delete_lab(request: Request, controller: Controller) -> Response:
        lab = lab_or_404(controller, request.path_params["lab_id"])
        if isinstance(lab, Response):
            return lab
        if lab.state == "STARTED":
            return error(400, f"Lab {lab.id} is running: stop and wipe it first")
        controller.labs.pop(lab.id, None)
        return Response(status_code=204)

    async def converged(request: Request, controller: Controller) -> Response:
        lab = lab_or_404(controller, request.path_params["lab_id"])
        return lab if isinstance(lab, Response) else JSONResponse(fleet.converged(lab))

    async def download(request: Request, controller: Controller) -> Response:
        lab = lab_or_404(controller, request.path_params["lab_id"])
        if isinstance(lab, Response):
            return lab
        return JSONResponse(yaml.safe_dump(lab.topology, sort_keys=False))

    async def import_lab(request: Request, controller: Controller) -> Response:
        text = (await request.body()).decode("utf-8", errors="replace")
        try:
            topology = parse_topology(text)
        except ValueError as exc:
            return error(400, str(exc))
        lab = fleet.import_lab(controller, topology, request.query_params.get("title"))
        return JSONResponse({"id": lab.id, "warnings": []})

    # --- licensing ---

    async def licensing(request: Request, controller: Controller) -> Response:
        licence = fleet.licence(controller)
        expires = licence.expires.isoformat() if licence.expires else None
        never = {
            "succeeded": None,
            "attempted": None,
            "scheduled": None,
            "status": None,
            "failure": None,
            "success": None,
        }
        return JSONResponse(
            {
                "udi": {"hostname": "cml-controller", "product_uuid": controller.compute_id},
                "registration": {
                    "status": licence.status,
                    "smart_account": None,
                    "virtual_account": None,
                    "register_time": never,
                    "renew_time": never,
                    "expires": expires,
                },
                "authorization": {"status": licence.authorization, "renew_time": never, "expires": expires},
                "reservation_mode": False,
                "features": [],
                "product_license": {
                    "active": "CML_Enterprise" if licence.status == "COMPLETED" else "",
                    "is_enterprise": False,
                },
                "transport": {
                    "proxy": {"server": None, "port": None},
                    "ssms": None,
                    "default_ssms": "https://smartreceiver.cisco.com/licservice/license",
                },
            }
        )

    async def register(request: Request, controller: Controller) -> Response:
        try:
            body = await request.json()
            token = str(body["token"])
        except (ValueError, KeyError, TypeError):
            return error(400, 'Expected {"token": ..., "reregister": bool}')
        if fleet.licence(controller).status == "COMPLETED" and not body.get("reregister"):
            return error(409, "Already registered; pass reregister=true")
        fleet.register(controller, token)
        return Response(status_code=204)

    async def deregister(request: Request, controller: Controller) -> Response:
        # The spec gives this 400 no body: CML answers an already-deregistered controller bare.
        return Response(status_code=fleet.deregister(controller))

    async def telemetry(request: Request, controller: Controller) -> Response:
        return JSONResponse(list(controller.events))

    # --- admin API (/_sim) ---

    async def admin_list(request: Request) -> Response:
        views = [admin_view(c) for c in (fleet.get(cid) for cid in fleet.ids()) if c is not None]
        return JSONResponse(views)

    async def admin_add(request: Request) -> Response:
        try:
            body = await request.json()
            controller = fleet.add(
                str(body["id"]),
                boot_seconds=float(body.get("boot_seconds", 0)),
                labs=int(body.get("labs", 0)),
                running_labs=int(body.get("running_labs", 0)),
            )
        except (ValueError, KeyError, TypeError) as exc:
            return JSONResponse({"error": f"bad request: {exc}"}, status_code=400)
        return JSONResponse(admin_view(controller), status_code=201)

    async def admin_faults(request: Request) -> Response:
        cid = request.path_params["cid"]
        try:
            changes = await request.json()
            if not isinstance(changes, dict):
                raise TypeError("expected a JSON object of faults")
            boot_seconds = changes.pop("boot_seconds", None)
            if request.query_params.get("reset") == "true":
                fleet.clear_faults(cid)
            faults = fleet.set_faults(cid, **changes)
            if boot_seconds is not None:
                fleet.boot(cid, float(boot_seconds))
        except KeyError:
            return JSONResponse({"error": "no such controller"}, status_code=404)
        except (ValueError, TypeError) as exc:
            return JSONResponse({"error": str(exc)}, status_code=400)
        return JSONResponse(asdict(faults))

    async def admin_get(request: Request) -> Response:
        controller = fleet.get(request.path_params["cid"])
        if controller is None:
            return JSONResponse({"error": "no such controller"}, status_code=404)
        return JSONResponse(admin_view(controller))

    async def admin_add_lab(request: Request) -> Response:
        cid = request.path_params["cid"]
        if fleet.get(cid) is None:
            return JSONResponse({"error": "no such controller"}, status_code=404)
        try:
            body = await request.json()
            lab_id = fleet.add_lab(
                cid,
                str(body["title"]),
                nodes=int(body.get("nodes", 3)),
                state=str(body.get("state", "DEFINED_ON_CORE")),
            )
        except (KeyError, ValueError, TypeError) as exc:
            return JSONResponse({"error": f"bad request: {exc}"}, status_code=400)
        return JSONResponse({"id": lab_id}, status_code=201)

    async def admin_stats(request: Request) -> Response:
        return JSONResponse({"controllers": len(fleet.ids()), "requests": fleet.requests})

    async def admin_bulk(request: Request) -> Response:
        """Add many controllers at once: {"ids": [...], "labs": n, "running_labs": n, "faults": {...}}."""
        try:
            body = await request.json()
            for cid in body["ids"]:
                fleet.add(str(cid), labs=int(body.get("labs", 0)), running_labs=int(body.get("running_labs", 0)))
                if body.get("faults"):
                    fleet.set_faults(str(cid), **body["faults"])
        except (ValueError, KeyError, TypeError) as exc:
            return JSONResponse({"error": f"bad request: {exc}"}, status_code=400)
        return JSONResponse({"controllers": len(fleet.ids())}, status_code=201)

    async def admin_delete(request: Request) -> Response:
        fleet.remove(request.path_params["cid"])
        return Response(status_code=204)

    def admin_view(controller: Controller) -> dict[str, Any]:
        return {
            "id": controller.id,
            "ready": fleet.ready(controller),
            "labs": len(controller.labs),
            "running_labs": sum(1 for lab in controller.labs.values() if lab.state == "STARTED"),
            "licence": fleet.licence(controller).status,
            "faults": asdict(controller.faults),
        }

    routes = [
        controller_route("/authenticate", authenticate, ["POST"], auth=False),
        controller_route("/authok", authok, ["GET"]),
        controller_route("/logout", logout, ["DELETE"]),
        controller_route("/system_information", system_information, ["GET"], auth=False),
        controller_route("/system_health", system_health, ["GET"]),
        controller_route("/system_stats", system_stats, ["GET"]),
        controller_route("/labs", list_labs, ["GET"]),
        controller_route("/labs/{lab_id}", get_lab, ["GET"]),
        controller_route("/labs/{lab_id}", delete_lab, ["DELETE"]),
        controller_route("/labs/{lab_id}/start", lab_action("start"), ["PUT"]),
        controller_route("/labs/{lab_id}/stop", lab_action("stop"), ["PUT"]),
        controller_route("/labs/{lab_id}/wipe", lab_action("wipe"), ["PUT"]),
        controller_route("/labs/{lab_id}/check_if_converged", converged, ["GET"]),
        controller_route("/labs/{lab_id}/download", download, ["GET"]),
        controller_route("/import", import_lab, ["POST"]),
        controller_route("/licensing", licensing, ["GET"]),
        controller_route("/licensing/registration", register, ["POST"]),
        controller_route("/licensing/deregistration", deregister, ["DELETE"]),
        controller_route("/telemetry/events", telemetry, ["GET"]),
        Route("/_sim/controllers", admin_list, methods=["GET"]),
        Route("/_sim/controllers", admin_add, methods=["POST"]),
        Route("/_sim/controllers/{cid}/faults", admin_faults, methods=["PUT"]),
        Route("/_sim/bulk", admin_bulk, methods=["POST"]),
        Route("/_sim/stats", admin_stats, methods=["GET"]),
        Route("/_sim/controllers/{cid}", admin_get, methods=["GET"]),
        Route("/_sim/controllers/{cid}", admin_delete, methods=["DELETE"]),
        Route("/_sim/controllers/{cid}/labs", admin_add_lab, methods=["POST"]),
    ]
    return Starlette(routes=routes)


def serve(host: str = "127.0.0.1", port: int = 8701, fleet: SimulatedFleet | None = None) -> None:
    """Serve `fleet` (a new empty one by default) over HTTP with uvicorn until interrupted."""
    import uvicorn  # a dev dependency: only the HTTP mode needs it

    uvicorn.run(build_app(fleet or SimulatedFleet()), host=host, port=port, log_level="warning", access_log=False)


__all__ = ["build_app", "error", "serve"]
