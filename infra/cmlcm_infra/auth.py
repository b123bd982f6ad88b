"""Cognito user pool, the web app client and the role groups (admin, operator, viewer).

Users are created by an administrator (no self sign-up); the `cognito:groups` claim of their
token carries the role the API checks. The REST API validates tokens with a Cognito authorizer;
the WebSocket `$connect` handler will verify the same tokens.
"""

from __future__ import annotations

from aws_cdk import Duration, RemovalPolicy
from aws_cdk import aws_cognito as cognito
from constructs import Construct

#: Role groups; a lower precedence wins when a user is in several groups.
ROLE_GROUPS: tuple[tuple[str, int, str], ...] = (
    ("admin", 0, "Full control: settings, provisioning, termination, users' roles"),
    ("operator", 10, "Operate workers and labs: start, stop, pause, refresh, import"),
    ("viewer", 20, "Read-only access to workers, labs and metrics"),
)


class Auth(Construct):
    """User pool + SPA client + role groups."""

    def __init__(self, scope: Construct, construct_id: str) -> None:
        super().__init__(scope, construct_id)

        self.user_pool = cognito.UserPool(
            self,
            "UserPool",
            self_sign_up_enabled=False,
            sign_in_aliases=cognito.SignInAliases(email=True, username=False),
            auto_verify=cognito.AutoVerifiedAttrs(email=True),
            account_recovery=cognito.AccountRecovery.EMAIL_ONLY,
            password_policy=cognito.PasswordPolicy(
                min_length=12,
                require_lowercase=True,
                require_uppercase=True,
                require_digits=True,
                require_symbols=True,
                temp_password_validity=Duration.days(3),
            ),
            # These users can terminate a fleet of EC2 instances: TOTP is mandatory, SMS is off
            # (SIM-swap risk, and it would need an SNS role).
            mfa=cognito.Mfa.REQUIRED,
            mfa_second_factor=cognito.MfaSecondFactor(otp=True, sms=False),
            # Plus tier: compromised-credential and risky sign-in protection, enforced.
            feature_plan=cognito.FeaturePlan.PLUS,
            standard_threat_protection_mode=cognito.StandardThreatProtectionMode.FULL_FUNCTION,
            deletion_protection=True,
            removal_policy=RemovalPolicy.RETAIN,
        )

        # A public client (browser SPA): no secret, SRP only, short-lived tokens, revocable.
        self.client = self.user_pool.add_client(
            "WebClient",
            auth_flows=cognito.AuthFlow(user_srp=True),
            generate_secret=False,
            prevent_user_existence_errors=True,
            enable_token_revocation=True,
            access_token_validity=Duration.hours(1),
            id_token_validity=Duration.hours(1),
            refresh_token_validity=Duration.days(30),
        )

        self.groups = {
            name: self.user_pool.add_group(
                f"{name.capitalize()}Group", group_name=name, precedence=precedence, description=description
            )
            for name, precedence, description in ROLE_GROUPS
        }
