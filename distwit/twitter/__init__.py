"""
The twitter role: users, posts, follows and timelines, and the service
that serves them over the Twitter API and HTML pages.
"""
