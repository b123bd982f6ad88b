"""Response bodies of the simulated CML 2.9 API, built from the fleet's state. Each function
returns what one schema of the vendored OpenAPI subset describes (named in its docstring); the
conformance tests validate them, the simulator does not (no per-request cost)."""

from __future__ import annotations

from datetime import datetime
from typing import Any

from cmlsim.labs import Lab, SimInterface, SimLink, SimNode

#: The one user of a simulated controller (`admin`, whose password is the fleet's).
ADMIN_ID = "90f84e38-a71c-4d57-8d90-00fa8a197385"
PERMISSIONS = ["lab_admin", "lab_edit", "lab_exec", "lab_view"]
BOOT_PROGRESS = {"BOOTED": "Booted", "STARTED": "Booting"}

#: Node definitions the simulator knows (what `sample_topology` uses, plus a switch and a host).
NODE_DEFINITIONS: dict[str, dict[str, Any]] = {
    "iosv": {"nature": "router", "label": "IOSv", "prefix": "iosv-", "ram": 512, "ifaces": "GigabitEthernet0/{}"},
    "unmanaged_switch": {
        "nature": "switch",
        "label": "Unmanaged Switch",
        "prefix": "unmanaged-switch-",
        "ram": 1,
        "ifaces": "port{}",
    },
    "alpine": {"nature": "server", "label": "Alpine", "prefix": "alpine-", "ram": 512, "ifaces": "eth{}"},
}
_DRIVERS = {"iosv": ("kvm", "iosv"), "unmanaged_switch": ("none", "unmanaged_switch"), "alpine": ("kvm", "alpine")}


def user(created: datetime, lab_ids: list[str]) -> dict[str, Any]:
    """`UserResponse` of the admin."""
    stamp = created.isoformat()
    return {
        "id": ADMIN_ID,
        "username": "admin",
        "fullname": "Administrator",
        "description": "",
        "email": "",
        "admin": True,
        "groups": [],
        "associations": [],
        "resource_pool": None,
        "opt_in": False,
        "tour_version": "",
        "created": stamp,
        "modified": stamp,
        "directory_dn": "",
        "labs": lab_ids,
        "pubkey_info": None,
    }


def lab(lab: Lab) -> dict[str, Any]:
    """`LabResponse`."""
    return {
        "id": lab.id,
        "created": lab.created.isoformat(),
        "modified": lab.modified.isoformat(),
        "lab_description": lab.description,
        "lab_notes": lab.notes,
        "lab_title": lab.title,
        "owner": ADMIN_ID,
        "owner_username": "admin",
        "owner_fullname": "Administrator",
        "state": lab.state,
        "node_count": lab.node_count,
        "link_count": lab.link_count,
        "groups": [],
        "effective_permissions": PERMISSIONS,
    }


def node(lab: Lab, node: SimNode, now: datetime, compute_id: str, *, configuration: bool = True) -> dict[str, Any]:
    """`Node` (operational data left out, as `operational=false` does)."""
    state = node.state_at(now)
    extras = dict(node.extras)
    if not configuration:
        extras.pop("configuration", None)
    return {
        "id": node.id,
        "lab_id": lab.id,
        "label": node.label,
        "node_definition": node.node_definition,
        "x": node.x,
        "y": node.y,
        "image_definition": None,
        "ram": None,
        "cpus": None,
        "cpu_limit": None,
        "data_volume": None,
        "boot_disk_size": None,
        "hide_links": False,
        "tags": [],
        "parameters": {},
        **extras,
        "state": state,
        "boot_progress": BOOT_PROGRESS.get(state, "Not running"),
        "compute_id": compute_id if node.state == "STARTED" else None,
        "pinned_compute_id": None,
        "resource_pool": None,
        "iol_app_id": None,
        "vnc_key": None,
        "serial_consoles": [],
    }


def interface(lab: Lab, interface: SimInterface) -> dict[str, Any]:
    """`InterfaceResponse`."""
    return {
        "id": interface.id,
        "lab_id": lab.id,
        "node": interface.node,
        "label": interface.label,
        "slot": interface.slot,
        "type": interface.type,
        "mac_address": interface.mac_address,
        "is_connected": any(interface.id in (link.interface_a, link.interface_b) for link in lab.links.values()),
        "state": lab.interface_state(interface),
    }


def link(lab: Lab, link: SimLink) -> dict[str, Any]:
    """`Link`."""
    return {
        "id": link.id,
        "lab_id": lab.id,
        "label": link.label,
        "state": lab.link_state(link),
        "interface_a": link.interface_a,
        "interface_b": link.interface_b,
        "node_a": link.node_a,
        "node_b": link.node_b,
        "link_capture_key": "",
    }


def topology(lab: Lab, *, configuration: bool) -> dict[str, Any]:
    """`TopologyResponse`: the lab as `GET /labs/{id}/topology` gives it (UUID ids)."""
    nodes = []
    for item in lab.nodes.values():
        extras = dict(item.extras)
        if not configuration:
            extras.pop("configuration", None)
        nodes.append(
            {
                "id": item.id,
                "label": item.label,
                "node_definition": item.node_definition,
                "x": item.x,
                "y": item.y,
                **extras,
                "interfaces": [
                    {
                        "id": i.id,
                        "node": item.id,
                        "label": i.label,
                        **({"slot": i.slot} if i.slot is not None else {}),
                        "type": i.type,
                        "mac_address": i.mac_address,
                    }
                    for i in (lab.interfaces[iid] for iid in item.interfaces)
                ],
            }
        )
    header = {
        "version": lab.version,
        "title": lab.title,
        "description": lab.description,
        "notes": lab.notes,
        "owner": ADMIN_ID,
    }
    return {"lab": header, "nodes": nodes, "links": [link(lab, item) for item in lab.links.values()]}


def simulation_stats(lab: Lab, now: datetime, compute_id: str) -> dict[str, Any]:
    """`LabSimulationStatsResponse` (the 2.9 shape: lists of nodes and links)."""
    return {
        "nodes": [node(lab, item, now, compute_id, configuration=False) for item in lab.nodes.values()],
        "links": [link(lab, item) for item in lab.links.values()],
    }


def layer3_addresses(lab: Lab) -> dict[str, Any]:
    """`{node_id: NodeNetworkAddressesResponse}` of a started lab's running nodes; empty otherwise
    (the simulator runs no DHCP, so interfaces carry no address)."""
    return {
        item.id: {
            "name": item.label,
            "interfaces": {
                iid: {"id": iid, "label": lab.interfaces[iid].label, "ip4": [], "ip6": []} for iid in item.interfaces
            },
        }
        for item in lab.nodes.values()
        if item.state == "STARTED"
    }


def node_definition(definition_id: str) -> dict[str, Any]:
    """`NodeDefinitionResponse` of one of `NODE_DEFINITIONS`."""
    spec = NODE_DEFINITIONS[definition_id]
    domain, driver = _DRIVERS[definition_id]
    return {
        "id": definition_id,
        "boot": {"timeout": 480, "completed": ["CONFIG_FILE"], "uses_regex": False},
        "sim": {"linux_native": {"libvirt_domain_driver": domain, "driver": driver, "ram": spec["ram"], "cpus": 1}},
        "general": {"nature": spec["nature"], "description": spec["label"], "read_only": True},
        "configuration": {"generator": {"driver": None}},
        "device": {
            "interfaces": {
                "serial_ports": 1 if domain == "kvm" else 0,
                "physical": [spec["ifaces"].format(slot) for slot in range(4)],
                "has_loopback_zero": spec["nature"] == "router",
                "default_count": 2,
            }
        },
        "ui": {
            "label_prefix": spec["prefix"],
            "icon": "router" if spec["nature"] == "router" else ("switch" if spec["nature"] == "switch" else "server"),
            "label": spec["label"],
            "visible": True,
            "group": "Cisco" if definition_id == "iosv" else "Others",
            "description": spec["label"],
        },
        "schema_version": "0.0.1",
    }


def image_definitions() -> list[dict[str, Any]]:
    """`[ImageDefinition]`: one image per node definition that boots a disk."""
    return [
        {
            "id": f"{definition_id}-sim",
            "node_definition_id": definition_id,
            "label": f"{spec['label']} (simulated)",
            "disk_image": f"{definition_id}-sim.qcow2",
            "read_only": True,
            "schema_version": "0.0.1",
        }
        for definition_id, spec in NODE_DEFINITIONS.items()
        if _DRIVERS[definition_id][0] == "kvm"
    ]


def licence_features(product_license: str, running_nodes: int) -> list[dict[str, Any]]:
    """`[LicensingFeature]` of a registered controller: the product licence and node licences."""
    enterprise = product_license == "CML_Enterprise"
    return [
        {
            "id": "regid.2019-10.com.cisco.CML_ENT_BASE,1.0_b4e4a3a1-1a4b-4a8e-9f0e-5d2c0a9f1c01"
            if enterprise
            else "regid.2019-10.com.cisco.CML_PERSONAL,1.0_0c6e3b1e-7f0a-4b7e-8f4e-2d1c5a9e3b02",
            "name": "CML - Enterprise License" if enterprise else "CML - Personal License",
            "description": "Cisco Modeling Labs product licence",
            "version": "1.0",
            "in_use": 1,
            "status": "IN_COMPLIANCE",
            "min": 1,
            "max": 1,
        },
        {
            "id": "regid.2019-10.com.cisco.CML_NODE_COUNT,1.0_7d0c9e2a-3b1f-4c5d-8e6f-9a0b1c2d3e03",
            "name": "CML - Expansion Nodes",
            "description": "Nodes running at once",
            "version": "1.0",
            "in_use": running_nodes,
            "status": "IN_COMPLIANCE",
            "min": 0,
            "max": 300,
        },
    ]


def lab_tiles(labs: list[Lab], info: dict[str, Any], health: dict[str, Any]) -> dict[str, Any]:
    """`LabTilesResponse`: a `LabUi` per lab (the dashboard's tiles)."""
    simplified = []
    for definition_id, spec in NODE_DEFINITIONS.items():
        full = node_definition(definition_id)
        console = _DRIVERS[definition_id][0] == "kvm"
        simplified.append(
            {
                **{key: full[key] for key in ("id", "general", "device", "ui")},
                "sim": {"ram": spec["ram"], "cpus": 1, "console": console, "simulate": True, "vnc": console},
            }
        )
    return {
        "lab_tiles": {
            item.id: {
                **lab(item),
                "topology": {"nodes": len(item.nodes), "links": len(item.links)},
                "health": health,
                "system_information": info,
                "simplified_node_definitions": simplified,
            }
            for item in labs
        }
    }


def _state_times(item: SimNode, now: datetime) -> dict[str, int]:
    """`NodeStateTimes`: epoch seconds the node was queued, started and booted (0: not yet)."""
    if item.state != "STARTED" or item.started_at is None:
        return {"QUEUED": 0, "STARTED": 0, "BOOTED": 0}
    started = int(item.started_at.timestamp())
    booted = int(item.converged_at.timestamp()) if item.converged_at and item.converged(now) else 0
    return {"QUEUED": started, "STARTED": started, "BOOTED": booted}


def lab_diagnostics(lab: Lab, now: datetime) -> dict[str, Any]:
    """`LabDiagnostics`."""
    return {
        "created": lab.created.isoformat(),
        "allocated": lab.state == "STARTED",
        "nodes": {
            item.id: {"label": item.label, "state": item.state_at(now), "state_times": _state_times(item, now)}
            for item in lab.nodes.values()
        },
        "links": {
            item.id: {"state": lab.link_state(item), "interface_a": item.interface_a, "interface_b": item.interface_b}
            for item in lab.links.values()
        },
        "interfaces": {
            item.id: {
                "label": item.label,
                **({"slot": item.slot} if item.slot is not None else {}),
                "state": lab.interface_state(item),
                "node": item.node,
            }
            for item in lab.interfaces.values()
        },
    }


__all__ = [
    "ADMIN_ID",
    "BOOT_PROGRESS",
    "NODE_DEFINITIONS",
    "image_definitions",
    "interface",
    "lab",
    "lab_diagnostics",
    "lab_tiles",
    "layer3_addresses",
    "licence_features",
    "link",
    "node",
    "node_definition",
    "simulation_stats",
    "topology",
    "user",
]
