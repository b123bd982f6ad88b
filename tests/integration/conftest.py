"""The integration tests run the product's adapters on moto: the moto-backed fixtures."""

from tests.support.aws import api, aws, dynamo_ports, moto_container  # noqa: F401 - fixtures by name
