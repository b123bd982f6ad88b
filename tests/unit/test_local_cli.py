"""The local mode's command line: counts and durations are 0 or more, and a bad one is refused
naming its option (a negative --idle-workers would slice the seeded fleet from its end)."""

from __future__ import annotations

import pytest

from cmlcm_local.__main__ import parse_args


def test_the_defaults_and_given_values_are_read():
    args = parse_args([])
    assert (args.workers, args.idle_workers, args.cml_boot_seconds, args.no_scheduler) == (5, 0, 8.0, False)
    args = parse_args(["--workers", "3", "--idle-workers", "1", "--cml-boot-seconds", "0.5", "--no-scheduler"])
    assert (args.workers, args.idle_workers, args.cml_boot_seconds, args.no_scheduler) == (3, 1, 0.5, True)


@pytest.mark.parametrize(
    ("option", "value", "says"),
    [
        ("--workers", "-1", "must be 0 or more"),
        ("--idle-workers", "-2", "must be 0 or more"),
        ("--idle-workers", "two", "not a number"),
        ("--cml-boot-seconds", "-0.5", "must be 0 or more"),
    ],
)
def test_a_bad_count_is_refused_naming_its_option(option, value, says, capsys):  # noqa: ANN001
    with pytest.raises(SystemExit) as refused:
        parse_args([option, value])
    assert refused.value.code == 2
    error = capsys.readouterr().err
    assert option in error and says in error
