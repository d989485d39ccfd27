from django.core.exceptions import ValidationError


class ProcedureError(ValidationError):
    """A request the procedure refuses; the message is translated for the user."""


class TransitionRefused(ProcedureError):
    """A case state change that the state machine does not allow."""
