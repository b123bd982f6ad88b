"""A CML 2.9 controller simulator: one process, many virtual controllers, fault injection."""
from cmlsim.app import build_app
from cmlsim.fleet import Faults, SimulatedFleet, sample_topology

__all__ = ["Faults", "SimulatedFleet", "build_app", "sample_topology"]
