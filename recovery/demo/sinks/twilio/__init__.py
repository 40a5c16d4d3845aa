"""A local HTTP server that speaks enough of Twilio's Messages API for the real ``twilio`` client.

``POST /2010-04-01/Accounts/{sid}/Messages.json`` (form-encoded, basic auth) creates a message and
answers like Twilio (``sid`` ``SM…``, ``status`` ``queued``, ``num_segments`` …); ``GET`` on the same
path lists messages newest first, filtered by ``To``, ``From`` and ``DateSent`` / ``DateSent>`` /
``DateSent<``, paged with ``PageSize`` and ``Page``; ``GET …/Messages/{sid}.json`` fetches one.

Errors use Twilio's legacy body ``{code, message, more_info, status}``, or RFC 9457 problem details
(``{type, title, status, code, detail}``) when ``problem_details`` is set, which twilio-python 9 raises
as ``TwilioServiceException`` instead of ``TwilioRestException``.

Programmable failures: ``fail_next`` (e.g. 503 for N requests, 429 with ``Retry-After``),
``fail_for`` (a status for T seconds), ``reject`` (a Twilio error code for one number) and
``response_delay_s`` (the message is recorded, then the answer is held back: an outcome-unknown send).
The server runs in its own thread and event loop: ``start()`` / ``stop()`` or ``with FakeTwilio() as t``.
"""

from recovery.demo.sinks.twilio.messages import DEFAULT_ACCOUNT_SID, DEFAULT_AUTH_TOKEN, SentSms
from recovery.demo.sinks.twilio.server import FakeTwilio

__all__ = ["DEFAULT_ACCOUNT_SID", "DEFAULT_AUTH_TOKEN", "FakeTwilio", "SentSms"]
