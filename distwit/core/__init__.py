"""
The rules of the twitter role (users, posts, follows, timelines, limits,
passwords): no HTTP and no SQL.
"""
