"""
What the API needs from the rest of the server, given to it by the
composition root (:mod:`distwit.roles.twitter`): a face does not import
another face.
"""

from __future__ import annotations

from typing import Any, Mapping, Protocol, Sequence


class RenderPage(Protocol):
    """
    Renders one of the site's pages in the site's look (the OAuth
    authorize page is one).
    """

    def __call__(
        self, template: str, form_targets: Sequence[str], context: Mapping[str, Any]
    ) -> tuple[str, bytes]:
        """
        :param template: the name of the page's template.
        :param form_targets: where, besides this site, the page's forms may
            lead (after a redirect).
        :param context: the values the template shows.
        :return: the HTML, and the ``Content-Security-Policy`` for it.
        """
