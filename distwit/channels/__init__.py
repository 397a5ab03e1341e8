"""
Phones, instant messages and e-mail: the channels that carry a user's
updates to their devices and bring their commands back
(docs/design/devices.md).

A face beside the Twitter API, OpenID Connect and the federation: it uses
the rules in :mod:`distwit.core` (what is sent to whom, what a command
does) and speaks the gateways' protocols (SMTP, XMPP, Kannel's HTTP
interface, Amazon SNS, a configurable HTTP API).
"""
