"""Errors of the IAM and STS query APIs: code -> HTTP status (as botocore's models declare them)."""

from __future__ import annotations

_STATUS: dict[str, int] = {
    "AccessDenied": 403,
    "DeleteConflict": 409,
    "EntityAlreadyExists": 409,
    "ExpiredToken": 400,
    "IncompleteSignature": 400,
    "InternalFailure": 500,
    "InvalidAction": 400,
    "InvalidClientTokenId": 403,
    "InvalidInput": 400,
    "InvalidParameterValue": 400,
    "LimitExceeded": 409,
    "MalformedPolicyDocument": 400,
    "MissingAction": 400,
    "MissingParameter": 400,
    "NoSuchEntity": 404,
    "PackedPolicyTooLarge": 400,
    "SignatureDoesNotMatch": 403,
    "ValidationError": 400,
}


class IamError(Exception):
    """An error answered as <ErrorResponse> by the IAM/STS query protocol."""

    def __init__(self, code: str, message: str, status: int | None = None) -> None:
        super().__init__(f"{code}: {message}")
        self.code = code
        self.message = message
        self.status = status if status is not None else _STATUS.get(code, 400)


def access_denied(arn: str, action: str, resource: str) -> IamError:
    return IamError(
        "AccessDenied", f"User: {arn} is not authorized to perform: {action} on resource: {resource}"
    )


def no_such_entity(kind: str, name: str) -> IamError:
    return IamError("NoSuchEntity", f"The {kind} with name {name} cannot be found.")


def validation(message: str) -> IamError:
    return IamError("ValidationError", message)
