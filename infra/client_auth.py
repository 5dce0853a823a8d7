"""OAuth2 client credentials for client applications: a Cognito user pool with no human users,
a resource server with `maas/invoke` and `maas/admin` scopes, and one app client per client."""

from __future__ import annotations

from aws_cdk import Aws, Duration, RemovalPolicy
from aws_cdk import aws_cognito as cognito
from constructs import Construct

from infra.config import ApiClient
from infra.nag import acknowledge

RESOURCE_SERVER = "maas"


class ClientAuth(Construct):
    def __init__(
        self,
        scope: Construct,
        construct_id: str,
        *,
        resource_prefix: str,
        clients: tuple[ApiClient, ...],
        removal_policy: RemovalPolicy,
        deletion_protection: bool,
    ) -> None:
        super().__init__(scope, construct_id)
        self.user_pool = cognito.UserPool(
            self,
            "Pool",
            self_sign_up_enabled=False,
            password_policy=cognito.PasswordPolicy(
                min_length=14,
                require_digits=True,
                require_lowercase=True,
                require_uppercase=True,
                require_symbols=True,
            ),
            account_recovery=cognito.AccountRecovery.NONE,
            deletion_protection=deletion_protection,
            removal_policy=removal_policy,
        )
        no_humans = (
            "The pool holds no users: self sign-up is off and only OAuth2 client-"
            "credentials app clients exist, so MFA and user threat protection "
            "(plus tier) have nothing to protect."
        )
        acknowledge(self.user_pool, "AwsSolutions-COG2", no_humans)
        acknowledge(self.user_pool, "AwsSolutions-COG8", no_humans)
        scopes = {
            name: cognito.ResourceServerScope(scope_name=name, scope_description=text)
            for name, text in (
                ("invoke", "call predict and read the registry"),
                ("admin", "register, deploy, train and roll back models"),
            )
        }
        server = self.user_pool.add_resource_server(
            "ResourceServer", identifier=RESOURCE_SERVER, scopes=list(scopes.values())
        )
        self.domain = self.user_pool.add_domain(
            "Domain",
            cognito_domain=cognito.CognitoDomainOptions(
                domain_prefix=f"{resource_prefix}-{Aws.ACCOUNT_ID}"
            ),
        )
        self.token_url = f"{self.domain.base_url()}/oauth2/token"
        self.app_clients: dict[str, cognito.UserPoolClient] = {}
        for client in clients:
            self.app_clients[client.name] = self.user_pool.add_client(
                f"{client.name}-client",
                user_pool_client_name=client.name,
                generate_secret=True,
                auth_flows=cognito.AuthFlow(),
                prevent_user_existence_errors=True,
                access_token_validity=Duration.hours(1),
                o_auth=cognito.OAuthSettings(
                    flows=cognito.OAuthFlows(client_credentials=True),
                    scopes=[
                        cognito.OAuthScope.custom(f"{RESOURCE_SERVER}/{s}") for s in client.scopes
                    ],
                ),
            )
            # The scopes are plain strings; the server that defines them must exist first.
            self.app_clients[client.name].node.add_dependency(server)
