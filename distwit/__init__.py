"""
distwit: a distributed, federated Twitter on Twisted.

Each role (``twitter``, ``ping``, ``registry``) lives in its own
subpackage; ``distwit.tap`` puts them together for ``twistd -n distwit``.
"""

__version__ = "0.1.0"
