"""Account rules: organisations, users, tokens, reward policies.

Every function takes the session and the acting user explicitly, checks permission, flushes and
records an audit event; none commits (STYLE.md §5).
"""

from __future__ import annotations

import hashlib
import secrets
import uuid
from datetime import UTC, datetime, timedelta
from decimal import Decimal
from typing import Any

from sqlalchemy import Select, select
from sqlalchemy.exc import IntegrityError
from sqlalchemy.orm import Session

from registry.accounts import lockout, permissions
from registry.accounts.models import (
    ApiToken,
    EnterpriseSize,
    Organisation,
    OrganisationKind,
    RewardPolicy,
    User,
)
from registry.accounts.passwords import (
    hash_password,
    needs_rehash,
    password_problems,
    verify_password,
)
from registry.audit.services import record
from registry.core.actor import ALL_ORGANISATIONS, Actor, Role
from registry.core.errors import (
    Duplicate,
    FieldError,
    Forbidden,
    NotFound,
    RuleViolation,
    Unauthenticated,
    validation_failed,
)
from registry.core.shares import check_total

TOKEN_PREFIX = "olr_"  # noqa: S105 - a public marker, not a secret
CLEARING_HOUSE_NAME = "开放许可登记结算中心"
CLEARING_HOUSE_NAME_EN = "Open Licence Registry Clearing House"
# Law on Promoting the Transformation of S&T Achievements Art. 45: without the organisation's
# own published policy, at least 50 % of net income from licensing goes to the contributors.
STATUTORY_INVENTOR_SHARE = Decimal("50.00")


def now() -> datetime:
    return datetime.now(UTC)


def actor_of(user: User) -> Actor:
    return Actor(user.id, user.organisation_id, user.role, user.email, audit_scope_of(user))


def audit_scope_of(user: User) -> frozenset[uuid.UUID] | None:
    """The organisations an auditor reads: every one when granted all, else its own plus its
    grants. Other roles get an empty scope (it is consulted for auditors only)."""
    if user.role is not Role.AUDITOR:
        return frozenset()
    if user.audits_all_organisations:
        return ALL_ORGANISATIONS
    return frozenset({user.organisation_id, *(g.organisation_id for g in user.audit_grants)})


def hash_token(token: str) -> str:
    # Tokens carry 256 random bits, so a fast hash is enough: there is nothing to brute-force.
    return hashlib.sha256(token.encode("utf-8")).hexdigest()


# Organisations -------------------------------------------------------------------------------


def _check_enterprise_fields(
    kind: OrganisationKind, size: EnterpriseSize | None, is_sme: bool
) -> list[FieldError]:
    if kind is OrganisationKind.ENTERPRISE and size is None:
        return [FieldError.of("size", "enterprises must state their size")]
    if kind is not OrganisationKind.ENTERPRISE and (size is not None or is_sme):
        field = "size" if size is not None else "is_sme"
        return [FieldError.of(field, "only enterprises carry a size and an SME flag")]
    if is_sme and size is EnterpriseSize.LARGE:
        return [FieldError.of("is_sme", "a large enterprise is not an SME")]
    return []


def create_organisation(session: Session, *, actor: Actor, data: dict[str, Any]) -> Organisation:
    """Register an organisation (admins only). 409 when its USCC is already registered."""
    if not actor.is_admin:
        raise Forbidden("only the clearing-house operator registers organisations")
    kind = data["kind"]
    if kind is OrganisationKind.CLEARING_HOUSE:
        raise RuleViolation("there is one clearing house, created by create-admin")
    validation_failed(_check_enterprise_fields(kind, data.get("size"), data.get("is_sme", False)))
    if session.scalar(select(Organisation.id).where(Organisation.uscc == data["uscc"])):
        raise Duplicate(
            "an organisation with this USCC is registered",
            [FieldError.of("uscc", "already registered")],
        )
    organisation = Organisation(
        name=data["name"],
        name_en=data.get("name_en"),
        kind=kind,
        uscc=data["uscc"],
        size=data.get("size"),
        is_sme=data.get("is_sme", False),
        address=data.get("address"),
        created_dt=now(),
    )
    session.add(organisation)
    _flush_unique(session, "uscc")
    record(
        session,
        actor=actor,
        action="organisation.created",
        subject_type="organisation",
        subject_id=organisation.id,
        payload=_organisation_payload(organisation),
    )
    return organisation


def _organisation_payload(organisation: Organisation) -> dict[str, Any]:
    return {
        "name": organisation.name,
        "name_en": organisation.name_en,
        "kind": organisation.kind,
        "uscc": organisation.uscc,
        "size": organisation.size,
        "is_sme": organisation.is_sme,
    }


def _flush_unique(session: Session, field: str) -> None:
    """Flush, turning a lost race on a unique column into 409 rather than 500."""
    try:
        with session.begin_nested():
            session.flush()
    except IntegrityError:
        raise Duplicate(
            f"{field} already registered", [FieldError.of(field, "already registered")]
        ) from None


def visible_organisations(actor: Actor) -> Select[Organisation]:
    statement = select(Organisation).order_by(Organisation.created_dt, Organisation.id)
    if permissions.sees_all_organisations(actor):
        return statement
    if actor.role is Role.AUDITOR and actor.audit_scope:
        return statement.where(Organisation.id.in_(actor.audit_scope))
    return statement.where(Organisation.id == actor.organisation_id)


def get_organisation(session: Session, *, actor: Actor, organisation_id: uuid.UUID) -> Organisation:
    organisation = session.get(Organisation, organisation_id)
    if organisation is None or not permissions.can_view_organisation(actor, organisation_id):
        raise NotFound("organisation")
    return organisation


# Users ---------------------------------------------------------------------------------------


def create_user(
    session: Session, *, actor: Actor | None, organisation_id: uuid.UUID, data: dict[str, Any]
) -> User:
    """Add a user to an organisation.

    Admins add anyone; TTO users add TTO or licensee colleagues to their own organisation.
    The role must suit the organisation's kind. ``actor`` is ``None`` only for the bootstrap.
    """
    role: Role = data["role"]
    if actor is not None:
        organisation = get_organisation(session, actor=actor, organisation_id=organisation_id)
        if not permissions.can_add_user(actor, organisation_id, role):
            raise Forbidden(f"you may not add a user with the {role} role here")
    else:
        organisation = session.get_one(Organisation, organisation_id)
    email = data["email"].strip().lower()
    errors = []
    if role not in permissions.ROLES_BY_KIND[organisation.kind]:
        allowed = ", ".join(sorted(permissions.ROLES_BY_KIND[organisation.kind]))
        errors.append(FieldError.of("role", f"a {organisation.kind} may have: {allowed}"))
    if problems := password_problems(data["password"], email=email):
        errors.append(FieldError("password", tuple(problems)))
    validation_failed(errors)
    if session.scalar(select(User.id).where(User.email == email)):
        raise Duplicate("a user with this e-mail exists", [FieldError.of("email", "taken")])
    user = User(
        organisation_id=organisation_id,
        email=email,
        name=data["name"],
        role=role,
        password_hash=hash_password(data["password"]),
        is_active=True,
        created_dt=now(),
    )
    session.add(user)
    _flush_unique(session, "email")
    record(
        session,
        actor=actor,
        action="user.created",
        subject_type="user",
        subject_id=user.id,
        payload={
            "email": email,
            "name": user.name,
            "role": role,
            "organisation_id": organisation_id,
        },
    )
    return user


def list_users(session: Session, *, actor: Actor, organisation_id: uuid.UUID) -> Select[User]:
    get_organisation(session, actor=actor, organisation_id=organisation_id)
    if not (actor.is_admin or actor.role in (Role.TTO, Role.AUDITOR)):
        raise Forbidden("only TTO staff, auditors and admins list users")
    return select(User).where(User.organisation_id == organisation_id).order_by(User.email)


def bootstrap_admin(
    session: Session, *, email: str, name: str, password: str, uscc: str | None = None
) -> User:
    """Create the clearing-house organisation (once) and an admin user in it.

    ``uscc`` is recorded on a clearing house that has none yet (it "can be left for later");
    a different one than it already has, or one another organisation holds, is refused (409).
    """
    house = session.scalar(
        select(Organisation).where(Organisation.kind == OrganisationKind.CLEARING_HOUSE)
    )
    if uscc is not None and (house is None or house.uscc != uscc):
        if house is not None and house.uscc is not None:
            raise RuleViolation(
                "the clearing house already has a different USCC",
                [FieldError.of("uscc", f"the clearing house's USCC is {house.uscc}")],
            )
        if session.scalar(select(Organisation.id).where(Organisation.uscc == uscc)):
            raise Duplicate(
                "an organisation with this USCC is registered",
                [FieldError.of("uscc", "already registered")],
            )
    if house is None:
        house = Organisation(
            name=CLEARING_HOUSE_NAME,
            name_en=CLEARING_HOUSE_NAME_EN,
            kind=OrganisationKind.CLEARING_HOUSE,
            uscc=uscc,
            size=None,
            is_sme=False,
            created_dt=now(),
        )
        session.add(house)
        _flush_unique(session, "uscc")
        record(
            session,
            actor=None,
            action="organisation.created",
            subject_type="organisation",
            subject_id=house.id,
            payload=_organisation_payload(house),
        )
    elif uscc is not None and house.uscc is None:
        house.uscc = uscc
        _flush_unique(session, "uscc")
        record(
            session,
            actor=None,
            action="organisation.updated",
            subject_type="organisation",
            subject_id=house.id,
            payload={"uscc": [None, uscc]},
        )
    return create_user(
        session,
        actor=None,
        organisation_id=house.id,
        data={"email": email, "name": name, "role": Role.ADMIN, "password": password},
    )


# Tokens --------------------------------------------------------------------------------------


class SignInRefused(Unauthenticated):
    """A refused sign-in. The failure count it may have changed must be committed although the
    answer is an error (the caller commits, then lets it answer 401)."""

    def __init__(self) -> None:
        super().__init__("e-mail or password is wrong")


def issue_token(
    session: Session, *, email: str, password: str, ttl: timedelta
) -> tuple[str, ApiToken]:
    """Exchange e-mail and password for a bearer token, returned in clear this once only
    (:func:`authenticate` says when it is refused)."""
    user = authenticate(session, email=email, password=password)
    return create_token(session, user=user, ttl=ttl)


def authenticate(session: Session, *, email: str, password: str) -> User:
    """The user with this e-mail address and password: the one sign-in check, shared by the
    API's tokens and the web pages' sessions.

    One message for an unknown e-mail, a wrong password, a disabled user and a locked account
    (no account enumeration, ASVS V6.3); the password check runs in every case to keep timing
    equal. Wrong passwords lock the account with back-off (lockout.py): raises
    :class:`SignInRefused`, after which the caller commits the count.
    """
    user = session.scalar(select(User).where(User.email == email.strip().lower()))
    valid = verify_password(user.password_hash if user else None, password)
    if user is None or not user.is_active:
        raise SignInRefused()
    instant = now()
    if lockout.is_locked(user, instant):
        raise SignInRefused()  # not counted: nobody can keep someone else locked out
    if not valid:
        lockout.record_failure(session, user, instant)
        raise SignInRefused()
    lockout.record_success(user)
    if needs_rehash(user.password_hash):
        user.password_hash = hash_password(password)
    return user


def create_token(session: Session, *, user: User, ttl: timedelta) -> tuple[str, ApiToken]:
    """A new random token for ``user`` (the caller has authenticated them)."""
    token = TOKEN_PREFIX + secrets.token_urlsafe(32)
    issued = now()
    api_token = ApiToken(
        user_id=user.id,
        token_hash=hash_token(token),
        prefix=token[:12],
        created_dt=issued,
        expires_dt=issued + ttl,
    )
    session.add(api_token)
    session.flush()
    record(
        session,
        actor=actor_of(user),
        action="token.issued",
        subject_type="api_token",
        subject_id=api_token.id,
        payload={"prefix": api_token.prefix, "expires_dt": api_token.expires_dt},
    )
    return token, api_token


def find_token(session: Session, token: str) -> ApiToken | None:
    """The live token for this bearer string, or ``None`` if unknown, expired or revoked."""
    if not token.startswith(TOKEN_PREFIX):
        return None
    api_token = session.scalar(select(ApiToken).where(ApiToken.token_hash == hash_token(token)))
    if api_token is None or api_token.revoked_dt is not None or api_token.expires_dt <= now():
        return None
    if not api_token.user.is_active:
        return None
    return api_token


def revoke_token(session: Session, *, actor: Actor, api_token: ApiToken) -> None:
    if api_token.user_id != actor.user_id:
        raise NotFound("token")
    api_token.revoked_dt = now()
    session.flush()
    record(
        session,
        actor=actor,
        action="token.revoked",
        subject_type="api_token",
        subject_id=api_token.id,
        payload={"prefix": api_token.prefix},
    )


# Reward policy -------------------------------------------------------------------------------


def reward_policy(session: Session, *, actor: Actor, organisation_id: uuid.UUID) -> dict[str, Any]:
    """The organisation's policy, or the statutory default when it has recorded none."""
    get_organisation(session, actor=actor, organisation_id=organisation_id)
    policy = session.get(RewardPolicy, organisation_id)
    if policy is None:
        return {
            "organisation_id": organisation_id,
            "inventor_share": STATUTORY_INVENTOR_SHARE,
            "policy_reference": None,
            "deductions": [],
            "remainder_split": [],
            "is_default": True,
        }
    return {
        "organisation_id": organisation_id,
        "inventor_share": policy.inventor_share,
        "policy_reference": policy.policy_reference,
        "deductions": policy.deductions,
        "remainder_split": policy.remainder_split,
        "is_default": False,
    }


def set_reward_policy(
    session: Session, *, actor: Actor, organisation_id: uuid.UUID, data: dict[str, Any]
) -> dict[str, Any]:
    """Record the policy. Below 50 % for inventors needs the published policy's reference
    (STL Art. 45); the split of the remainder must total exactly 100 %."""
    organisation = get_organisation(session, actor=actor, organisation_id=organisation_id)
    if not permissions.can_manage_reward_policy(actor, organisation_id):
        raise Forbidden("only this organisation's TTO staff and admins set its reward policy")
    if organisation.kind in (OrganisationKind.CLEARING_HOUSE, OrganisationKind.AUDIT_BODY):
        raise RuleViolation("only patent-holding organisations have a reward policy")
    errors = []
    if data["inventor_share"] < STATUTORY_INVENTOR_SHARE and not data.get("policy_reference"):
        errors.append(
            FieldError.of(
                "policy_reference",
                "an inventor share below 50 % needs the reference of your published reward policy "
                "(Law on Promoting the Transformation of S&T Achievements Art. 45)",
            )
        )
    split = data.get("remainder_split") or []
    recipients: set[str] = set()
    for index, part in enumerate(split):
        if part["recipient"] in recipients:
            errors.append(
                FieldError.of(f"remainder_split.{index}.recipient", "each recipient appears once")
            )
        recipients.add(part["recipient"])
    if split:
        try:
            check_total([part["share"] for part in split], what="remainder split shares")
        except ValueError as exc:
            errors.append(FieldError.of("remainder_split", str(exc)))
    validation_failed(errors)
    policy = session.get(RewardPolicy, organisation_id)
    if policy is None:
        policy = RewardPolicy(organisation_id=organisation_id)
        session.add(policy)
    policy.inventor_share = data["inventor_share"]
    policy.policy_reference = data.get("policy_reference")
    policy.deductions = sorted(set(data.get("deductions") or []))
    policy.remainder_split = [
        {"recipient": part["recipient"], "share": str(part["share"])} for part in split
    ]
    policy.updated_dt = now()
    session.flush()
    record(
        session,
        actor=actor,
        action="reward_policy.set",
        subject_type="organisation",
        subject_id=organisation_id,
        payload={
            "inventor_share": policy.inventor_share,
            "policy_reference": policy.policy_reference,
            "deductions": policy.deductions,
            "remainder_split": policy.remainder_split,
        },
    )
    return reward_policy(session, actor=actor, organisation_id=organisation_id)
