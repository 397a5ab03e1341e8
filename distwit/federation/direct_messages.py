"""
Direct messages across servers (issue 15, docs/design/direct-messages.md).

Sender: a direct message to another server's user is kept here and, in
the same transaction, a signed notice carrying it is queued in the durable
outbox for the recipient's home server alone (never to anyone else)::

    {"kind": "direct_message", "sender": "alice@s1", "recipient": "bob@s2",
     "targets": ["bob@s2"], "text": "...", "created_at": 1700000000000,
     "key": "9f0c..."}

Receiver (``POST /s2s/notice``, through
:class:`~distwit.federation.notices.NoticeReceiver`): the signer must be
the sender's server (it speaks only for its own users), the recipient a
user here, and the recipient must follow the sender (the same
:meth:`~distwit.core.direct_messages.DirectMessages.may_message` as on the
sender's server): else 403, which the sender's outbox takes as a refusal
for good.  The message is kept once per ``(sender, key)``.
"""

from __future__ import annotations

import re
from typing import Any

from twisted.logger import Logger

from distwit.core.accts import BadAcct, authority_of, make_acct, split_acct
from distwit.core.direct_messages import CannotMessage, DirectMessages
from distwit.core.microblog import RuleError
from distwit.federation.outbox import Outbox, notice_text
from distwit.federation.sync import is_number
from distwit.model import Account
from distwit.s2s.interfaces import ForbiddenAuthority
from distwit.store.interfaces import IStore, QueuedNotice

#: The kind of a direct message's notice.
KIND = "direct_message"

#: What a message's key looks like (the sender's server chooses it).
_KEY = re.compile(r"\A[A-Za-z0-9_-]{8,64}\Z")


class BadDirectMessage(RuleError):
    """
    A direct message notice that is malformed or names nobody here (400).
    """


class DirectMessageRefused(RuleError):
    """
    The recipient may not be sent the message (403: not following the
    sender).  The sender's outbox drops the notice.
    """


class DirectMessageNotices:
    """
    Both sides of direct messages between servers.

    :param direct: the rules of direct messages here.
    :param outbox: where the notices of messages to other servers wait.
    """

    log = Logger()

    def __init__(self, store: IStore, direct: DirectMessages, outbox: Outbox, clock: Any,
                 own_authority: str) -> None:
        self._store = store
        self._direct = direct
        self._outbox = outbox
        self._clock = clock
        self.authority = own_authority

    def now_ms(self) -> int:
        return int(self._clock.seconds() * 1000)

    # Sender

    def notice(self, message_key: str, sender: Account, recipient: Account, text: str,
               created_at: int) -> QueuedNotice:
        """
        The notice of a message from local ``sender`` to remote
        ``recipient``, addressed to the recipient's home server (found
        from ``targets`` when not known yet).
        """
        recipient_acct = make_acct(recipient.handle, recipient.authority)
        body = {
            "kind": KIND,
            "sender": make_acct(sender.handle, self.authority),
            "recipient": recipient_acct,
            "targets": [recipient_acct],
            "text": text,
            "created_at": created_at,
            "key": message_key,
        }
        return (recipient.home_url, KIND, notice_text(body), created_at)

    def queued(self) -> None:
        self._outbox.wake()

    # Receiver

    async def receive(self, signer_url: str, body: Any) -> dict[str, Any]:
        """
        Keep the message a signed notice carries.

        :raise ForbiddenAuthority: the signer is not the sender's server.
        :raise BadDirectMessage: malformed, or the recipient is nobody here.
        :raise DirectMessageRefused: the recipient does not follow the sender.
        :raise RuleError: the text breaks the rules here (empty, too long).
        """
        if not isinstance(body, dict) or body.get("kind") != KIND:
            raise BadDirectMessage(f"a direct message notice has kind {KIND}")
        try:
            handle, authority = split_acct(str(body.get("sender")))
            to_handle, to_authority = split_acct(str(body.get("recipient")))
        except BadAcct as e:
            raise BadDirectMessage(str(e)) from None
        text, key = body.get("text"), body.get("key")
        sent_at: Any = body.get("created_at")
        if not isinstance(text, str):
            raise BadDirectMessage("a direct message notice carries its text")
        if not isinstance(key, str) or not _KEY.match(key):
            raise BadDirectMessage("a direct message notice has a key of 8 to 64 letters")
        if not is_number(sent_at) or sent_at < 0:
            raise BadDirectMessage("a direct message notice says when it was sent")
        signer = authority_of(signer_url)
        if signer != authority:
            raise ForbiddenAuthority(f"{signer} may not speak for {handle}@{authority}")
        if authority == self.authority:
            raise BadDirectMessage("a direct message notice is about the sender's user")
        if to_authority != self.authority:
            raise BadDirectMessage("a direct message goes to the recipient's server")
        recipient = await self._store.get_local_user(to_handle)
        if recipient is None:
            raise BadDirectMessage(f"no user {to_handle} here")
        await self._store.ensure_account(handle, authority, self.now_ms())
        sender = await self._store.note_remote_last(handle, authority, 0, signer_url.rstrip("/"))
        if sender is None:
            raise BadDirectMessage(f"no account {handle}@{authority}")
        try:
            message = await self._direct.receive(sender, recipient, text, int(sent_at), key)
        except CannotMessage as e:
            self.log.info(
                "refused a direct message from {sender} to {recipient}: {error}",
                sender=f"{handle}@{authority}", recipient=to_handle, error=str(e),
            )
            raise DirectMessageRefused(str(e)) from None
        self.log.info("direct message from {sender} to {recipient}",
                      sender=f"{handle}@{authority}", recipient=to_handle)
        return {"ok": True, "id": message.id}
