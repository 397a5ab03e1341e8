"""
What the operator does to the registry's admissions (``distwit registry
approve``, ``revoke``, ``list``), on its store.  The running registry reads
the approvals back at every sweep, so a change takes effect within one
heartbeat interval.
"""

from __future__ import annotations

from distwit.registry.interfaces import IRegistryStore
from distwit.registry.resource import check_public_key, check_public_url
from distwit.registry.store import APPROVED, Admission
from distwit.urls import authority_of


class AdmissionError(Exception):
    """
    The operator's request cannot be done; the message says why.
    """


def _authority(url: str) -> tuple[str, str]:
    try:
        url = check_public_url(url)
    except ValueError as e:
        raise AdmissionError(str(e)) from None
    return url, authority_of(url)


async def _admission_of(store: IRegistryStore, authority: str) -> Admission | None:
    for row in await store.admissions():
        if row.authority == authority:
            return row
    return None


async def approve(store: IRegistryStore, url: str, key: str | None, now: float) -> Admission:
    """
    Approve the ping server at ``url`` with ``key``, or, without a key,
    with the key it asked with (it must be pending).  An approval of
    another URL of the same authority is replaced: one per authority.
    """
    url, authority = _authority(url)
    old = await _admission_of(store, authority)
    if key is None:
        if old is None or old.public_url != url:
            raise AdmissionError(
                f"{url} has not asked to be listed; give its key with --key"
            )
        key = old.public_key
    try:
        key = check_public_key(key)
    except ValueError as e:
        raise AdmissionError(str(e)) from None
    admission = Admission(
        authority, url, key, APPROVED, now, old.last_heard if old is not None else 0.0
    )
    await store.set_admission(admission)
    return admission


async def revoke(store: IRegistryStore, url: str) -> Admission:
    """
    Withdraw the approval (or forget the request) of the ping server of
    ``url``'s authority.  If it keeps asking, it comes back as pending.
    """
    url, authority = _authority(url)
    old = await _admission_of(store, authority)
    if old is None:
        raise AdmissionError(f"nothing is approved or pending for {authority}")
    await store.remove_admission(authority)
    return old


async def describe(store: IRegistryStore) -> list[str]:
    """
    One line per admission, approved first: status, URL, key.
    """
    rows = sorted(await store.admissions(), key=lambda a: (not a.approved, a.authority))
    return [f"{a.status}\t{a.public_url}\t{a.public_key}" for a in rows]
