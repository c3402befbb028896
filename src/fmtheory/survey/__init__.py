"""The executable survey: every registered claim's verdict in one report (``fmtheory survey``)."""

from fmtheory.survey.core import Card, Survey, cards_from_store, run_survey, select
from fmtheory.survey.page import markdown_summary, render_survey, write_survey

__all__ = [
    "Card",
    "Survey",
    "cards_from_store",
    "markdown_summary",
    "render_survey",
    "run_survey",
    "select",
    "write_survey",
]
