"""Models of the mediation procedure, by sub-domain: the case and its people
(`case`), the virtual rooms where the mediation is held (`rooms`), and the
confidentiality controls around them (`confidentiality`)."""

from sessions.models.case import *  # noqa: F403
from sessions.models.confidentiality import *  # noqa: F403
from sessions.models.rooms import *  # noqa: F403
