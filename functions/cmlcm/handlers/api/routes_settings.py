"""Settings and health routes."""

from __future__ import annotations

from aws_lambda_powertools.event_handler.api_gateway import Router

from cmlcm.config import get_settings
from cmlcm.domain.settings import Settings
from cmlcm.handlers.api import deps
from cmlcm.handlers.api.auth import Role, requires
from cmlcm.handlers.api.models import SettingsBody
from cmlcm.services.settings import save_settings

router = Router()


@router.get("/settings", middlewares=[requires(Role.VIEWER)], summary="Read the fleet settings")
def get_settings_doc() -> Settings:
    return deps.ports().settings.get()


@router.put("/settings", middlewares=[requires(Role.ADMIN)], summary="Replace the fleet settings")
def put_settings(body: SettingsBody) -> Settings:
    """Replaces the document; the collect and reconcile schedules follow the new intervals."""
    repo = deps.ports().settings
    version = body.version if body.version is not None else repo.get().version
    new = Settings.model_validate({**body.model_dump(exclude={"version"}), "version": version})
    return save_settings(repo, deps.schedules(), new, supported_regions=get_settings().regions)
