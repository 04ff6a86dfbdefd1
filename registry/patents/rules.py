"""Patent rules that need no database: term, expiry and the status a reader sees."""

from __future__ import annotations

from datetime import date, timedelta

from registry.patents.models import LegalStatus, PatentType

# Patent Law Art. 42 (2020 amendment, in force 2021-06-01): terms run from the filing date.
TERM_YEARS = {PatentType.INVENTION: 20, PatentType.UTILITY_MODEL: 10, PatentType.DESIGN: 15}
# Designs filed before the 2020 amendment took effect keep the old 10-year term
# (reference/law.md §8 marks the transitional rule [U]; CNIPA practice applies it by filing date).
DESIGN_TERM_CHANGE = date(2021, 6, 1)
OLD_DESIGN_TERM_YEARS = 10


def _anniversary(start: date, years: int) -> date:
    try:
        return start.replace(year=start.year + years)
    except ValueError:  # 29 February in a year without one: the term ends on 28 February
        return date(start.year + years, 3, 1)


def term_years(patent_type: PatentType, filing_date: date) -> int:
    if patent_type is PatentType.DESIGN and filing_date < DESIGN_TERM_CHANGE:
        return OLD_DESIGN_TERM_YEARS
    return TERM_YEARS[patent_type]


def expiry_date(patent_type: PatentType, filing_date: date) -> date:
    """The last day of the term: the day before the filing date's anniversary."""
    return _anniversary(filing_date, term_years(patent_type, filing_date)) - timedelta(days=1)


def reader_status(legal_status: LegalStatus, expiry: date, today: date) -> str:
    """What a reader should see: the recorded legal status, or ``expired`` past the term."""
    if legal_status in (LegalStatus.VALID, LegalStatus.PENDING) and today > expiry:
        return "expired"
    return str(legal_status)
