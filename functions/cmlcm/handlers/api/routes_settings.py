"""Settings routes: read, replace the whole document (PUT), or change part of it (PATCH)."""

from __future__ import annotations

from aws_lambda_powertools.event_handler.api_gateway import Router

from cmlcm.config import get_config
from cmlcm.container import current
from cmlcm.domain.settings import Settings
from cmlcm.handlers.api.auth import Role, requires
from cmlcm.handlers.api.models import SettingsBody, SettingsPatch
from cmlcm.services.settings import patch_settings, save_settings

router = Router()


@router.get("/settings", middlewares=[requires(Role.VIEWER)], summary="Read the fleet settings")
def get_settings_doc() -> Settings:
    return current().settings.get()


@router.put("/settings", middlewares=[requires(Role.ADMIN)], summary="Replace the fleet settings (every field)")
def put_settings(body: SettingsBody) -> Settings:
    """Replaces the whole document: every field is required (422 names the missing ones), so
    nothing is reset by omission; the collect and reconcile schedules follow the new intervals."""
    repo = current().settings
    version = body.version if body.version is not None else repo.get().version
    new = Settings.model_validate({**body.model_dump(exclude={"version"}), "version": version})
    return save_settings(repo, current().job_schedules, new, supported_regions=get_config().regions)


@router.patch("/settings", middlewares=[requires(Role.ADMIN)], summary="Change some fleet settings (merge patch)")
def patch_settings_doc(body: SettingsPatch) -> Settings:
    """JSON merge patch (RFC 7396, sent as application/json): fields left out are kept, a field
    given as null goes back to its default, a region of `region_defaults` given as null is
    removed. `version` (from GET) is required; 409 when the settings changed since."""
    patch = body.model_dump(mode="json", exclude_unset=True, exclude={"version"})
    return patch_settings(
        current().settings,
        current().job_schedules,
        patch,
        version=body.version,
        supported_regions=get_config().regions,
    )
