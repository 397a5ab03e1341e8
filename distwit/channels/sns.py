"""
SMS through Amazon SNS: each message is one ``Publish`` to a phone number
(``PhoneNumber``), as a transactional SMS (``AWS.SNS.SMS.SMSType``), from
the server's sender ID or origination number when it has one
(docs/design/sms.md).

boto3 does the AWS part (credentials from the settings or the usual AWS
environment, files and roles; SigV4 signing; the region's endpoint), in a
small thread pool of the channel's own, never on the reactor thread.  It
makes one attempt per message: the durable outbox is what tries again.

Send only: SNS brings no texts back from phones (two-way SMS goes through
Amazon Pinpoint or End User Messaging, not SNS).
"""

from __future__ import annotations

from typing import Any

from twisted.application.service import Service
from twisted.internet.defer import Deferred, fail
from twisted.internet.threads import deferToThreadPool
from twisted.logger import Logger
from twisted.python.threadpool import ThreadPool
from zope.interface import implementer

from distwit.channels.interfaces import AddressRefused, ChannelError, ChannelParts, IChannel
from distwit.channels.sms import BadNumber, e164
from distwit.config import ConfigError, Settings

_log = Logger()

#: Seconds to connect to SNS, and to wait for its answer.
CONNECT_TIMEOUT = 10.0
READ_TIMEOUT = 20.0

#: Threads publishing at once.
THREADS = 4

#: SNS's error codes that no later try will change: a parameter it will
#: never take (a number it cannot send to, a text too long).
_PERMANENT = frozenset({"InvalidParameter", "InvalidParameterValue", "ValidationError"})


@implementer(IChannel)
class SNSChannel:
    """
    Publishes SMS with an SNS client (boto3's, or anything with its
    ``publish``), in ``threads``.

    :param sender: ``+digits``: the origination number
        (``AWS.MM.SMS.OriginationNumber``); other text: the sender ID
        (``AWS.SNS.SMS.SenderID``, where the country allows one);
        ``""``: SNS's default.
    """

    kind = "sms"
    name = "sns"

    def __init__(self, reactor: Any, client: Any, threads: ThreadPool, sender: str = "") -> None:
        self._reactor = reactor
        self._client = client
        self._threads = threads
        self._attributes: dict[str, dict[str, str]] = {
            "AWS.SNS.SMS.SMSType": {"DataType": "String", "StringValue": "Transactional"},
        }
        if sender.startswith("+"):
            self._attributes["AWS.MM.SMS.OriginationNumber"] = {
                "DataType": "String", "StringValue": sender,
            }
        elif sender:
            self._attributes["AWS.SNS.SMS.SenderID"] = {
                "DataType": "String", "StringValue": sender,
            }

    def send(
        self, address: str, text: str, subject: str = "", unsubscribe: str = ""
    ) -> Deferred[None]:
        try:
            number = e164(address)
        except BadNumber as e:
            return fail(AddressRefused(str(e)))
        d: Deferred[None] = deferToThreadPool(
            self._reactor, self._threads, self._publish, number, text
        )
        return d

    def _publish(self, number: str, text: str) -> None:
        """
        One ``Publish``, on a thread of the pool.
        """
        from botocore.exceptions import BotoCoreError, ClientError

        try:
            self._client.publish(PhoneNumber=number, Message=text,
                                 MessageAttributes=self._attributes)
        except ClientError as e:
            error = e.response.get("Error", {})
            code = str(error.get("Code", ""))
            words = str(error.get("Message", "")) or str(e)
            if code in _PERMANENT:
                raise AddressRefused(f"SNS will not send this to {number}: {code}: {words}")
            raise ChannelError(f"SNS did not take the message: {code}: {words}") from None
        except BotoCoreError as e:
            raise ChannelError(f"SNS did not answer: {e}") from None


class ThreadPoolService(Service):
    """
    Starts the channel's thread pool with the server, and stops it (after
    the publishes under way) when the server stops.
    """

    def __init__(self, threads: ThreadPool) -> None:
        self._threads = threads

    def startService(self) -> None:
        super().startService()
        self._threads.start()

    def stopService(self) -> None:
        super().stopService()
        self._threads.stop()


def make_client(settings: Settings) -> Any:
    """
    boto3's SNS client for the settings.

    :raise ConfigError: boto3 is not installed, or no region is known.
    """
    try:
        import boto3
        from botocore.config import Config
        from botocore.exceptions import BotoCoreError
    except ImportError:
        raise ConfigError(
            "sms_gateway = sns needs boto3: pip install 'distwit[sns]'"
        ) from None
    session = boto3.session.Session(
        aws_access_key_id=settings.sns_access_key_id or None,
        aws_secret_access_key=settings.sns_secret_access_key or None,
        region_name=settings.sns_region or None,
    )
    config = Config(
        connect_timeout=CONNECT_TIMEOUT,
        read_timeout=READ_TIMEOUT,
        retries={"mode": "standard", "max_attempts": 1},
    )
    try:
        return session.client("sns", endpoint_url=settings.sns_endpoint or None, config=config)
    except BotoCoreError as e:
        raise ConfigError(f"sns_region: {e} (set sns_region, or AWS_REGION)") from None


def from_settings(settings: Settings, reactor: Any) -> ChannelParts | None:
    """
    The SNS channel when ``sms_gateway = sns``, with the service that runs
    its thread pool.

    :raise ConfigError: boto3 is missing, or no AWS region is known.
    """
    if settings.sms_gateway != "sns":
        return None
    threads = ThreadPool(minthreads=0, maxthreads=THREADS, name="sns")
    channel = SNSChannel(reactor, make_client(settings), threads, settings.sms_from)
    return ChannelParts(channel=channel, services=[ThreadPoolService(threads)])


__all__ = ["SNSChannel", "from_settings", "make_client"]
