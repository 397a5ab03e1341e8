"""
The ping role: the in-memory table ``acct -> (last message number, home
server, when)`` that twitter servers report to and ask.
"""
