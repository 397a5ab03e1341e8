"""
Twitter's error bodies and codes, and how the rules' refusals map to them.
"""

from __future__ import annotations

from distwit.core import microblog as core


class TwitterError(Exception):
    """
    An error answer in Twitter's shape:
    ``{"errors": [{"code": code, "message": message}]}`` with ``status``.
    """

    def __init__(self, code: int, message: str, status: int) -> None:
        super().__init__(message)
        self.code = code
        self.message = message
        self.status = status

    def body(self) -> dict[str, object]:
        return {"errors": [{"code": self.code, "message": self.message}]}


def page_not_found(detail: str = "") -> TwitterError:
    message = "Sorry, that page does not exist."
    if detail:
        message = f"{message[:-1]}: {detail}"
    return TwitterError(34, message, 404)


def bad_credentials() -> TwitterError:
    return TwitterError(32, "Could not authenticate you.", 401)


def missing_credentials() -> TwitterError:
    return TwitterError(215, "Bad Authentication data.", 401)


def invalid_parameter(name: str, detail: str = "") -> TwitterError:
    message = f"{name} parameter is invalid."
    if detail:
        message = f"{name} parameter is invalid: {detail}"
    return TwitterError(44, message, 400)


def missing_parameter(name: str) -> TwitterError:
    return TwitterError(170, f"Missing required parameter: {name}.", 400)


def user_not_found() -> TwitterError:
    return TwitterError(50, "User not found.", 404)


def home_unreachable(error: Exception) -> TwitterError:
    """
    A remote account that could not be looked up because its server does
    not answer as a distwit server (``HomeUnreachable``): Twitter's "user
    not found" code (the client can do nothing else with it), but 502, and
    the message says which server (never what it answered: see
    docs/design/reach.md).
    """
    return TwitterError(50, str(error), 502)


def internal_error() -> TwitterError:
    return TwitterError(131, "Internal error.", 500)


#: How the rules' refusals look to a Twitter client: (code, HTTP status).
#: The message is the rule's own, which says what to change.
RULE_ERRORS: dict[type[core.RuleError], tuple[int, int]] = {
    core.EmptyPost: (170, 400),
    core.PostTooLong: (186, 403),
    core.DuplicateStatus: (187, 403),
    core.NoSuchUser: (50, 404),
    core.NoSuchStatus: (144, 404),
    core.NotYourStatus: (183, 403),
    core.CannotFollowSelf: (158, 403),
    core.ProfileTooLong: (120, 403),
    core.OverDailyLimit: (185, 403),
    core.FollowLimit: (161, 403),
    core.AlreadyFavorited: (139, 403),
    core.AlreadyRetweeted: (327, 403),
    # Twitter's "media type unrecognized" and "image is too large".
    core.BadImage: (324, 400),
    core.AccountLocked: (326, 403),
    core.AccountSuspended: (64, 403),
    core.UserSuspended: (63, 403),
    core.TooManyWrongPasswords: (88, 429),
    core.BlockedFromFollowing: (162, 403),
}


def from_rule(error: core.RuleError) -> TwitterError:
    """
    The Twitter error for a refusal by the rules.
    """
    code, status = RULE_ERRORS.get(type(error), (44, 400))
    return TwitterError(code, str(error), status)
