"""Who hears about what. The channels (in-app, SMS, WeChat template messages) come with the
departments' side; for now each step is logged so the operators can follow it."""

import logging

logger = logging.getLogger(__name__)


def issue_changed(issue_id: int, event_id: int) -> None:
    """Called after the transaction of a workflow step has committed."""
    logger.debug("issue %s: event %s", issue_id, event_id)
