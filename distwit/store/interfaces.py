"""
What the twitter role needs from its storage.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Mapping

from zope.interface import Interface

from distwit.model import Account, Post


class StoreError(Exception):
    """
    Base of the errors a store raises on purpose.
    """


class HandleTaken(StoreError):
    """
    A local user with that handle (compared case-insensitively) exists.
    """


class DuplicatePost(StoreError):
    """
    The text repeats the author's latest message.
    """


class NoSuchPost(StoreError):
    """
    No live post with that id (or not one that may be retweeted).
    """


class NoSuchAccount(StoreError):
    """
    The account id names nobody.
    """


class FollowBlocked(StoreError):
    """
    A follow refused because one of the two accounts blocks the other
    (docs/design/blocks.md).

    :ivar by_followee: the account to be followed blocks the follower (else
        the follower blocks the account it wanted to follow).
    """

    def __init__(self, by_followee: bool) -> None:
        super().__init__("blocked by the followee" if by_followee else "blocking the followee")
        self.by_followee = by_followee


@dataclass(frozen=True)
class Hidden:
    """
    What one user hides of other accounts (docs/design/blocks.md): account
    ids.  Empty sets when nothing is hidden (:data:`NOTHING_HIDDEN`).

    :ivar blocked: blocked accounts: nothing of theirs shows anywhere.
    :ivar muted: muted accounts: not in the home timeline nor mentions.
    :ivar no_retweets: accounts whose retweets the home timeline leaves out.
    """

    blocked: frozenset[int] = frozenset()
    muted: frozenset[int] = frozenset()
    no_retweets: frozenset[int] = frozenset()

    @property
    def silenced(self) -> frozenset[int]:
        """
        Blocked or muted: left out of the home timeline, mentions and
        notifications.
        """
        return self.blocked | self.muted

    def __bool__(self) -> bool:
        return bool(self.blocked or self.muted or self.no_retweets)


#: Nobody hidden.
NOTHING_HIDDEN = Hidden()


@dataclass(frozen=True)
class OutboxItem:
    """
    A notice waiting in the outbox for its receiver (``claim_notices``).

    :ivar target: the receiving server's public URL, or ``""`` while it is
        still to be found (from the accounts the body names).
    :ivar body: the notice, as JSON text.
    :ivar next_at: when it is due (milliseconds).
    """

    id: int
    target: str
    kind: str
    body: str
    created_at: int
    attempts: int
    next_at: int
    last_error: str


@dataclass(frozen=True)
class AppRecord:
    """
    An OAuth 1.0a client app (``get_app``, ``apps_of``).
    """

    id: int
    consumer_key: str
    consumer_secret: str
    name: str
    owner_id: int
    callback: str


@dataclass(frozen=True)
class TokenRecord:
    """
    An OAuth 1.0a request or access token with its app (``get_token``).

    :ivar kind: ``"request"`` or ``"access"``.
    :ivar account_id: the user who approved it (``None`` for a request
        token not yet approved).
    """

    token: str
    secret: str
    kind: str
    app_id: int
    account_id: int | None
    callback: str
    verifier: str | None
    created_at: int
    expires_at: int | None
    app_name: str
    consumer_key: str


@dataclass(frozen=True)
class AccessTokenSummary:
    """
    A user's access token as their settings page lists it (``tokens_of``).
    """

    token: str
    created_at: int
    app_name: str


@dataclass(frozen=True)
class OIDCClientRecord:
    """
    A relying party registered with our provider (``get_oidc_client``).

    :ivar metadata: its registration metadata, JSON.
    """

    client_id: str
    client_secret: str
    metadata: str
    issued_at: int


@dataclass(frozen=True)
class OIDCGrantRecord:
    """
    A relying party a user signed in to (``oidc_grants_of``).
    """

    client_id: str
    metadata: str
    first_at: int
    last_at: int


@dataclass(frozen=True)
class SessionRecord:
    """
    A live web session (``get_session``).

    :ivar created_at: when its user signed in.
    """

    account_id: int
    csrf_token: str
    created_at: int


#: A notice to keep in the outbox in the same transaction as the change
#: it tells of (``follow``, ``unfollow``): ``(target, kind, body, now)``,
#: the body JSON text.
QueuedNotice = tuple[str, str, str, int]


@dataclass(frozen=True)
class NotificationRecord:
    """
    Something that happened to an account (``notifications``).

    :ivar kind: ``mention``, ``reply``, ``follow``, ``retweet`` or
        ``favorite``.
    :ivar at: when (ms since the epoch).
    :ivar actor: who did it.
    :ivar post: the post that mentions or replies; the account's own post
        retweeted or favorited; ``None`` for a follow (or a post gone).
    """

    kind: str
    at: int
    actor: Account
    post: Post | None


class IAccountStore(Interface):
    """
    Local users and the accounts this server knows, local and remote.

    Every method returns a Deferred.
    """

    def create_user(handle, name, password_hash, created_at):
        """
        Add a local user.

        :return: Deferred firing with the new :class:`~distwit.model.Account`,
            or failing with :class:`HandleTaken`.
        """

    def ensure_account(handle, authority, created_at):
        """
        The account for ``handle@authority``, created if unknown.  An empty
        authority means a local user, who must exist already.
        """

    def get_account(account_id):
        """
        Deferred firing with the account, or ``None``.
        """

    def get_local_user(handle):
        """
        Deferred firing with the local user with that handle (any case),
        or ``None``.
        """

    def get_login(handle):
        """
        Deferred firing with ``(account, password_hash)`` of a local user,
        in one query, or ``None``.
        """

    def set_password_hash(account_id, password_hash):
        """
        Replace a user's password hash.
        """

    def search_accounts(query, count, offset):
        """
        Accounts whose handle or name holds ``query``, local ones first.
        """

    def update_profile(account_id, name, description, location, url, image=None,
                       changed_at=None):
        """
        Deferred firing with the local account, its profile replaced
        (``image``: the hash of its profile image; ``None`` keeps it).
        With ``changed_at``, the change takes the user's next number as a
        profile item, in the same transaction, so it travels.
        """

    def store_profile_image(image_hash, sizes, created_at):
        """
        Keep the PNG of each size (``{"normal": bytes, ...}``) of an image
        by its hash (idempotent).
        """

    def profile_image(image_hash, size):
        """
        Deferred firing with the PNG of that image and size, or ``None``.
        """


class IPostStore(Interface):
    """
    Posts by local authors: numbered, found, deleted.

    Every method returns a Deferred.
    """

    def create_post(author_id, text, source, in_reply_to_status_id, created_at,
                    own_authority=""):
        """
        Store a new message by a local author, giving it the author's next
        sequence number and a new status id larger than every id before it,
        and noting the known accounts it mentions (``@handle@own_authority``
        is a local user).

        :return: Deferred firing with the :class:`~distwit.model.Post`, or
            failing with :class:`DuplicatePost` if ``text`` repeats the
            author's latest message (nothing is stored then).
        """

    def get_post(post_id):
        """
        Deferred firing with the post (a tombstone if deleted), or ``None``.
        """

    def latest_post(account_id):
        """
        Deferred firing with the author's newest live post, or ``None``.
        """

    def create_retweet(author_id, original_id, created_at):
        """
        A local author's retweet of a live post: the author's next number,
        referring to the original (its author's screen name here and its
        number), whose
        ``retweet_count`` is recounted.

        :return: Deferred firing with the retweet, or failing with
            :class:`DuplicatePost` (the author's live retweet of it exists)
            or :class:`NoSuchPost` (no live post, or not a post).
        """

    def live_retweet(author_id, original_id):
        """
        Deferred firing with the author's live retweet of the post, or ``None``.
        """

    def record_remote_retweet(original_id, retweeter_acct, seq, undo=False):
        """
        Count (or with ``undo`` no longer count) another server's user's
        retweet of a post, once per retweeter.

        :return: Deferred firing with the post as it is now, or ``None``.
        """

    def delete_post(post_id, deleted_at):
        """
        Turn a post into a tombstone: its number stays, its text goes.

        :return: Deferred firing with the post as it was before deletion,
            or ``None`` if there was no such live post.
        """


class ITimelineStore(Interface):
    """
    Timelines: newest first, honouring ``since_id`` (strictly greater) and
    ``max_id`` (inclusive); tombstones are left out of them.

    Every method returns a Deferred.
    """

    def retweets_of_me(account_id, count, since_id, max_id):
        """
        The account's posts that someone retweeted.
        """

    def retweets_of(post_id, count, viewer=None):
        """
        The live retweets of a post held here, newest first.  With
        ``viewer`` (an account id), leaving out what the viewer blocks
        (docs/design/blocks.md), as every ``viewer`` below.
        """

    def home_timeline(account_id, count, since_id, max_id, include_rts=True):
        """
        The user's own posts and those of everyone they follow, without
        what they block or mute, nor the retweets of those they take no
        retweets of.
        """

    def user_timeline(account_id, count, since_id, max_id, include_rts=True, viewer=None):
        """
        One author's posts.
        """

    def public_timeline(count, since_id, max_id, viewer=None):
        """
        Posts by the local users of this server.
        """

    def mentions_timeline(account_id, count, since_id, max_id):
        """
        Posts that mention the account, without those of accounts it
        blocks or mutes.
        """

    def search_posts(query, count, since_id, max_id, viewer=None):
        """
        Posts whose text holds ``query``, in any case (without those of
        accounts the viewer blocks or mutes).
        """

    def favorites_timeline(account_id, count, since_id, max_id, viewer=None):
        """
        The posts the account favorited (by status id, newest first).
        """


class IFollowStore(Interface):
    """
    Who follows whom.

    Every method returns a Deferred.
    """

    def follow(follower_id, followee_id, created_at, notice=None):
        """
        Record that a local user follows an account; with ``notice`` (a
        :data:`QueuedNotice`), queue it in the outbox in the same
        transaction when the follow is new, so that a follow is never kept
        without the notice to its server.

        :return: Deferred firing with ``True`` if this is a new follow.
        """

    def unfollow(follower_id, followee_id, notice=None):
        """
        Remove a follow; ``notice`` as for :meth:`follow`.

        :return: Deferred firing with ``True`` if a follow was removed.
        """

    def is_following(follower_id, followee_id):
        """
        Deferred firing with a bool.
        """

    def following_page(account_id, followers, before, count):
        """
        Up to ``count`` accounts the account follows (``followers``: that
        follow it) with an id below ``before`` (``None``: any), highest id
        first.
        """

    def followers(account_id):
        """
        Deferred firing with the accounts (local or remote) that follow.
        """


class IFavoriteStore(Interface):
    """
    The posts each account favorited.

    Every method returns a Deferred.
    """

    def favorite(account_id, post_id, created_at):
        """
        Deferred firing with ``True`` if the post is now newly a favorite.
        """

    def unfavorite(account_id, post_id):
        """
        Deferred firing with ``True`` if a favorite was removed.
        """

    def marked_among(account_id, post_ids):
        """
        Deferred firing with ``(favorited, retweeted)``: which of
        ``post_ids`` the account favorited, and which it retweeted (a live
        retweet of its own), in one trip to the database (every status
        answer asks it).
        """


class IAppStore(Interface):
    """
    OAuth 1.0a: client apps, their tokens, and the nonces that stop replays.

    Every method returns a Deferred.
    """

    def create_app(consumer_key, consumer_secret, name, owner_id, callback, created_at):
        """
        Register an OAuth app; Deferred firing with its id.
        """

    def get_app(consumer_key):
        """
        Deferred firing with the :class:`AppRecord`, or ``None``.
        """

    def apps_of(owner_id):
        """
        Deferred firing with the apps a user registered (:class:`AppRecord`),
        oldest first.
        """

    def create_token(token, secret, kind, app_id, account_id, callback, created_at,
                     expires_at):
        """
        Store an OAuth token (``request``, ``access`` or ``bearer``).
        """

    def get_token(token):
        """
        Deferred firing with the :class:`TokenRecord` (the token with its
        app's name and key), or ``None``.
        """

    def tokens_of(account_id):
        """
        Deferred firing with a user's access tokens and their apps' names
        (:class:`AccessTokenSummary`).
        """

    def approve_token(token, account_id, verifier):
        """
        Mark a request token approved by a user; ``False`` if it was not
        waiting for approval.
        """

    def delete_token(token):
        """
        Revoke or use up a token; ``True`` if there was one.
        """

    def use_nonce(consumer_key, token, nonce, timestamp, forget_before):
        """
        Record a request's nonce; ``False`` if seen before.  Nonces older
        than ``forget_before`` are forgotten.
        """

    def record_nonces(nonces, forget_before):
        """
        Keep ``nonces`` (consumer key, token, nonce, timestamp), those kept
        already left as they are; nonces older than ``forget_before`` are
        forgotten.
        """

    def recent_nonces(since):
        """
        The nonces kept whose timestamp is ``since`` or later.
        """


class IOIDCStore(Interface):
    """
    OpenID Connect: the relying parties registered with our provider, our
    own registrations at other providers, and what each user granted.

    Every method returns a Deferred.
    """

    def create_oidc_client(client_id, client_secret, metadata, issued_at):
        """
        Keep a relying party that registered here (``metadata`` is JSON).
        """

    def get_oidc_client(client_id):
        """
        Deferred firing with a registered relying party
        (:class:`OIDCClientRecord`), or ``None``.
        """

    def get_oidc_registration(issuer):
        """
        Deferred firing with our registration at ``issuer`` (JSON), or ``None``.
        """

    def put_oidc_registration(issuer, info, now):
        """
        Keep (or replace) our registration at ``issuer``.
        """

    def record_oidc_grant(account_id, client_id, now):
        """
        Note that a user signed in to a relying party with their account.
        """

    def oidc_grants_of(account_id):
        """
        Deferred firing with the relying parties a user signed in to
        (:class:`OIDCGrantRecord`), most recent first.
        """

    def delete_oidc_grant(account_id, client_id):
        """
        Forget a user's grant to a relying party; ``False`` if there was none.
        """


class IRemoteStore(Interface):
    """
    What this server holds of remote authors and tells the ping servers of
    its own: last numbers, subscriptions, and ranges of messages.

    Every method returns a Deferred.
    """

    def local_last_numbers():
        """
        Deferred firing with ``(handle_key, last_seq)`` of every local user
        who has posted: what a full report to a ping server says.
        """

    def subscriptions():
        """
        Deferred firing with ``(handle_key, authority)`` of every remote
        account that at least one local user follows.
        """

    def get_remote_account(handle, authority):
        """
        Deferred firing with the remote account, or ``None``.
        """

    def note_remote_last(handle, authority, last, home_url):
        """
        Record what a ping server says of a known remote account: its
        highest number (never lowered) and home server.  Deferred firing
        with the account, or ``None`` if it is not known here.
        """

    def forget_remote_claim(account_id, claimed, confirmed):
        """
        The author's own server holds nothing beyond ``confirmed``: if the
        known last number is still the ``claimed`` one (no higher claim came
        since), lower it to ``confirmed``, so that the author's next real
        number is fetched at once.  Nothing beyond ``confirmed`` can be held:
        a copy started past it (from a claimed number) starts there instead.
        """

    def start_sync_at(account_id, seq):
        """
        Hold a remote account's messages from ``seq + 1`` on: earlier ones
        are history this server does not copy.
        """

    def wanted(limit):
        """
        Deferred firing with remote accounts whose known last number is
        beyond what is held here (``synced_seq < last_seq``).
        """

    def range_posts(account_id, first, last):
        """
        Deferred firing with the author's messages numbered ``first`` to
        ``last``, tombstones and deletion records included, by number.
        """

    def unheld_originals(account_id, first, last):
        """
        Deferred firing with the ``(screen_name, seq)`` of the originals of
        the account's live retweets numbered ``first`` to ``last`` that are
        not held here.
        """

    def store_remote_original(account_id, item, own_authority, stored_at):
        """
        Keep one post of a remote author (fetched from the author's server)
        outside the copy of their range: their synced and last numbers do
        not move.  Retweets of it and replies to it held here are linked.

        :return: Deferred firing with whether it was new here.
        """

    def replies_to(account_id, seq, limit):
        """
        Deferred firing with ``(handle, authority, seq)`` of the live posts
        held here that reply to the account's message ``seq`` (held or
        not: by the reference replies keep), newest first, at most
        ``limit``.  ``authority`` is ``""`` for this server's users.
        """

    def store_remote_items(account_id, first, last, items, own_authority, stored_at,
                           counts=None, aside=False, latest_profile=None):
        """
        Store a page of a remote author's messages (idempotently: a number
        already held is not stored twice; a tombstone replaces a post).
        Advances the account's ``synced_seq`` over every number now held
        without a gap.  A profile item newer than the one applied replaces
        the account's profile; ``counts`` (the author's server's figures)
        replace its counts.  With ``aside`` (one post fetched for a notice)
        neither ``synced_seq`` nor ``last_seq`` moves, so the copier is not
        made to copy the author.  ``latest_profile`` (``(seq, profile)``, the
        author's latest profile item as the feed's channel names it) is
        taken unless a later one is held: a server that begins copying an
        author after their last profile change still learns it.

        :return: Deferred firing with how many messages were new here.
        """


class IHistoryStore(Interface):
    """
    What this server holds of remote authors beyond what the copier keeps
    up to date: their older messages (history, fetched when read), and
    whether their new numbers come from their own server (direct: another
    federation's author).  See docs/design/reach.md.

    Every method returns a Deferred.
    """

    def held_from(account_id):
        """
        Deferred firing with the lowest number ``n`` such that every number
        from ``n`` to the remote account's ``synced_seq`` is held here
        (``synced_seq + 1`` when none is; 1 when everything is).
        """

    def store_history_items(account_id, items, own_authority, stored_at):
        """
        Store older messages of a remote author: those of ``items`` (range
        feed items) numbered right below :meth:`held_from`, without a gap,
        with status ids below every id of the author's held messages and
        derived from their created time.  ``last_seq`` and ``synced_seq``
        are left as they are.

        :return: Deferred firing with how many messages were stored.
        """

    def set_direct(account_id, direct):
        """
        Record whether a remote account's new numbers come from its own
        server (``True``) or the ping servers.
        """

    def is_direct(account_id):
        """
        Deferred firing with ``True``, ``False`` or ``None`` (not known).
        """

    def direct_subscriptions():
        """
        Deferred firing with the direct remote accounts (with a home
        server) that at least one local user follows.
        """


class ISessionStore(Interface):
    """
    Signed-in browser sessions, by a hash of their cookie.

    Every method returns a Deferred.
    """

    def create_session(session_hash, account_id, csrf_token, created_at, expires_at):
        """
        Remember a signed-in browser session, keyed by a hash of its cookie.
        """

    def get_session(session_hash, now):
        """
        Deferred firing with the :class:`SessionRecord` of a live session,
        or ``None``.
        """

    def delete_session(session_hash):
        """
        Forget a session (signing out).
        """

    def delete_sessions_of(account_id, keep):
        """
        Forget every session of an account but the one whose hash is
        ``keep`` (``None``: all of them), as a password change does.
        """


class IOutboxStore(Interface):
    """
    The durable outbox of signed notices to other servers, and the cursor
    of the sweep that queues notices for new posts.

    Every method returns a Deferred.
    """

    def queue_notice(target, kind, body, now):
        """
        Keep a notice (``body``: JSON text) for the server at ``target``,
        due at once.  Deferred firing with its id.
        """

    def claim_notices(now, lease_until, limit):
        """
        Take up to ``limit`` notices due at ``now`` (soonest first), each
        made due again only at ``lease_until`` so that no other process
        sends it meanwhile.  Deferred firing with the
        :class:`OutboxItem` list.
        """

    def notice_done(notice_id):
        """
        Forget a notice: its receiver took it, or refused it for good.
        """

    def notice_failed(notice_id, next_at, error):
        """
        Count one more failed try of a notice, and make it due at
        ``next_at``.
        """

    def notices_due_now(now):
        """
        Make every pending notice due at ``now`` (a restart tries them all
        at once).  Deferred firing with how many are pending.
        """

    def hurry_notices(target, now):
        """
        Make the notices for ``target`` that wait out a backoff due at
        ``now`` (that server is seen answering again).  Deferred firing with
        how many.
        """

    def pending_notices(limit):
        """
        Deferred firing with up to ``limit`` pending notices, oldest first.
        """

    def posts_to_notice(limit):
        """
        Deferred firing with ``(cursor, upto, posts)``: the sweep's cursor,
        how far this read goes, and the live local posts (at most
        ``limit``) with ids in ``(cursor, upto]`` that can concern another
        server: those with an ``@`` in their text or replying to a post
        (the others cannot call for a notice, and are skipped).
        """

    def queue_post_notices(cursor, upto, notices, now):
        """
        In one transaction: queue ``notices`` (``(target, kind, body)``
        each) and move the sweep's cursor from ``cursor`` to ``upto``.
        Nothing happens if the cursor is no longer ``cursor`` (another
        process swept first).  Deferred firing with whether it moved.
        """


class IBlockStore(Interface):
    """
    Blocks, mutes and "no retweets" of local users (docs/design/blocks.md).

    Every method returns a Deferred.
    """

    def hidden_accounts(account_id):
        """
        Deferred firing with the :class:`Hidden` sets of the account (one
        read of an index range: :data:`NOTHING_HIDDEN` when it hides
        nobody).
        """

    def block(account_id, target_id, created_at, notice=None):
        """
        Record that the account blocks ``target_id``, and in the same
        transaction remove the follow both ways; ``notice`` (a
        :data:`QueuedNotice`, the unfollow for the target's server) is
        queued when the account's follow of the target is removed.

        :return: Deferred firing with ``(new, unfollowed, follower_removed)``.
        """

    def set_hiding(account_id, target_id, what, on, created_at):
        """
        Set (``on``) or clear one of ``"blocking"``, ``"muting"``,
        ``"no_retweets"`` for the pair (clearing a block does not restore
        a follow).  Deferred firing with whether it changed.
        """

    def hiding_page(account_id, what, before, count):
        """
        Up to ``count`` accounts the account blocks (``what``
        ``"blocking"``), mutes (``"muting"``) or takes no retweets of
        (``"no_retweets"``), with an id below ``before`` (``None``: any),
        highest id first.
        """

    def hiding_between(account_id, target_id):
        """
        Deferred firing with the set of what the account hides of the
        target (``{"blocking", "muting", "no_retweets"}`` or fewer).
        """


@dataclass(frozen=True)
class DirectMessage:
    """
    A direct message as one server holds it (docs/design/direct-messages.md).

    :ivar origin_key: the sender's server's key of the message (one message
        however often its notice comes).
    :ivar sender_hidden: destroyed by the sender, who no longer sees it;
        :ivar recipient_hidden: by the recipient.
    """

    id: int
    sender: Account
    recipient: Account
    text: str
    created_at: int
    origin_key: str
    sender_hidden: bool = False
    recipient_hidden: bool = False


class IDirectMessageStore(Interface):
    """
    Direct messages, kept apart from posts: no feed, range, timeline or
    search reads this table.

    Every method returns a Deferred.
    """

    def create_direct_message(sender_id, recipient_id, text, created_at, origin_key,
                              notice=None):
        """
        Keep a message; with ``notice`` (a :data:`QueuedNotice`, for the
        recipient's server) queue it in the outbox in the same transaction.
        A message of the same sender and ``origin_key`` already kept is
        not kept twice (nor its notice queued).

        :return: Deferred firing with ``(message, new)``.
        """

    def get_direct_message(message_id):
        """
        Deferred firing with the :class:`DirectMessage` of that id (hidden
        or not), or ``None``.
        """

    def direct_messages(account_id, sent, count, since_id, max_id, offset=0):
        """
        Deferred firing with up to ``count`` messages received by the
        account (``sent``: sent by it), newest first, not hidden for it,
        with ids in ``(since_id, max_id]``, skipping ``offset``.
        """

    def hide_direct_message(message_id, account_id):
        """
        Hide a message for the account (its sender or recipient).

        :return: Deferred firing with whether it was shown to it before.
        """


class INotificationStore(Interface):
    """
    What happened to an account, and how far it has seen that.

    Every method returns a Deferred.
    """

    def notifications(account_id, before, count, hidden):
        """
        Up to ``count`` :class:`NotificationRecord` of the account, newest
        first, older than ``before`` (ms; ``None``: any), leaving out what
        the accounts with ids in ``hidden`` did.
        """

    def unread_notifications(account_id, at_most, hidden):
        """
        How many notifications are newer than the account's mark (at most
        ``at_most``), ``hidden`` as for :meth:`notifications`.
        """

    def see_notifications(account_id, seen_at):
        """
        Move the account's mark forward to ``seen_at`` (never back).
        """


@dataclass(frozen=True)
class UsageCounts:
    """
    How much this server's own users use it (NodeInfo's ``usage``).

    :ivar users: local users.
    :ivar active_month: local users who posted or retweeted in the last
        30 days; :ivar active_halfyear: in the last 180 days.
    :ivar local_posts: their posts (not retweets, not deleted).
    """

    users: int
    active_month: int
    active_halfyear: int
    local_posts: int


class IUsageStore(Interface):
    """
    Counts of this server's own users and posts.
    """

    def usage_counts(month_start, halfyear_start):
        """
        Deferred firing with the :class:`UsageCounts`, users active since
        ``month_start`` and ``halfyear_start`` (ms since the epoch).
        """


@dataclass(frozen=True)
class PeerRecord:
    """
    What this server last saw of one server it talks to (``peer_health``).

    :ivar kind: ``twitter``, ``ping`` or ``registry``.
    :ivar last_success: ms since the epoch of the last answered request
        (0: never); :ivar last_failure: of the last failed one.
    :ivar failures: failures in a row since the last success.
    :ivar latency_ms: how long the last successful request took.
    :ivar certificate_error: the last TLS certificate problem, if the last
        failure was one ('' otherwise).
    """

    authority: str
    kind: str
    url: str
    last_success: int
    last_failure: int
    failures: int
    latency_ms: int
    last_error: str
    certificate_error: str
    updated_at: int


@dataclass(frozen=True)
class AuthorCopy:
    """
    How complete this server's copy of a followed remote author is.

    :ivar held: the number up to which the copy is complete
        (``synced_seq``: from where the copy began, every number up to it
        is held); :ivar known: the highest number known to exist.
    :ivar followers: local users following the author.
    """

    handle: str
    authority: str
    held: int
    known: int
    followers: int


@dataclass(frozen=True)
class OutboxTarget:
    """
    The notices waiting in the outbox for one receiving server.

    :ivar oldest: when the oldest was queued (ms); :ivar attempts: the
        most tries of one of them; :ivar last_error: why its last try failed.
    """

    target: str
    depth: int
    oldest: int
    attempts: int
    last_error: str


class IHealthStore(Interface):
    """
    Operations: the admin flag, and what the federation health view reads
    (peers, the completeness of copies, the outbox).

    Every method returns a Deferred.
    """

    def set_admin(handle, admin):
        """
        Give (``admin`` true) or take the local user ``handle`` the admin
        flag: ``True``, or ``False`` when there is no such local user.
        """

    def is_admin(account_id):
        """
        Whether the account has the admin flag.
        """

    def admins():
        """
        The handles of the local users with the admin flag, sorted.
        """

    def save_peers(records):
        """
        Keep each :class:`PeerRecord` (replacing the one of its authority
        and kind).
        """

    def peers():
        """
        Every :class:`PeerRecord` kept, by kind and authority.
        """

    def followed_authors():
        """
        Every remote author a local user follows, as :class:`AuthorCopy`,
        the furthest behind first.
        """

    def outbox_targets():
        """
        The outbox by receiving server, as :class:`OutboxTarget`, the
        deepest first.
        """

    def federation_totals():
        """
        ``(authors_behind, missing, outbox_depth, outbox_oldest)``: remote
        authors with numbers known but not held, how many numbers that is
        in all, notices waiting, and when the oldest was queued (ms, 0 if
        none).
        """


@dataclass(frozen=True)
class Standing:
    """
    What the operator decided of a local user (``distwit user show``).

    :ivar locked_until: the operator's lock of its sign-ins ends then (ms;
        0: none).
    :ivar unlocked_at: when the operator last lifted a lock (ms; 0: never).
    :ivar deleted_at: when the operator deleted it (ms), else ``None``.
    """

    account: Account
    suspended: bool
    locked_until: int
    unlocked_at: int
    deleted_at: int | None


@dataclass(frozen=True)
class Moderation:
    """
    The operator's decisions a running server follows, read together
    every second (:meth:`IAdminStore.moderation`).

    :ivar suspended: ids of the suspended accounts (deleted ones too).
    :ivar locks: ``(locked_until, unlocked_at)`` by lower-case handle of
        the local users the operator locked or unlocked.
    :ivar blocked: the authorities of the blocked servers.
    """

    suspended: frozenset[int] = frozenset()
    locks: Mapping[str, tuple[int, int]] = field(default_factory=dict)
    blocked: frozenset[str] = frozenset()
    #: ids of the deleted local users (suspended too).
    deleted: frozenset[int] = frozenset()


class IAdminStore(Interface):
    """
    The operator's decisions (``distwit user ...``, ``distwit server ...``).
    """

    def standings():
        """
        Deferred firing with the :class:`Standing` of every local user, by id.
        """

    def standing(handle):
        """
        Deferred firing with the :class:`Standing` of a local user, or ``None``.
        """

    def set_suspended(account_id, on):
        """
        Suspend an account or lift it; Deferred firing with ``True`` if
        that changed anything.
        """

    def set_lock(account_id, locked_until, unlocked_at=None):
        """
        Set the operator's lock of a local user (``unlocked_at``: also
        record a lift at that moment).
        """

    def moderation():
        """
        Deferred firing with the :class:`Moderation` in force.
        """

    def live_post_ids(account_id):
        """
        Deferred firing with the ids of the account's posts and retweets
        not deleted.
        """

    def remove_user(account_id, deleted_at):
        """
        The last step of deleting a local user (its posts are tombstoned
        before, one by one): its followers, its follows of local users,
        access tokens, web sessions and password go, and it is marked
        deleted and suspended.  Its follows of remote accounts stay, for
        the running server to end with their unfollow notices.
        """

    def block_server(authority, blocked_at, reason):
        """
        Deferred firing with ``True`` if the server was not blocked before.
        """

    def unblock_server(authority):
        """
        Deferred firing with ``True`` if the server was blocked.
        """

    def blocked_servers():
        """
        Deferred firing with ``(authority, blocked_at, reason)`` of every
        blocked server, by authority.
        """


class DeviceAddressTaken(StoreError):
    """
    The address is verified by another account (one owner per address).
    """


@dataclass(frozen=True)
class DeviceAddress:
    """
    One of a user's addresses (docs/design/devices.md): a phone number, a
    Jabber ID or an e-mail address, written as ``channels/interfaces.py``
    says.

    :ivar verified: its code was confirmed: it may be sent to.
    :ivar created_at: when it was added (ms).
    """

    kind: str
    address: str
    verified: bool
    created_at: int


@dataclass(frozen=True)
class DeviceCode:
    """
    The verification state of an address not yet verified: the hash of its
    code, when the code expires (ms) and the wrong tries so far.
    """

    address: DeviceAddress
    code_hash: str
    expires_at: int
    tries: int


@dataclass(frozen=True)
class DeviceSettings:
    """
    What a user chose for their devices.

    :ivar delivery_device: where friends' posts go: ``sms``, ``im`` or
        ``none``.
    :ivar quiet_start: the hour (0-23, the user's time) quiet hours start;
        ``None``: no quiet hours.  :ivar quiet_end: the hour they end.
    :ivar utc_offset: the user's offset from UTC, in seconds.
    :ivar choices: per kind, ``{kind}_mentions``, ``{kind}_direct_messages``
        and ``{kind}_followers``: whether that goes to that kind (a key
        missing: the default, see ``distwit.core.devices``).
    """

    delivery_device: str = "none"
    quiet_start: int | None = None
    quiet_end: int | None = None
    utc_offset: int = 0
    choices: Mapping[str, bool] = field(default_factory=dict)


@dataclass(frozen=True)
class DeviceRecipient:
    """
    What the devices' rules need of one user to decide what to send them:
    their settings, their verified addresses and unsubscribe tokens by
    kind, and their SMS of the last seven days.

    :ivar sms_week: SMS queued to them in the last seven days (not counting
        codes, answers to commands, nor the one saying the cap is reached);
        :ivar cap_told: that one was queued in those seven days.
    """

    account_id: int
    settings: DeviceSettings
    addresses: Mapping[str, str]
    tokens: Mapping[str, str]
    sms_week: int = 0
    cap_told: bool = False


@dataclass(frozen=True)
class DevicePostEvent:
    """
    A new post (local or copied) and the local users it may be sent to,
    each with why: ``friend`` (their notifications of the author are on),
    ``mention`` or ``reply`` (to one of their posts).
    """

    post: Post
    recipients: "tuple[tuple[int, str], ...]"


@dataclass(frozen=True)
class DeviceFollowEvent:
    """
    A new follower (local or remote) of local user ``followee_id``.
    """

    follower: Account
    followee_id: int
    created_at: int


@dataclass(frozen=True)
class DeviceSweep:
    """
    What the devices' sweep found since its cursors (``device_sweep``):
    posts and direct messages with ids in ``(posts_from, posts_to]`` and
    ``(messages_from, messages_to]``, follows not seen yet, and what the
    rules need of every local user concerned (``recipients``).
    """

    posts_from: int
    posts_to: int
    messages_from: int
    messages_to: int
    posts: "tuple[DevicePostEvent, ...]"
    messages: "tuple[DirectMessage, ...]"
    follows: "tuple[DeviceFollowEvent, ...]"
    recipients: Mapping[int, DeviceRecipient]

    @property
    def empty(self) -> bool:
        return (
            self.posts_from == self.posts_to and self.messages_from == self.messages_to
            and not self.follows
        )


@dataclass(frozen=True)
class DeviceMessage:
    """
    One message to a device, in the devices' outbox.

    :ivar category: what it is (``code``, ``answer``, ``post``, ``mention``,
        ``reply``, ``dm``, ``follower``, ``cap``, ...): its dedupe key's
        first part.
    :ivar unsubscribe: the link that stops such mail (e-mail), or ``""``.
    :ivar due_at: when it was first due (ms); :ivar tries: failed tries.
    """

    id: int
    account_id: int
    kind: str
    address: str
    category: str
    text: str
    subject: str
    unsubscribe: str
    dedupe_key: str
    created_at: int
    due_at: int
    tries: int


@dataclass(frozen=True)
class DeviceQueueHealth:
    """
    The devices' outbox at a glance (``/admin/status``, metrics).

    :ivar pending: messages waiting (due or not); :ivar failing: of them,
        those that failed at least once; :ivar given_up: given up in the
        last week; :ivar sent: sent in the last week; :ivar oldest_due: when
        the oldest pending message that is due was first due (ms), or
        ``None``.
    """

    pending: int
    failing: int
    given_up: int
    sent: int
    oldest_due: int | None


class IDeviceStore(Interface):
    """
    Phones, IM and e-mail (docs/design/devices.md): addresses and their
    verification, what users chose, the devices' outbox and its sweep.

    Every method returns a Deferred.
    """

    def add_device_address(account_id, kind, address, code_hash, expires_at, token,
                           created_at):
        """
        Make ``address`` the account's (unverified) address of ``kind``,
        in place of any it had, with a new code; what was queued to the old
        address is cancelled.

        :raise DeviceAddressTaken: another account verified that address.
        :return: Deferred firing with the :class:`DeviceAddress`.
        """

    def device_code(account_id, kind):
        """
        Deferred firing with the :class:`DeviceCode` of the account's
        address of ``kind``, or ``None`` when it has none.
        """

    def count_code_try(account_id, kind):
        """
        Count one wrong try of the code: Deferred firing with the tries now.
        """

    def verify_device_address(account_id, kind):
        """
        Mark the account's address of ``kind`` verified (its code is spent);
        other accounts' unverified claims on it go.

        :raise DeviceAddressTaken: another account verified it meanwhile.
        :return: Deferred firing with the :class:`DeviceAddress`.
        """

    def remove_device_address(account_id, kind):
        """
        Forget the account's address of ``kind`` (and cancel what was queued
        to it; a delivery device of that kind becomes ``none``).
        """

    def device_addresses(account_id):
        """
        Deferred firing with the account's :class:`DeviceAddress` list, by
        kind.
        """

    def device_owner(kind, address):
        """
        Deferred firing with the id of the account that verified
        ``address``, or ``None``.
        """

    def device_by_token(token):
        """
        Deferred firing with ``(account_id, kind, address)`` of the address
        whose unsubscribe token is ``token``, or ``None``.
        """

    def device_settings(account_id):
        """
        Deferred firing with the account's :class:`DeviceSettings`.
        """

    def save_device_settings(account_id, settings):
        """
        Keep the account's :class:`DeviceSettings`.
        """

    def stop_device(kind, address):
        """
        Stop everything to an address at once: what was queued to it is
        cancelled (verified or not); the owner's delivery device becomes
        ``none`` if it was that kind, and their choices of that kind are off.

        :return: Deferred firing with the owner's id, or ``None``.
        """

    def set_device_notifications(follower_id, followee_id, on):
        """
        Turn the follower's notifications of a friend's posts on or off.

        :return: Deferred firing with whether the follow exists.
        """

    def device_notifications_on(account_id, friend_ids):
        """
        Deferred firing with the set of ``friend_ids`` whose posts the
        account has sent to its device.
        """

    def queue_device_message(account_id, kind, address, category, text, subject,
                             unsubscribe, dedupe_key, due_at, now):
        """
        Queue one message, unless one of the same ``dedupe_key`` ever was.

        :return: Deferred firing with whether it was queued now.
        """

    def device_recipient(account_id, now):
        """
        Deferred firing with the :class:`DeviceRecipient` of the account
        (its SMS counted over the seven days before ``now``).
        """

    def device_sweep(limit, now):
        """
        Deferred firing with the :class:`DeviceSweep` since the cursors (at
        most about ``limit`` posts, messages and follows each).
        """

    def queue_device_sweep(sweep, messages, now):
        """
        Move the cursors past ``sweep``, mark its follows seen and queue
        ``messages`` (tuples of :meth:`queue_device_message`'s arguments
        from ``account_id`` to ``due_at``), in one transaction, unless
        another process moved the cursors first.

        :return: Deferred firing with whether this call moved them.
        """

    def claim_device_messages(now, lease_until, limit):
        """
        Deferred firing with up to ``limit`` pending :class:`DeviceMessage`
        that are due, each kept from other claims until ``lease_until``.
        """

    def device_message_sent(message_id, now):
        """
        The gateway took it.
        """

    def device_message_failed(message_id, next_at, error):
        """
        This try failed: try again at ``next_at``.
        """

    def device_message_given_up(message_id, now, error):
        """
        Never to be sent.
        """

    def device_messages_due_now(now):
        """
        Make every pending message whose lease or backoff runs past ``now``
        due now (a restart).  Deferred firing with the pending count.
        """

    def device_queue_health(now):
        """
        Deferred firing with the :class:`DeviceQueueHealth`.
        """

    def prune_device_outbox(before):
        """
        Forget finished messages finished before ``before`` (ms).
        """


@dataclass(frozen=True)
class PasswordResetRecord:
    """
    A password-reset link sent by e-mail (``password_reset``), known by
    the hash of its token.

    :ivar address: where it was sent (lower-cased).
    :ivar created_at: when (ms).
    :ivar expires_at: when it stops working (ms).
    :ivar used_at: when it was used, or voided by the use of another link
        of the account (ms); ``None``: not yet.
    """

    account_id: int
    address: str
    created_at: int
    expires_at: int
    used_at: int | None


class IPasswordResetStore(Interface):
    """
    Password-reset links sent by e-mail (docs/design/devices.md), by the
    hash of their token.

    Every method returns a Deferred.
    """

    def create_password_reset(token_hash, account_id, address, created_at, expires_at,
                              recent_since, at_most):
        """
        Keep a new link, unless ``at_most`` links were already made for
        ``address`` since ``recent_since`` (ms): the rate limit per
        address.  Links expired more than a day ago are forgotten.
        Deferred firing with ``True`` when kept, ``False`` when limited.
        """

    def password_reset(token_hash):
        """
        Deferred firing with the :class:`PasswordResetRecord` of a link
        (used, expired or not), or ``None``.
        """

    def use_password_reset(token_hash, now):
        """
        Use a link: if it is unused and not expired at ``now`` (ms), mark
        it and every other unused link of its account used.  Deferred
        firing with its :class:`PasswordResetRecord` as it was before (this
        call used it), or ``None`` (unknown, used or expired: nothing
        changed).
        """


class IStore(
    IAccountStore,
    IPostStore,
    ITimelineStore,
    IFollowStore,
    IFavoriteStore,
    IAppStore,
    IOIDCStore,
    IRemoteStore,
    IHistoryStore,
    ISessionStore,
    IOutboxStore,
    IBlockStore,
    IDirectMessageStore,
    INotificationStore,
    IUsageStore,
    IHealthStore,
    IAdminStore,
    IDeviceStore,
    IPasswordResetStore,
):
    """
    Everything the twitter role keeps: users, posts, timelines, follows,
    favorites, apps, OpenID Connect, remote authors and web sessions, one
    area interface each.

    Every method returns a Deferred; the work runs off the reactor thread.
    """

    def close():
        """
        Finish in-flight work and close connections.  Returns a Deferred.
        """
