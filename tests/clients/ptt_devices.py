"""
Phones through the 2008 API with Python Twitter Tools (the ``twitter``
package, which knows ``account/update_delivery_device``,
``notifications/follow`` and ``account/settings`` by name), run in its own
virtualenv against a live distwit server with a recording SMS channel
(tests/device_channels.py), on the unversioned 2008 paths.

Usage: python ptt_devices.py HOST:PORT FORMAT SENT_LOG REMOTE_HOST:PORT

alice, bob and carol are users of HOST:PORT, dave of REMOTE_HOST:PORT;
SENT_LOG is the file the server's recording channels write (one JSON
object a line: kind, address, text).

Exits 0 after printing one line per step; an AssertionError or a client
exception otherwise.
"""

import json
import re
import sys
import time
import xml.etree.ElementTree as ElementTree

from twitter import Twitter, TwitterHTTPError, UserPassAuth

domain, fmt, sent_log, remote_domain = sys.argv[1:5]
PASSWORD = "correct horse battery"
PHONE = "+15555550123"
remote = "dave@" + remote_domain


def client(user, where=domain):
    return Twitter(
        auth=UserPassAuth(user, PASSWORD), domain=where, secure=False,
        api_version=None, format=fmt,
    )


def parse(answer):
    """
    The answer as Python values: JSON is decoded by the client; XML comes
    as text, read here the way a 2008 client would.
    """
    if fmt == "json":
        return answer
    root = ElementTree.fromstring(str(answer))

    def value(element):
        if element.get("type") == "array":
            return [value(child) for child in element]
        if len(element):
            return {child.tag: value(child) for child in element}
        return element.text

    return value(root)


def true(value):
    return value is True or value == "true"


def refused(call, **kwargs):
    """
    Call, expecting a refusal: its HTTP status and Twitter's message.
    """
    try:
        call(**kwargs)
    except TwitterHTTPError as e:
        data = e.response_data
        if fmt == "json":
            return e.e.code, data["errors"][0]["message"]
        return e.e.code, ElementTree.fromstring(data).find("error").text
    raise AssertionError(f"not refused: {kwargs}")


def step(name):
    print("ok", name, flush=True)


def sent():
    with open(sent_log, encoding="utf-8") as f:
        return [json.loads(line) for line in f if line.strip()]


def eventually(find, what, timeout=30.0):
    deadline = time.monotonic() + timeout
    while True:
        found = find()
        if found:
            return found
        if time.monotonic() > deadline:
            raise AssertionError(f"{what}: not within {timeout}s; sent: {sent()}")
        time.sleep(0.1)


def texts_to(address):
    return [m["text"] for m in sent() if m["address"] == address]


alice, bob, carol, dave = client("alice"), client("bob"), client("carol"), client(
    "dave", remote_domain)

# No phone yet: the delivery device cannot be sms.
status, message = refused(alice.account.update_delivery_device, device="sms")
assert status == 403 and "phone" in message.lower(), (status, message)
status, message = refused(alice.account.update_delivery_device, device="fax")
assert status == 400 and "sms, im or none" in message, (status, message)
step("update_delivery_device refused without a verified phone, and for a fax")

added = parse(alice.account.devices.add(kind="sms", address="+1 555 555 0123",
                                        _method="POST"))
assert added["address"] == PHONE and not true(added["verified"]), added
code = eventually(
    lambda: next((re.search(r"(?<!\d)\d{6}(?!\d)", t).group(0) for t in texts_to(PHONE)
                  if re.search(r"(?<!\d)\d{6}(?!\d)", t)), None),
    "the code by SMS",
)
wrong = "000000" if code != "000000" else "111111"
status, message = refused(alice.account.devices.verify, kind="sms", code=wrong,
                          _method="POST")
assert status == 403, (status, message)
verified = parse(alice.account.devices.verify(kind="sms", code=code, _method="POST"))
assert verified["address"] == PHONE and true(verified["verified"]), verified
listed = parse(alice.account.devices(_method="GET"))
assert [d["address"] for d in listed["devices"]] == [PHONE], listed
step("add a phone, a wrong code refused, the code sent to it verifies it")

me = parse(alice.account.update_delivery_device(device="sms"))
assert me["screen_name"] == "alice", me
alice.friendships.create(screen_name="bob")
alice.friendships.create(screen_name=remote)
status, message = refused(alice.notifications.follow, screen_name="carol")
assert status == 403 and "carol" in message, (status, message)
shown = parse(alice.notifications.follow(screen_name="bob"))
assert shown["screen_name"] == "bob" and true(shown["notifications"]), shown
shown = parse(alice.notifications.follow(screen_name=remote))
assert shown["screen_name"] == remote and true(shown["notifications"]), shown
users = {u["screen_name"]: u for u in parse(alice.users.lookup(screen_name="bob,carol"))}
assert true(users["bob"]["notifications"]) and not true(users["carol"]["notifications"]), users
assert true(parse(alice.users.show(screen_name="bob"))["notifications"])
assert not true(parse(bob.users.show(screen_name="bob"))["notifications"])
step("update_delivery_device sms; notifications/follow of a local and a remote friend; "
     "the notifications field")

bob.statuses.update(status="bob's post for alice's phone")
eventually(lambda: "bob: bob's post for alice's phone" in texts_to(PHONE), "bob's post by SMS")
dave.statuses.update(status="dave's post, from far away")
eventually(lambda: f"{remote}: dave's post, from far away" in texts_to(PHONE),
           "dave's post by SMS")
step("a local and a remote friend's posts arrive by SMS")

left = parse(alice.notifications.leave(screen_name="bob"))
assert not true(left["notifications"]), left
bob.statuses.update(status="bob's post after leave")
alice.friendships.create(screen_name="carol")
alice.notifications.follow(screen_name="carol")
carol.statuses.update(status="carol's post, after bob's")
eventually(lambda: "carol: carol's post, after bob's" in texts_to(PHONE), "carol's post")
assert "bob: bob's post after leave" not in texts_to(PHONE), texts_to(PHONE)
step("notifications/leave: bob's next post is not sent, carol's later one is")

settings = parse(alice.account.settings(_method="GET"))
assert settings["delivery_device"] == "sms", settings
assert not true(settings["sleep_time"]["enabled"]), settings
settings = parse(alice.account.settings(
    sleep_time_enabled="true", start_sleep_time="23", end_sleep_time="7", time_zone="UTC+2",
    sms_mentions="false"))
assert true(settings["sleep_time"]["enabled"]), settings
assert int(settings["sleep_time"]["start_time"]) == 23, settings
assert int(settings["sleep_time"]["end_time"]) == 7, settings
assert int(settings["time_zone"]["utc_offset"]) == 7200, settings
assert not true(settings["sms_mentions"]), settings
status, message = refused(alice.account.settings, time_zone="Mars/Olympus_Mons")
assert status == 400 and "time zone" in message, (status, message)
settings = parse(alice.account.settings(sleep_time_enabled="false"))
assert not true(settings["sleep_time"]["enabled"]), settings
step("account/settings: quiet hours, time zone and a channel's choice")

left = parse(alice.account.devices.remove(kind="sms", _method="POST"))
assert left["devices"] in ([], None), left
status, message = refused(alice.account.update_delivery_device, device="sms")
assert status == 403, (status, message)
settings = parse(alice.account.settings(_method="GET"))
assert settings["delivery_device"] == "none", settings
step("remove the phone: delivery back to none")
