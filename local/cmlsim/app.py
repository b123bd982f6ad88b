"""The simulator's ASGI app: the CML 2.9 API under `/controllers/{id}/api/v0`, one virtual
controller per id, plus an admin API under `/_sim` to add controllers and inject faults.

What it serves and does not, and how to run it: README.md next to this file. Bodies follow the
vendored `openapi/cml-2.9-openapi-subset.json` (the conformance tests validate every
one of them, errors included).

Admin API (JSON in and out)::

    GET    /_sim/controllers                      every controller's id, readiness, labs, faults
    POST   /_sim/controllers                      {"id", "labs"?, "running_labs"?, "boot_seconds"?}
    GET    /_sim/controllers/{id}
    DELETE /_sim/controllers/{id}
    PUT    /_sim/controllers/{id}/faults          {"latency": 0.2, "error_rate": 1, ...} (see Faults),
                                                  plus "boot_seconds": N to reboot; {} + ?reset=true clears
    POST   /_sim/controllers/{id}/labs            {"title", "nodes"?, "state"?} → {"id"}
    POST   /_sim/controllers/{id}/quiet           {"minutes"}: labs stopped, history moved back (idle)
    POST   /_sim/bulk                             {"ids": [...], "labs"?, "running_labs"?, "faults"?}
    GET    /_sim/stats                            {"controllers", "requests"}
"""

from __future__ import annotations

import asyncio
import re
from collections.abc import Awaitable, Callable
from dataclasses import asdict
from typing import Any

import yaml
from starlette.applications import Starlette
from starlette.exceptions import HTTPException
from starlette.requests import Request
from starlette.responses import JSONResponse, Response
from starlette.routing import Route

from cmlsim import bodies
from cmlsim.fleet import CML_VERSION, Controller, SimulatedFleet, parse_topology
from cmlsim.labs import Lab

Handler = Callable[[Request, Controller], Awaitable[Response]]


#: What the YAML download is served as: CML's clients (virl2-client's `Lab.download`, the UI)
#: take the body as the YAML file itself, not as a JSON string (see the README).
YAML_MEDIA_TYPE = "application/x-yaml"
_UUID = re.compile(r"^[\da-f]{8}-[\da-f]{4}-4[\da-f]{3}-[89ab][\da-f]{3}-[\da-f]{12}$")
DIAGNOSTICS = (
    "computes",
    "labs",
    "lab_events",
    "node_launch_queue",
    "services",
    "node_definitions",
    "user_list",
    "licensing",
    "startup_scheduler",
)


def error(status: int, description: str) -> JSONResponse:
    """CML's error body (`Error` / `ErrorResponse` in the spec)."""
    return JSONResponse({"code": status, "description": description}, status_code=status)


async def _http_error(request: Request, exc: Exception) -> Response:
    """Unknown paths and methods answer CML's error body, not Starlette's text/plain."""
    status = exc.status_code if isinstance(exc, HTTPException) else 500
    if status == 404:
        return error(404, f"Not found: {request.url.path}")
    if status == 405:
        return error(405, f"Method {request.method} not allowed on {request.url.path}")
    if status == 500:
        return error(500, "Internal Server Error")
    return error(status, str(getattr(exc, "detail", "")) or "Error")


def build_app(fleet: SimulatedFleet) -> Starlette:
    """The ASGI app over `fleet` (serve with uvicorn, or call in-process via httpx.ASGITransport)."""

    def controller_route(path: str, handler: Handler, methods: list[str], *, auth: bool = True) -> Route:
        async def endpoint(request: Request) -> Response:
            fleet.requests += 1
            controller = fleet.get(request.path_params["cid"])
            if controller is None:
                return error(404, f"No controller {request.path_params['cid']}")
            controller.requests += 1
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

    def lab_handler(handler: Callable[[Request, Controller, Lab], Awaitable[Response]]) -> Handler:
        """A handler of `/labs/{lab_id}/...`: the lab looked up first (404 with CML's body)."""

        async def with_lab(request: Request, controller: Controller) -> Response:
            lab = controller.labs.get(request.path_params["lab_id"])
            if lab is None:
                return error(404, f"Lab not found: {request.path_params['lab_id']}")
            return await handler(request, controller, lab)

        return with_lab

    def element(lab: Lab, kind: str, element_id: str) -> Any:
        """A node, link or interface of `lab`, or CML's 404."""
        found = getattr(lab, kind).get(element_id)
        return found if found is not None else error(404, f"{kind[:-1].capitalize()} not found: {element_id}")

    def flag(request: Request, name: str) -> bool:
        return request.query_params.get(name, "false").lower() == "true"

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
        fleet.logout(controller, token, everywhere=flag(request, "clear_all_sessions"))
        return JSONResponse(True)

    # --- system ---

    async def system_information(request: Request, controller: Controller) -> Response:
        return JSONResponse(info_body(controller))

    async def system_health(request: Request, controller: Controller) -> Response:
        return JSONResponse(health_body(controller))

    def info_body(controller: Controller) -> dict[str, Any]:
        return {
            "version": CML_VERSION,
            "ready": fleet.ready(controller),
            "allow_ssh_pubkey_auth": False,
            "oui": "52:54:00:00:00:00",
        }

    def health_body(controller: Controller) -> dict[str, Any]:
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
        return {
            "valid": ready,
            "is_licensed": licensed,
            "is_enterprise": False,
            "computes": {controller.compute_id: compute},
            "controller": {"core_connected": ready, "nodes_loaded": ready, "images_loaded": ready, "valid": ready},
        }

    async def system_stats(request: Request, controller: Controller) -> Response:
        stats, all_stats = stats_body(controller)
        compute = {"hostname": "cml-controller", "is_controller": True, "stats": stats}
        return JSONResponse(
            {
                "all": all_stats,
                "computes": {controller.compute_id: compute},
                "controller": {"disk": all_stats["disk"]},
            }
        )

    def stats_body(controller: Controller) -> tuple[dict[str, Any], dict[str, Any]]:
        """(`ComputeHostStatsWithDomInfo` of the one compute, the `all` summary)."""
        running = fleet.running_nodes(controller)
        total_nodes = sum(lab.node_count for lab in controller.labs.values())
        cpu = min(95.0, 3.0 + 4.0 * running)
        gib = 1024**3
        memory = {"used": (8 + 2 * running) * gib, "free": (256 - 8 - 2 * running) * gib, "total": 256 * gib}
        disk = {"used": 120 * gib, "free": 880 * gib, "total": 1000 * gib}
        stats = {
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
        }
        return stats, {"cpu": {"count": 96, "percent": cpu}, "memory": memory, "disk": disk}

    async def compute_hosts(request: Request, controller: Controller) -> Response:
        ready = fleet.ready(controller)
        running = fleet.running_nodes(controller)
        nodes = [n.id for lab in controller.labs.values() for n in lab.nodes.values() if n.state == "STARTED"]
        total = sum(lab.node_count for lab in controller.labs.values())
        return JSONResponse(
            [
                {
                    "id": controller.compute_id,
                    "server_address": "127.0.0.1",
                    "hostname": "cml-controller",
                    "is_simulator": True,
                    "is_connector": True,
                    "admission_state": "READY" if ready else "REGISTERED",
                    "nodes": nodes,
                    "node_counts": {
                        "total_nodes": total,
                        "total_orphans": 0,
                        "running_nodes": running,
                        "running_orphans": 0,
                    },
                    "is_connected": ready,
                    "is_synced": ready,
                }
            ]
        )

    async def maintenance_mode(request: Request, controller: Controller) -> Response:
        if request.method == "PATCH":
            try:
                body = await request.json()
                value = body["maintenance_mode"] if isinstance(body, dict) else None
            except (ValueError, KeyError):
                value = None
            if not isinstance(value, bool):
                return error(422, "maintenance_mode: expected true or false")
            fleet.set_maintenance(controller, value)
        return JSONResponse({"maintenance_mode": controller.maintenance_mode, "notice": None, "resolved_notice": None})

    async def get_session_timeout(request: Request, controller: Controller) -> Response:
        return JSONResponse(controller.web_session_timeout)

    async def set_session_timeout(request: Request, controller: Controller) -> Response:
        raw = request.path_params["timeout"]
        if not raw.isdigit() or not 300 <= int(raw) <= 604800:
            return error(422, "timeout: an integer between 300 and 604800 seconds")
        controller.web_session_timeout = int(raw)
        return JSONResponse(f"Web session timeout set to {raw} seconds")

    async def diagnostics(request: Request, controller: Controller) -> Response:
        category = request.path_params["category"]
        if category not in DIAGNOSTICS:
            return error(422, f"category: one of {', '.join(DIAGNOSTICS)}")
        now = fleet.clock()
        labs = list(controller.labs.values())
        ready = fleet.ready(controller)
        if category == "computes":
            stats, _ = stats_body(controller)
            body: Any = {
                controller.compute_id: {
                    "identifier": controller.compute_id,
                    "host_address": "127.0.0.1",
                    "hostname": "cml-controller",
                    "link_driver": "ovs",
                    "kvm_vmx_enabled": True,
                    "is_controller": True,
                    "is_connector": True,
                    "is_simulator": True,
                    "readiness": {
                        "libvirt": True,
                        "fabric": True,
                        "device_mux": True,
                        "refplat_images_available": True,
                        "docker_shim": True,
                    },
                    "lld_consistency": {"missing_nodes": [], "orphaned_nodes": []},
                    "fabric": [],
                    "statistics": stats,
                    "admission_state": "READY" if ready else "REGISTERED",
                }
            }
        elif category == "labs":
            body = {lab.id: bodies.lab_diagnostics(lab, now) for lab in labs}
        elif category == "lab_events":
            body = {lab.id: lab.events for lab in labs}
        elif category == "node_launch_queue":
            body = []  # nodes start at once: nothing ever waits in the launch queue
        elif category == "services":
            body = {"dispatcher": ready, "termws": ready}
        elif category == "node_definitions":
            body = [{"id": d["node_definition_id"], "images": [d["id"]]} for d in bodies.image_definitions()]
        elif category == "user_list":
            body = [bodies.user(controller.booted_at, sorted(controller.labs))]
        elif category == "licensing":
            started = fleet.running_nodes(controller)
            body = {"quota": None, "started": started, "user_quota": None, "user_started": started}
        else:
            body = {
                "licensing_loaded": ready,
                "core_driver_connected": ready,
                "node_definitions_loaded": ready,
                "lld_connected": ready,
                "lld_synced": ready,
                "system_ready": ready,
            }
        return JSONResponse(body)

    async def auth_extended(request: Request, controller: Controller) -> Response:
        try:
            body = await request.json()
            token = fleet.login(controller, str(body["username"]), str(body["password"]))
        except (ValueError, KeyError, TypeError):
            return error(400, 'Expected {"username": ..., "password": ...}')
        if token is None:
            return error(403, "Authentication failed!")
        return JSONResponse({"username": "admin", "id": bodies.ADMIN_ID, "token": token, "admin": True, "error": None})

    # --- catalogue, tiles, users ---

    async def populate_lab_tiles(request: Request, controller: Controller) -> Response:
        labs = [controller.labs[lab_id] for lab_id in sorted(controller.labs)]
        return JSONResponse(bodies.lab_tiles(labs, info_body(controller), health_body(controller)))

    async def node_definitions(request: Request, controller: Controller) -> Response:
        return JSONResponse([bodies.node_definition(d) for d in bodies.NODE_DEFINITIONS])

    async def image_definitions(request: Request, controller: Controller) -> Response:
        return JSONResponse(bodies.image_definitions())

    async def users(request: Request, controller: Controller) -> Response:
        return JSONResponse([bodies.user(controller.booted_at, sorted(controller.labs))])

    async def get_user(request: Request, controller: Controller) -> Response:
        if request.path_params["user_id"] != bodies.ADMIN_ID:
            return error(404, f"User not found: {request.path_params['user_id']}")
        return JSONResponse(bodies.user(controller.booted_at, sorted(controller.labs)))

    async def user_id(request: Request, controller: Controller) -> Response:
        if request.path_params["username"] != "admin":
            return error(404, f"User not found: {request.path_params['username']}")
        return JSONResponse(bodies.ADMIN_ID)

    # --- labs ---

    async def list_labs(request: Request, controller: Controller) -> Response:
        return JSONResponse(sorted(controller.labs))

    async def get_lab(request: Request, controller: Controller, lab: Lab) -> Response:
        return JSONResponse(bodies.lab(lab))

    def lab_action(action: str) -> Handler:
        async def act(request: Request, controller: Controller, lab: Lab) -> Response:
            problem = fleet.lab_action(controller, lab, action)
            return error(400, problem) if problem else Response(status_code=204)

        return lab_handler(act)

    async def delete_lab(request: Request, controller: Controller, lab: Lab) -> Response:
        problem = fleet.delete_lab(controller, lab)
        return error(400, problem) if problem else Response(status_code=204)

    async def converged(request: Request, controller: Controller, lab: Lab) -> Response:
        return JSONResponse(fleet.converged(lab))

    async def lab_state(request: Request, controller: Controller, lab: Lab) -> Response:
        return JSONResponse(lab.state)

    async def download(request: Request, controller: Controller, lab: Lab) -> Response:
        text = yaml.safe_dump(lab.to_topology(), sort_keys=False)
        fleet.exported(controller, lab)
        disposition = f'attachment; filename="{re.sub(r"[^A-Za-z0-9_.-]+", "_", lab.title)}.yaml"'
        return Response(text, media_type=YAML_MEDIA_TYPE, headers={"Content-Disposition": disposition})

    async def topology(request: Request, controller: Controller, lab: Lab) -> Response:
        return JSONResponse(bodies.topology(lab, configuration=not flag(request, "exclude_configurations")))

    async def element_state(request: Request, controller: Controller, lab: Lab) -> Response:
        return JSONResponse(lab.element_states(fleet.clock()))

    async def lab_events(request: Request, controller: Controller, lab: Lab) -> Response:
        return JSONResponse(lab.events)

    async def create_lab(request: Request, controller: Controller) -> Response:
        try:
            body = await request.json() if await request.body() else {}
            if not isinstance(body, dict):
                raise TypeError
            title = body.get("title")
            if title is not None and (not isinstance(title, str) or not 1 <= len(title) <= 64):
                return error(422, "title: a string of 1 to 64 characters")
            header = {"title": title, "description": body.get("description", ""), "notes": body.get("notes", "")}
            lab = fleet.import_lab(controller, {"lab": header, "nodes": [], "links": []}, title or "Lab")
        except (ValueError, TypeError):
            return error(422, "Expected a JSON object (LabCreate)")
        return JSONResponse(bodies.lab(lab))

    # --- nodes, links, interfaces ---

    async def list_nodes(request: Request, controller: Controller, lab: Lab) -> Response:
        if not flag(request, "data"):
            return JSONResponse(list(lab.nodes))
        configuration = not flag(request, "exclude_configurations")
        now = fleet.clock()
        return JSONResponse(
            [bodies.node(lab, n, now, controller.compute_id, configuration=configuration) for n in lab.nodes.values()]
        )

    async def get_node(request: Request, controller: Controller, lab: Lab) -> Response:
        node = element(lab, "nodes", request.path_params["node_id"])
        if isinstance(node, Response):
            return node
        configuration = not flag(request, "exclude_configurations")
        return JSONResponse(bodies.node(lab, node, fleet.clock(), controller.compute_id, configuration=configuration))

    async def node_interfaces(request: Request, controller: Controller, lab: Lab) -> Response:
        node = element(lab, "nodes", request.path_params["node_id"])
        if isinstance(node, Response):
            return node
        if not flag(request, "data"):
            return JSONResponse(list(node.interfaces))
        return JSONResponse([bodies.interface(lab, lab.interfaces[i]) for i in node.interfaces])

    async def node_state(request: Request, controller: Controller, lab: Lab) -> Response:
        node = element(lab, "nodes", request.path_params["node_id"])
        if isinstance(node, Response):
            return node
        state = node.state_at(fleet.clock())
        return JSONResponse({"state": state, "progress": bodies.BOOT_PROGRESS.get(state, "Not running")})

    def node_action(action: str) -> Handler:
        async def act(request: Request, controller: Controller, lab: Lab) -> Response:
            node = element(lab, "nodes", request.path_params["node_id"])
            if isinstance(node, Response):
                return node
            fleet.node_action(controller, lab, node, action)
            return Response(status_code=204)

        return lab_handler(act)

    async def node_converged(request: Request, controller: Controller, lab: Lab) -> Response:
        node = element(lab, "nodes", request.path_params["node_id"])
        return node if isinstance(node, Response) else JSONResponse(node.converged(fleet.clock()))

    async def list_links(request: Request, controller: Controller, lab: Lab) -> Response:
        if not flag(request, "data"):
            return JSONResponse(list(lab.links))
        return JSONResponse([bodies.link(lab, item) for item in lab.links.values()])

    async def get_link(request: Request, controller: Controller, lab: Lab) -> Response:
        link = element(lab, "links", request.path_params["link_id"])
        return link if isinstance(link, Response) else JSONResponse(bodies.link(lab, link))

    async def get_interface(request: Request, controller: Controller, lab: Lab) -> Response:
        interface = element(lab, "interfaces", request.path_params["interface_id"])
        return interface if isinstance(interface, Response) else JSONResponse(bodies.interface(lab, interface))

    async def simulation_stats(request: Request, controller: Controller, lab: Lab) -> Response:
        return JSONResponse(bodies.simulation_stats(lab, fleet.clock(), controller.compute_id))

    async def layer3_addresses(request: Request, controller: Controller, lab: Lab) -> Response:
        return JSONResponse(bodies.layer3_addresses(lab))

    async def lab_resource_pools(request: Request, controller: Controller, lab: Lab) -> Response:
        return JSONResponse([])  # the simulator has no resource pools: no lab is in one

    async def import_lab(request: Request, controller: Controller) -> Response:
        text = (await request.body()).decode("utf-8", errors="replace")
        try:
            topology = parse_topology(text)
        except ValueError as exc:
            return error(400, str(exc))
        title = request.query_params.get("title")
        if title is not None and not 1 <= len(title) <= 64:
            return error(422, "title: a string of 1 to 64 characters")
        try:
            lab = fleet.import_lab(controller, topology, title)
        except ValueError as exc:
            return error(400, str(exc))
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
        registered = licence.status == "COMPLETED"
        return JSONResponse(
            {
                "udi": {"hostname": "cml-controller", "product_uuid": controller.compute_id},
                "registration": {
                    "status": licence.status,
                    # What a registered controller shows (Cisco's side names the accounts).
                    "smart_account": "cml-sim-smart-account" if registered else None,
                    "virtual_account": "CML-Sim" if registered else None,
                    "register_time": never,
                    "renew_time": never,
                    "expires": expires,
                },
                "authorization": {"status": licence.authorization, "renew_time": never, "expires": expires},
                "reservation_mode": False,
                "features": bodies.licence_features(licence.product_license, fleet.running_nodes(controller))
                if registered
                else [],
                "product_license": {
                    "active": licence.product_license if licence.status == "COMPLETED" else "",
                    "is_enterprise": licence.product_license == "CML_Enterprise",
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

    def licence_renew(what: str) -> Handler:
        async def renew(request: Request, controller: Controller) -> Response:
            if fleet.licence(controller).status != "COMPLETED":
                return error(400, f"Cannot renew the {what}: the product is not registered")
            return Response(status_code=204)

        return renew

    async def product_license(request: Request, controller: Controller) -> Response:
        try:
            value = await request.json()
        except ValueError:
            value = None
        if not isinstance(value, str) or not re.fullmatch(r"\w{1,20}", value):
            return error(400, 'Expected the product license name as a JSON string (e.g. "CML_Enterprise")')
        fleet.set_product_license(controller, value)
        return Response(status_code=204)

    async def telemetry_opt_in(request: Request, controller: Controller) -> Response:
        return JSONResponse({"opt_in": controller.telemetry_opt_in, "show_modal": controller.telemetry_opt_in is None})

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

    async def admin_quiet(request: Request) -> Response:
        try:
            body = await request.json()
            fleet.quiet(request.path_params["cid"], float(body["minutes"]))
        except KeyError as exc:
            if isinstance(exc.args[0], str) and exc.args[0] == "minutes":
                return JSONResponse({"error": "bad request: minutes is required"}, status_code=400)
            return JSONResponse({"error": "no such controller"}, status_code=404)
        except (ValueError, TypeError) as exc:
            return JSONResponse({"error": f"bad request: {exc}"}, status_code=400)
        return JSONResponse({"quiet_minutes": body["minutes"]})

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
            "requests": controller.requests,
            "ready": fleet.ready(controller),
            "labs": len(controller.labs),
            "running_labs": sum(1 for lab in controller.labs.values() if lab.state == "STARTED"),
            "licence": fleet.licence(controller).status,
            "faults": asdict(controller.faults),
        }

    lab = lab_handler
    routes = [
        controller_route("/authenticate", authenticate, ["POST"], auth=False),
        controller_route("/auth_extended", auth_extended, ["POST"], auth=False),
        controller_route("/authok", authok, ["GET"]),
        controller_route("/logout", logout, ["DELETE"]),
        controller_route("/web_session_timeout", get_session_timeout, ["GET"]),
        controller_route("/web_session_timeout/{timeout}", set_session_timeout, ["PATCH"]),
        controller_route("/system_information", system_information, ["GET"], auth=False),
        controller_route("/system_health", system_health, ["GET"]),
        controller_route("/system_stats", system_stats, ["GET"]),
        controller_route("/diagnostics/{category}", diagnostics, ["GET"]),
        controller_route("/system/compute_hosts", compute_hosts, ["GET"]),
        controller_route("/system/maintenance_mode", maintenance_mode, ["GET", "PATCH"]),
        controller_route("/labs", list_labs, ["GET"]),
        controller_route("/labs", create_lab, ["POST"]),
        controller_route("/labs/{lab_id}", lab(get_lab), ["GET"]),
        controller_route("/labs/{lab_id}", lab(delete_lab), ["DELETE"]),
        controller_route("/labs/{lab_id}/state", lab(lab_state), ["GET"]),
        controller_route("/labs/{lab_id}/start", lab_action("start"), ["PUT"]),
        controller_route("/labs/{lab_id}/stop", lab_action("stop"), ["PUT"]),
        controller_route("/labs/{lab_id}/wipe", lab_action("wipe"), ["PUT"]),
        controller_route("/labs/{lab_id}/check_if_converged", lab(converged), ["GET"]),
        controller_route("/labs/{lab_id}/topology", lab(topology), ["GET"]),
        controller_route("/labs/{lab_id}/download", lab(download), ["GET"]),
        controller_route("/labs/{lab_id}/events", lab(lab_events), ["GET"]),
        controller_route("/labs/{lab_id}/lab_element_state", lab(element_state), ["GET"]),
        controller_route("/labs/{lab_id}/nodes", lab(list_nodes), ["GET"]),
        controller_route("/labs/{lab_id}/nodes/{node_id}", lab(get_node), ["GET"]),
        controller_route("/labs/{lab_id}/nodes/{node_id}/interfaces", lab(node_interfaces), ["GET"]),
        controller_route("/labs/{lab_id}/nodes/{node_id}/state", lab(node_state), ["GET"]),
        controller_route("/labs/{lab_id}/nodes/{node_id}/state/start", node_action("start"), ["PUT"]),
        controller_route("/labs/{lab_id}/nodes/{node_id}/state/stop", node_action("stop"), ["PUT"]),
        controller_route("/labs/{lab_id}/nodes/{node_id}/check_if_converged", lab(node_converged), ["GET"]),
        controller_route("/labs/{lab_id}/links", lab(list_links), ["GET"]),
        controller_route("/labs/{lab_id}/links/{link_id}", lab(get_link), ["GET"]),
        controller_route("/labs/{lab_id}/interfaces/{interface_id}", lab(get_interface), ["GET"]),
        controller_route("/labs/{lab_id}/simulation_stats", lab(simulation_stats), ["GET"]),
        controller_route("/labs/{lab_id}/layer3_addresses", lab(layer3_addresses), ["GET"]),
        controller_route("/labs/{lab_id}/resource_pools", lab(lab_resource_pools), ["GET"]),
        controller_route("/import", import_lab, ["POST"]),
        controller_route("/populate_lab_tiles", populate_lab_tiles, ["GET"]),
        controller_route("/node_definitions", node_definitions, ["GET"]),
        controller_route("/image_definitions", image_definitions, ["GET"]),
        controller_route("/licensing", licensing, ["GET"]),
        controller_route("/licensing/registration", register, ["POST"]),
        controller_route("/licensing/registration/renew", licence_renew("registration"), ["PUT"]),
        controller_route("/licensing/authorization/renew", licence_renew("authorization"), ["PUT"]),
        controller_route("/licensing/deregistration", deregister, ["DELETE"]),
        controller_route("/licensing/product_license", product_license, ["PUT"]),
        controller_route("/users", users, ["GET"]),
        controller_route("/users/{username}/id", user_id, ["GET"]),
        controller_route("/users/{user_id}", get_user, ["GET"]),
        controller_route("/telemetry", telemetry_opt_in, ["GET"]),
        controller_route("/telemetry/events", telemetry, ["GET"]),
        Route("/_sim/controllers", admin_list, methods=["GET"]),
        Route("/_sim/controllers", admin_add, methods=["POST"]),
        Route("/_sim/controllers/{cid}/faults", admin_faults, methods=["PUT"]),
        Route("/_sim/bulk", admin_bulk, methods=["POST"]),
        Route("/_sim/stats", admin_stats, methods=["GET"]),
        Route("/_sim/controllers/{cid}", admin_get, methods=["GET"]),
        Route("/_sim/controllers/{cid}", admin_delete, methods=["DELETE"]),
        Route("/_sim/controllers/{cid}/labs", admin_add_lab, methods=["POST"]),
        Route("/_sim/controllers/{cid}/quiet", admin_quiet, methods=["POST"]),
    ]
    # A handler that raises still answers CML's error body (500), not Starlette's text page.
    handlers = {404: _http_error, 405: _http_error, Exception: _http_error}
    return Starlette(routes=routes, exception_handlers=handlers)


def serve(
    host: str = "127.0.0.1",
    port: int = 8701,
    fleet: SimulatedFleet | None = None,
    *,
    certfile: str | None = None,
    keyfile: str | None = None,
) -> None:
    """Serve `fleet` (a new empty one by default) with uvicorn until interrupted: HTTPS when a
    certificate and key are given (see `cmlsim.tls`), else HTTP."""
    import uvicorn  # a dev dependency: only the HTTP mode needs it

    uvicorn.run(
        build_app(fleet or SimulatedFleet()),
        host=host,
        port=port,
        log_level="warning",
        access_log=False,
        ssl_certfile=certfile,
        ssl_keyfile=keyfile,
    )


__all__ = ["build_app", "error", "serve"]
