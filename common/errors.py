"""Domain errors raised by services; the API turns each into `{"error", "detail"}` with its status."""

from __future__ import annotations


class DomainError(Exception):
    """A request the domain refuses; `code` and `status` say how the API reports it."""

    code = "invalid"
    status = 400

    def __init__(self, detail: str, **extra):
        super().__init__(detail)
        self.detail = detail
        self.extra = extra


class ValidationFailed(DomainError):
    code = "invalid_input"
    status = 400

    def __init__(self, detail: str, *, errors: list | dict | None = None, **extra):
        super().__init__(detail, **extra)
        if errors is not None:
            self.extra["errors"] = errors


class InvalidState(DomainError):
    code = "wrong_state"
    status = 409


class Conflict(DomainError):
    code = "conflict"
    status = 409


class ContentChanged(Conflict):
    """A signature over a record that changed after the signer was shown it (Part 11 §11.70); both hashes are named."""

    code = "content_changed"


class NotPermitted(DomainError):
    code = "forbidden"
    status = 403


class SeparationOfDutiesViolation(NotPermitted):
    """A signer the rules exclude; `rule` names which rule refused (it is shown and audited)."""

    code = "separation_of_duties"

    def __init__(self, detail: str, *, rule: str, **extra):
        super().__init__(detail, rule=rule, **extra)
        self.rule = rule


class ReauthenticationFailed(NotPermitted):
    code = "reauthentication_failed"


class AccountLocked(NotPermitted):
    code = "account_locked"


class NotFound(DomainError):
    code = "not_found"
    status = 404


class TooLarge(DomainError):
    code = "too_large"
    status = 413
