"""Browser sign-in sessions (registry/web/sessions.py explains the design)."""

from __future__ import annotations

import uuid
from datetime import datetime

from sqlalchemy import ForeignKey, String
from sqlalchemy.orm import Mapped, mapped_column

from registry.core.db import Base, created_dt, uuid_pk


class WebSession(Base):
    """One signed-in browser. Only the SHA-256 of its random id is stored, so a copy of the
    database opens no session; the row outlives its end, which says when and why it ended."""

    __tablename__ = "web_sessions"

    id: Mapped[uuid_pk]
    user_id: Mapped[uuid.UUID] = mapped_column(ForeignKey("users.id"), index=True)
    token_hash: Mapped[str] = mapped_column(
        String(64), unique=True, comment="sha256 hex of the session id in the browser's cookie"
    )
    created_dt: Mapped[created_dt]
    last_seen_dt: Mapped[datetime] = mapped_column(
        comment="last request (to the minute): the idle limit counts from here"
    )
    expires_dt: Mapped[datetime] = mapped_column(comment="the absolute end, whatever the activity")
    ended_dt: Mapped[datetime | None] = mapped_column(comment="signed out or ended by the registry")
    end_reason: Mapped[str | None] = mapped_column(
        String(40), comment="signed_out, password_changed, replaced"
    )

    def __repr__(self) -> str:
        return f"<WebSession {self.id} user={self.user_id} ended={self.ended_dt}>"
