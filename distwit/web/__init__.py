"""
The HTML pages of a twitter server.
"""
