"""Settings use cases: validate against the deployment, save, and apply what runs elsewhere."""

from __future__ import annotations

from typing import Any

from pydantic import ValidationError

from cmlcm.domain.errors import ConcurrentModification, ExternalServiceError, ValidationFailed
from cmlcm.domain.settings import Settings
from cmlcm.ports import ScheduleRates, SettingsRepository
from cmlcm.services.jobs import job_intervals


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
                f"region_defaults: a region is not supported; use one of {', '.join(supported_regions)}",
                field=f"region_defaults.{region}",
            )
    saved = repo.save(new)
    if schedules is not None:
        for job, seconds in job_intervals(saved).items():
            schedules.set_interval(job, seconds // 60)
    return saved


def merge_patch(target: Any, patch: Any) -> Any:
    """RFC 7396 JSON merge patch: objects merge key by key, null removes a key, anything else
    replaces the target."""
    if not isinstance(patch, dict):
        return patch
    merged = dict(target) if isinstance(target, dict) else {}
    for key, value in patch.items():
        if value is None:
            merged.pop(key, None)
        else:
            merged[key] = merge_patch(merged.get(key), value)
    return merged


def patch_settings(
    repo: SettingsRepository,
    schedules: ScheduleRates | None,
    patch: dict[str, Any],
    *,
    version: int,
    supported_regions: tuple[str, ...],
) -> Settings:
    """Apply a JSON merge patch made against `version`: fields left out are kept (nothing is
    reset by omission), a field patched to null goes back to its default. A stale `version` is
    a 409 before anything is written; the save itself is guarded by the version too."""
    current = repo.get()
    if version != current.version:
        raise ConcurrentModification(
            f"settings are at version {current.version}, this patch was made against {version}: "
            "read them again and re-apply the change",
            field="version",
        )
    document = merge_patch(current.model_dump(mode="json", exclude={"version"}), patch)
    try:
        new = Settings.model_validate({**document, "version": version})
    except ValidationError as exc:
        first = exc.errors()[0]
        field = ".".join(str(part) for part in first["loc"]) or "body"
        raise ValidationFailed(f"{field}: {first['msg']}", field=field) from None
    return save_settings(repo, schedules, new, supported_regions=supported_regions)


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
