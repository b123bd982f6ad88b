"""The Secrets Manager secret holding the CML admin credentials (JSON {"username","password"})."""

from __future__ import annotations

import json

from aws_cdk import RemovalPolicy
from aws_cdk import aws_secretsmanager as secretsmanager
from constructs import Construct

from cmlcm_infra.nag import acknowledge

CML_CREDENTIALS_SECRET_NAME = "cmlcm/cml-credentials"


class CmlCredentials(Construct):
    """Creates `cmlcm/cml-credentials` with a generated password; read by functions at run time."""

    def __init__(self, scope: Construct, construct_id: str, *, username: str = "admin") -> None:
        super().__init__(scope, construct_id)
        self.secret = secretsmanager.Secret(
            self,
            "Secret",
            secret_name=CML_CREDENTIALS_SECRET_NAME,
            description="CML admin credentials used by CML Cloud Manager to call each worker's CML API",
            generate_secret_string=secretsmanager.SecretStringGenerator(
                secret_string_template=json.dumps({"username": username}),
                generate_string_key="password",
                password_length=32,
                # CML user-data and shell tooling quote passwords poorly; length carries entropy.
                exclude_punctuation=True,
            ),
            # Workers provisioned with this password keep it after a stack deletion.
            removal_policy=RemovalPolicy.RETAIN,
        )
        acknowledge(
            self.secret,
            "AwsSolutions-SMG4",
            "The password is baked into every CML worker at provisioning time; rotating it needs a "
            "rotation function that updates each running worker first. Until that exists, rotation "
            "is manual (update the workers, then the secret).",
        )
