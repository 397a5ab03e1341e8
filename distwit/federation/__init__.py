"""
The twitter role's side of the federation: reporting to the ping servers,
copying the ranges of followed authors, follows across servers, and the
range-feed wire format.
"""
