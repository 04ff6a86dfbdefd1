"""Words the pages show for stored values and for the services' English messages.

Services and schemas speak English (the API's language); a page passes their messages through
:func:`translate`, which finds them in the catalogue by their exact English text. The ones
below are marked with ``N_`` so that ``pybabel extract -k N_`` collects them; a message not
in the catalogue is shown as the service wrote it.
"""

from __future__ import annotations

from typing import Any

from flask_babel import gettext
from flask_babel import lazy_gettext as _l


def N_(text: str) -> str:  # noqa: N802 - the gettext convention for "mark, do not translate"
    return text


ROYALTY_KINDS = {
    "free": _l("Royalty-free"),
    "lump_sum": _l("Lump sum"),
    "running": _l("Running royalty"),
    "entry_plus_running": _l("Entry fee plus running royalty"),
}
PATENT_TYPES = {
    "invention": _l("Invention"),
    "utility_model": _l("Utility model"),
    "design": _l("Design"),
}
LEGAL_STATUSES = {
    "pending": _l("Pending grant"),
    "valid": _l("In force"),
    "lapsed_fees": _l("Lapsed (fees unpaid)"),
    "surrendered": _l("Surrendered"),
    "invalidated": _l("Invalidated"),
}
OFFER_STATUSES = {
    "draft": _l("Draft"),
    "published": _l("Open for take-up"),
    "withdrawn": _l("Withdrawn"),
    "expired": _l("Expired"),
    "lapsed": _l("Lapsed"),
}
LICENCE_STATUSES = {
    "pending_payment": _l("Awaiting the upfront payment"),
    "active": _l("Active"),
    "suspended": _l("Suspended"),
    "expired": _l("Expired"),
    "terminated": _l("Terminated"),
}
ENCUMBRANCE_KINDS = {
    "exclusive_licence": _l("Exclusive licence"),
    "sole_licence": _l("Sole licence"),
    "pledge": _l("Pledge"),
    "dispute_suspension": _l("Suspended by an ownership dispute"),
    "preservation_order": _l("Court preservation order"),
}
GAZETTE_KINDS = {"publication": _l("Open licence declared"), "withdrawal": _l("Withdrawn")}
SORTS = {
    "-published_dt": _l("Newest first"),
    "published_dt": _l("Oldest first"),
    "upfront_amount": _l("Lowest upfront amount"),
    "-upfront_amount": _l("Highest upfront amount"),
}

# What an error page says for each envelope code, above the service's own message.
ERROR_EXPLANATIONS = {
    "bad_request": _l("The request could not be understood."),
    "csrf_failed": _l(
        "The form has expired or was not sent from this site. Go back, reload the page and "
        "send the form again."
    ),
    "unauthenticated": _l("Sign in to continue."),
    "forbidden": _l("Your account may not do this."),
    "not_found": _l("There is nothing here, or it is not visible to you."),
    "method_not_allowed": _l("This address does not accept that kind of request."),
    "payload_too_large": _l("The file or form is too large."),
    "too_many_requests": _l("Too many attempts. Wait a little and try again."),
    "validation_error": _l("Some of what was sent is not valid."),
    "rule_violation": _l("The registry's rules do not allow this now."),
    "offer_not_published": _l("This offer is not open for take-up."),
    "already_licensed": _l("Your organisation already holds a live licence on this offer."),
    "own_patent": _l("Your organisation owns this patent and needs no licence to exploit it."),
    "contract_unavailable": _l(
        "The contract cannot be issued right now, so nothing was recorded. Try again later."
    ),
    "idempotency_conflict": _l("This form is being processed. Look at your licences shortly."),
    "idempotency_key_reused": _l(
        "This form was already sent with other details. Start the take-up again."
    ),
    "internal_error": _l("Something went wrong on our side. Nothing you did caused it."),
    "unavailable": _l("The registry is busy. Try again in a moment."),
}
ERROR_TITLES = {
    400: _l("Bad request"),
    401: _l("Sign-in needed"),
    403: _l("Not allowed"),
    404: _l("Not found"),
    405: _l("Not allowed"),
    409: _l("Not possible now"),
    413: _l("Too large"),
    422: _l("Not valid"),
    429: _l("Too many requests"),
    500: _l("Server error"),
    503: _l("Service busy"),
}

# Messages of services and schemas the pages show (exact English text = catalogue key).
SERVICE_MESSAGES = (
    N_("Missing data for required field."),
    N_("Not a valid email address."),
    N_("Field may not be null."),
    N_("Not a valid string."),
    N_("Longer than maximum length 200."),
    N_("Longer than maximum length 254."),
    N_("Longer than maximum length 2000."),
    N_("Longer than maximum length 5000."),
    N_("a telephone number: digits, spaces, hyphens and brackets, optionally starting with +"),
    N_("e-mail or password is wrong"),
    N_("the current password is wrong"),
    N_("wrong password"),
    N_("use at least 12 characters"),
    N_("use at most 128 characters"),
    N_("the password may not be the e-mail address"),
    N_("choose a password different from the current one"),
    N_("the file is empty"),
    N_("the file is not a PDF"),
    N_("the PDF is damaged and cannot be read"),
    N_("text may not contain NUL characters or unpaired surrogates"),
    N_("Not a valid choice."),
    N_("Not a valid boolean."),
    N_("offer not found"),
    N_("licence not found"),
    N_("only licensee users of an enterprise take up an open licence"),
    N_("the licence's contract has not been issued yet"),
    N_("this offer is not open for take-up"),
    N_("offer is withdrawn, not published: it cannot be taken up"),
    N_("offer is expired, not published: it cannot be taken up"),
    N_("offer is lapsed, not published: it cannot be taken up"),
    N_(
        "your organisation already holds a licence on this offer; terminate it first to take a "
        "new one"
    ),
    N_("your organisation owns this patent; it needs no licence to exploit it"),
    N_("the file is larger than the limit"),
    N_("the form's idempotency key is missing or invalid"),
    N_("this Idempotency-Key was used for a different request; use a new key"),
    # Flask-WTF's reasons for refusing a form (registry/web/errors.py: code csrf_failed).
    N_("The CSRF token is missing."),
    N_("The CSRF token has expired."),
    N_("The CSRF token is invalid."),
    N_("The CSRF session token is missing."),
    N_("The CSRF tokens do not match."),
    N_("The referrer header is missing."),
    N_("The referrer does not match the host."),
    # werkzeug's descriptions of the errors Flask raises itself.
    N_(
        "The requested URL was not found on the server. If you entered the URL manually please "
        "check your spelling and try again."
    ),
    N_("The method is not allowed for the requested URL."),
    N_("The data value transmitted exceeds the capacity limit."),
)


def translate(message: str) -> str:
    """A service's English message in the page's language, when the catalogue has it."""
    return str(gettext(message)) if message else message


def label(table: dict[str, Any], value: Any) -> str:
    """The word for a stored value (an enum or its text); the value itself if unknown."""
    key = getattr(value, "value", value)
    found = table.get(key)
    return str(found) if found is not None else str(key)
