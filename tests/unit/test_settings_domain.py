"""Fleet settings as a specification: every bound, the messages users see, region defaults."""

from __future__ import annotations

import pytest
from pydantic import ValidationError

from cmlcm.domain.settings import RegionDefaults, Settings, check_ami_id, check_instance_type

#: field → (lowest allowed, highest allowed), as the product documents them.
BOUNDS = {
    "idle_timeout_minutes": (5, 7 * 24 * 60),
    "collect_interval_minutes": (1, 60),
    "collect_batch_size": (1, 1000),
    "collect_max_concurrency": (1, 40),
    "reconcile_interval_minutes": (5, 1440),
    "refresh_min_interval_seconds": (5, 3600),
    "cml_ready_timeout_minutes": (1, 180),
    "instance_running_timeout_minutes": (1, 60),
    "provision_poll_seconds": (1, 300),
}


def _errors(exc: pytest.ExceptionInfo[ValidationError]) -> list[tuple[str, str]]:
    return [(".".join(str(p) for p in e["loc"]), e["msg"]) for e in exc.value.errors()]


def test_defaults_are_valid_and_documented_values():
    settings = Settings()
    assert (settings.idle_detection_enabled, settings.idle_timeout_minutes, settings.collect_interval_minutes) == (
        True,
        60,
        5,
    )
    assert (settings.reconcile_policy_unrecorded, settings.reconcile_policy_failed_live) == ("mark", "terminate")
    assert settings.region_defaults == {} and settings.version == 0
    for field, (low, high) in BOUNDS.items():
        assert low <= getattr(settings, field) <= high, field


@pytest.mark.parametrize(("field", "value"), [(f, v) for f, (lo, hi) in BOUNDS.items() for v in (lo, hi)])
def test_each_bound_itself_is_accepted(field, value):
    assert getattr(Settings(**{field: value}), field) == value


@pytest.mark.parametrize(
    ("field", "value", "message"),
    [(f, lo - 1, f"greater than or equal to {lo}") for f, (lo, hi) in BOUNDS.items()]
    + [(f, hi + 1, f"less than or equal to {hi}") for f, (lo, hi) in BOUNDS.items()],
)
def test_one_past_each_bound_is_refused_naming_the_field(field, value, message):
    with pytest.raises(ValidationError) as caught:
        Settings(**{field: value})
    [(loc, msg)] = _errors(caught)
    assert loc == field and message in msg


@pytest.mark.parametrize(
    ("field", "value"),
    [("reconcile_policy_unrecorded", "delete"), ("reconcile_policy_failed_live", "adopt"), ("unknown_knob", 1)],
)
def test_unknown_policies_and_fields_are_refused(field, value):
    with pytest.raises(ValidationError) as caught:
        Settings(**{field: value})
    assert _errors(caught)[0][0] == field


def test_settings_are_immutable():
    with pytest.raises(ValidationError):
        Settings().idle_timeout_minutes = 10


@pytest.mark.parametrize(
    "value",
    ["c5.metal", "m5zn.metal", "t3.micro", "x2iedn.32xlarge", "u-6tb1.metal", "mac2-m2pro.metal", "g4dn.xlarge"],
)
def test_real_instance_types_are_accepted(value):
    assert check_instance_type(value) == value
    assert RegionDefaults(instance_type=value).instance_type == value


@pytest.mark.parametrize("value", ["big", "C5.metal", "c5", "c.metal", "c5.", ".metal", "5c.metal", "c5 .metal", ""])
def test_other_instance_types_are_refused_with_an_example(value):
    with pytest.raises(ValueError, match=r"must look like an EC2 instance type, e\.g\. m5zn\.metal"):
        check_instance_type(value)
    with pytest.raises(ValidationError) as caught:
        RegionDefaults(instance_type=value)
    [(loc, msg)] = _errors(caught)
    assert loc == "instance_type" and "m5zn.metal" in msg


@pytest.mark.parametrize("value", [None, "ami-01234567", "ami-0123456789abcdef0", "ami-0123456789abcdef0"[:21]])
def test_ami_ids_of_8_to_17_hex_digits_are_accepted(value):
    assert check_ami_id(value) == value
    assert RegionDefaults(ami_id=value).ami_id == value


@pytest.mark.parametrize(
    "value", ["ami-0123456", "ami-0123456789abcdef01", "ami-0123456789ABCDEF0", "ami-xyz12345", "0123456789abcdef0", ""]
)
def test_other_ami_ids_are_refused_with_an_example(value):
    with pytest.raises(ValueError, match="must be an AMI id like ami-0123456789abcdef0"):
        check_ami_id(value)
    with pytest.raises(ValidationError) as caught:
        RegionDefaults(ami_id=value)
    assert _errors(caught)[0][0] == "ami_id"


def test_user_data_is_limited_to_16_kib():
    assert RegionDefaults(user_data="x" * 16384).user_data
    with pytest.raises(ValidationError) as caught:
        RegionDefaults(user_data="x" * 16385)
    assert _errors(caught)[0][0] == "user_data"


@pytest.mark.parametrize("region", ["us-east-1", "eu-central-2", "ap-southeast-4", "us-gov-west-1", "cn-north-1"])
def test_region_defaults_accept_aws_region_names(region):
    settings = Settings.model_validate({"region_defaults": {region: {"instance_type": "m5zn.metal"}}})
    assert settings.region_defaults[region].instance_type == "m5zn.metal"


@pytest.mark.parametrize("region", ["mars-1", "US-EAST-1", "us-east", "us-east-12", "useast-1", "us_east_1", ""])
def test_region_defaults_refuse_other_keys_without_echoing_them(region):
    # The message names the rule, not the value: a value sent may be a credential pasted by mistake
    with pytest.raises(ValidationError) as caught:
        Settings.model_validate({"region_defaults": {region: {}}})
    message = caught.value.errors()[0]["msg"]
    assert "a region_defaults key is not an AWS region name" in message
    assert not region or repr(region) not in message


def test_a_bad_region_default_names_the_nested_field():
    with pytest.raises(ValidationError) as caught:
        Settings.model_validate({"region_defaults": {"us-east-1": {"instance_type": "huge"}}})
    assert _errors(caught)[0][0] == "region_defaults.us-east-1.instance_type"


def test_defaults_for_a_configured_region_and_the_fallback_for_others():
    # Given defaults for us-east-1 only
    configured = RegionDefaults(
        instance_type="m5zn.metal", ami_id="ami-0123456789abcdef0", security_group_ids=("sg-1",)
    )
    settings = Settings(region_defaults={"us-east-1": configured})
    # Then that region gets them and every other region the built-in defaults
    assert settings.defaults_for("us-east-1") == configured
    fallback = settings.defaults_for("us-west-2")
    assert fallback == RegionDefaults() and (fallback.instance_type, fallback.ami_id, fallback.ami_name_pattern) == (
        "c5.metal",
        None,
        "cml2*",
    )


def test_the_document_round_trips_through_json():
    settings = Settings.model_validate(
        {
            "idle_timeout_minutes": 90,
            "region_defaults": {"us-west-2": {"ami_id": "ami-0123456789abcdef0"}},
            "version": 3,
        }
    )
    assert Settings.model_validate_json(settings.model_dump_json()) == settings
