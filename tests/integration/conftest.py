"""The integration tests run the product's adapters on moto: the moto-backed fixtures."""

from tests.support.aws import api, aws, dynamo_ports  # noqa: F401 - fixtures by name
