"""
One generic call of Python Twitter Tools (the ``twitter`` package) with
HTTP Basic on the unversioned 2008 paths, run in its own virtualenv
(tests/test_direct_messages.py).

Usage: python ptt_call.py HOST:PORT FORMAT USER PASSWORD PATH [NAME=VALUE ...]

``PATH`` is the call as the package spells it, ``direct_messages/new``
for ``twitter.direct_messages.new(...)``.  Prints the answer (JSON as
JSON, XML as the text the server sent) and exits 0; on an HTTP error
prints ``{"status": ..., "body": ...}`` and exits 3.
"""

import json
import sys

from twitter import Twitter, TwitterHTTPError, UserPassAuth

domain, fmt, user, password, path = sys.argv[1:6]
arguments = dict(argument.split("=", 1) for argument in sys.argv[6:])
client = Twitter(auth=UserPassAuth(user, password), domain=domain, secure=False,
                 api_version=None, format=fmt)
call = client
for part in path.split("/"):
    call = getattr(call, part)
try:
    answer = call(**arguments)
except TwitterHTTPError as e:
    print(json.dumps({"status": e.e.code, "body": str(e.response_data)}))
    sys.exit(3)
print(json.dumps(answer) if fmt == "json" else str(answer))
