"""``GET /exports/<register>.csv``: a register as CSV, scoped to the caller (thin view)."""

from __future__ import annotations

from flask import Response
from flask.views import MethodView

from registry.core.actor import require_actor
from registry.core.api import make_blueprint
from registry.core.http import download, get_session, writes
from registry.exports import registers, services

blp = make_blueprint("exports", __name__, "Registers as CSV, scoped to the caller")

CSV_RESPONSE = {
    "200": {
        "description": "the register: UTF-8 with BOM, a header row, money as 1234.50",
        "content": {"text/csv": {"schema": {"type": "string"}}},
    }
}


@blp.route("/exports/<register>.csv")
class RegisterExport(MethodView):
    @writes
    @blp.doc(
        responses=CSV_RESPONSE,
        description="Registers: " + ", ".join(registers.REGISTERS) + ".",
    )
    @blp.alt_response(403, description="your role may not read this register")
    @blp.alt_response(404, description="no such register")
    def get(self, register: str) -> Response:
        """A register as CSV: the rows its list endpoint shows you, in a stable order.

        Every download is recorded in the audit log (register, rows, SHA-256)."""
        found = services.download_register(get_session(), actor=require_actor(), name=register)
        return download(found.data, mimetype="text/csv", filename=found.filename)
