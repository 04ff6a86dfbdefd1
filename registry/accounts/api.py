"""HTTP endpoints for tokens, organisations, users and reward policies (thin: schema → service)."""

from __future__ import annotations

import uuid
from datetime import timedelta
from typing import Any

from flask import current_app, g
from flask.views import MethodView
from flask_smorest.pagination import PaginationParameters

from registry.accounts import audit_scope, schemas, services
from registry.accounts.models import ApiToken, Organisation, User
from registry.core.actor import require_actor
from registry.core.api import make_blueprint, paginate, public
from registry.core.http import get_session
from registry.core.ratelimit import TOO_MANY_REQUESTS, sign_in_limited

blp = make_blueprint("accounts", __name__, "Sign-in tokens, organisations and their users")


@blp.route("/tokens")
class Tokens(MethodView):
    @public
    @sign_in_limited
    @blp.arguments(schemas.TokenRequestSchema)
    @blp.response(201, schemas.TokenSchema)
    @blp.alt_response(429, description=TOO_MANY_REQUESTS)
    def post(self, data: dict[str, Any]) -> dict[str, Any]:
        """Exchange e-mail and password for a bearer token (shown once).

        Limited per client address and per e-mail address (429 with ``Retry-After``); repeated
        wrong passwords lock the account for a while, answering like a wrong password."""
        ttl = timedelta(days=current_app.config["REGISTRY_SETTINGS"].token_ttl_days)
        session = get_session()
        try:
            token, api_token = services.issue_token(
                session, email=data["email"], password=data["password"], ttl=ttl
            )
        except services.SignInRefused:
            session.commit()  # keep the failure count and any lock; the answer is still 401
            raise
        return {"token": token, "expires_dt": api_token.expires_dt}


@blp.route("/tokens/current")
class CurrentToken(MethodView):
    @blp.response(204)
    def delete(self) -> None:
        """Revoke the token this request was made with."""
        actor = require_actor()
        api_token: ApiToken = g.api_token
        services.revoke_token(get_session(), actor=actor, api_token=api_token)


@blp.route("/organisations")
class Organisations(MethodView):
    @blp.response(200, schemas.OrganisationOutSchema(many=True))
    @blp.paginate()
    def get(self, pagination_parameters: PaginationParameters) -> list[Organisation]:
        """Organisations you may see: all for admins and auditors, your own otherwise."""
        actor = require_actor()
        return paginate(get_session(), services.visible_organisations(actor), pagination_parameters)

    @blp.arguments(schemas.OrganisationSchema)
    @blp.response(201, schemas.OrganisationOutSchema)
    def post(self, data: dict[str, Any]) -> Organisation:
        """Register an organisation (admins)."""
        return services.create_organisation(get_session(), actor=require_actor(), data=data)


@blp.route("/organisations/<uuid:organisation_id>")
class OrganisationById(MethodView):
    @blp.response(200, schemas.OrganisationOutSchema)
    def get(self, organisation_id: uuid.UUID) -> Organisation:
        return services.get_organisation(
            get_session(), actor=require_actor(), organisation_id=organisation_id
        )


@blp.route("/organisations/<uuid:organisation_id>/users")
class OrganisationUsers(MethodView):
    @blp.response(200, schemas.UserSchema(many=True))
    @blp.paginate()
    def get(
        self, organisation_id: uuid.UUID, pagination_parameters: PaginationParameters
    ) -> list[User]:
        session = get_session()
        statement = services.list_users(
            session, actor=require_actor(), organisation_id=organisation_id
        )
        return paginate(session, statement, pagination_parameters)

    @blp.arguments(schemas.UserSchema)
    @blp.response(201, schemas.UserSchema)
    def post(self, data: dict[str, Any], organisation_id: uuid.UUID) -> User:
        """Add a user (admins anywhere; TTO staff to their own organisation)."""
        return services.create_user(
            get_session(), actor=require_actor(), organisation_id=organisation_id, data=data
        )


@blp.route("/organisations/<uuid:organisation_id>/reward-policy")
class RewardPolicy(MethodView):
    @blp.response(200, schemas.RewardPolicySchema)
    def get(self, organisation_id: uuid.UUID) -> dict[str, Any]:
        return services.reward_policy(
            get_session(), actor=require_actor(), organisation_id=organisation_id
        )

    @blp.arguments(schemas.RewardPolicySchema)
    @blp.response(200, schemas.RewardPolicySchema)
    def put(self, data: dict[str, Any], organisation_id: uuid.UUID) -> dict[str, Any]:
        return services.set_reward_policy(
            get_session(), actor=require_actor(), organisation_id=organisation_id, data=data
        )


@blp.route("/users/<uuid:user_id>/audit-scope")
class AuditScope(MethodView):
    @blp.response(200, schemas.AuditScopeSchema)
    def get(self, user_id: uuid.UUID) -> dict[str, Any]:
        """The organisations an auditor reads (admins; the auditor itself)."""
        return audit_scope.get_audit_scope(get_session(), actor=require_actor(), user_id=user_id)

    @blp.arguments(schemas.AuditScopeSchema)
    @blp.response(200, schemas.AuditScopeSchema)
    def put(self, data: dict[str, Any], user_id: uuid.UUID) -> dict[str, Any]:
        """Grant an auditor organisations, or all of them (admins)."""
        return audit_scope.set_audit_scope(
            get_session(), actor=require_actor(), user_id=user_id, data=data
        )
