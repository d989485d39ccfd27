"""The agreements package's data: the mediation agreement (drafts, signing,
the sealed PDF) and its filing with courts."""

from agreements.models.agreement import *  # noqa: F403
from agreements.models.filing import *  # noqa: F403
