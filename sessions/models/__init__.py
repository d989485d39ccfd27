"""Models of the mediation procedure, by sub-domain: the case and its people
(`case`), and the virtual rooms where the mediation is held (`rooms`)."""

from sessions.models.case import *  # noqa: F403
from sessions.models.rooms import *  # noqa: F403
