"""Settings use cases: validate against the deployment, save, and apply what runs elsewhere."""

from __future__ import annotations

from typing import Protocol

from cmlcm.domain.errors import ExternalServiceError, ValidationFailed
from cmlcm.domain.settings import Settings
from cmlcm.ports import SettingsRepository
from cmlcm.services.jobs import job_intervals


class ScheduleRates(Protocol):
    def set_interval(self, job: str, minutes: int) -> bool: ...


def save_settings(
    repo: SettingsRepository,
    schedules: ScheduleRates | None,
    new: Settings,
    *,
    supported_regions: tuple[str, ...],
) -> Settings:
    """Store `new` (optimistically locked by its version) and move the schedules to its intervals."""
    for region in new.region_defaults:
        if region not in supported_regions:
            raise ValidationFailed(
                f"region {region!r} is not supported; use one of {', '.join(supported_regions)}",
                field=f"region_defaults.{region}",
            )
    saved = repo.save(new)
    if schedules is not None:
        for job, seconds in job_intervals(saved).items():
            schedules.set_interval(job, seconds // 60)
    return saved


def heal_schedule_rates(schedules: ScheduleRates, settings: Settings) -> dict[str, str]:
    """Put both schedules back on the settings' intervals. A deployment resets them to the
    template's rates (CloudFormation owns the schedules), so every collection run calls this:
    after a deployment the next run restores what the operator set. Returns, per job, "ok",
    "none" (this deployment has no such schedule) or the fault's code; never raises for a fault
    (collection must not fail because a rate could not be moved)."""
    outcome: dict[str, str] = {}
    for job, seconds in job_intervals(settings).items():
        try:
            outcome[job] = "ok" if schedules.set_interval(job, seconds // 60) else "none"
        except ExternalServiceError as exc:
            outcome[job] = exc.code
    return outcome
