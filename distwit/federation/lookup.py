"""
One message of a remote author, fetched by number from the author's own
server and kept aside (outside the copy of their range): what the copier
does for the original of a retweet, and the threads for a post replied
to or a reply (docs/design/threads.md).

Only the author's server is asked, so nothing is taken on another
server's word: the message is the range feed ``seq..seq`` of its author.
"""

from __future__ import annotations

from distwit.federation.range_feed import MAX_FEED_BYTES, parse_range_feed
from distwit.model import Account
from distwit.s2s import paths
from distwit.s2s.interfaces import IS2SClient
from distwit.store.interfaces import IStore


def home_url_of(account: Account, scheme: str) -> str:
    """
    Where ``account``'s server answers: the home URL known of it, else its
    authority with ``scheme`` (the federation's servers share one).
    """
    return account.home_url or f"{scheme}://{account.authority}"


async def fetch_one(
    store: IStore,
    client: IS2SClient,
    own_authority: str,
    handle: str,
    authority: str,
    seq: int,
    scheme: str,
    now: int,
) -> Account:
    """
    Fetch message ``seq`` of ``handle@authority`` from its author's server
    and keep it aside (a post; a tombstone or another kind of item is not
    kept).  A message held already is not stored again.

    :param scheme: the scheme of the author's server's URL when no home
        URL is known of the author.
    :param now: the time it is stored at, in milliseconds.
    :return: the author's account here (created if it was not known).
    :raise S2SResponseError: the author's server did not answer it.
    :raise ValueError: its answer was no range feed of that message.
    """
    account = await store.ensure_account(handle, authority, now)
    data = await client.get_bytes(
        paths.range_feed_url(home_url_of(account, scheme), account.handle, seq, seq),
        max_size=MAX_FEED_BYTES,
    )
    page = parse_range_feed(data, f"{handle.lower()}@{authority}", seq, seq)
    for item in page.items:
        await store.store_remote_original(account.id, item, own_authority, now)
    return account
