"""Our Standard Webhooks signing, checked against the independent `standardwebhooks` package."""

import time

import pytest
from standardwebhooks.webhooks import Webhook, WebhookVerificationError

from crm_sync import signing


def test_our_signatures_verify_with_the_reference_library_for_each_rotated_secret():
    old, new = signing.new_secret(), signing.new_secret()
    body = b'{"type":"call.completed","data":{"id":1}}'
    h = signing.headers([old, new], "msg_2k1", body)
    assert Webhook(old).verify(body, h) == {"type": "call.completed", "data": {"id": 1}}
    assert Webhook(new).verify(body, h)
    with pytest.raises(WebhookVerificationError):
        Webhook(signing.new_secret()).verify(body, h)


def test_reference_library_signatures_verify_with_ours_and_tampering_is_refused():
    secret = signing.new_secret()
    ts = int(time.time())
    body = b'{"x": 1}'
    sig = Webhook(secret).sign("msg_abc", __import__("datetime").datetime.fromtimestamp(ts), body.decode())
    h = {"webhook-id": "msg_abc", "webhook-timestamp": str(ts), "webhook-signature": sig}
    assert signing.verify([signing.new_secret(), secret], h, body).msg_id == "msg_abc"
    with pytest.raises(signing.SignatureError) as err:
        signing.verify([secret], h, body + b" ")
    assert err.value.error_id == "bad-signature"


def test_old_or_future_timestamps_and_missing_headers_are_refused():
    secret = signing.new_secret()
    h = signing.headers([secret], "msg_1", b"{}", timestamp=int(time.time()) - 301)
    with pytest.raises(signing.SignatureError, match="more than 300 s from now"):
        signing.verify([secret], h, b"{}")
    with pytest.raises(signing.SignatureError) as err:
        signing.verify([secret], {"webhook-id": "x"}, b"{}")
    assert err.value.error_id == "signature-headers-missing"
    with pytest.raises(ValueError, match="whsec_"):
        signing.decode_secret("nope")


def test_a_signature_with_non_ascii_characters_is_a_bad_signature_not_a_crash():
    secret = signing.new_secret()
    h = {"webhook-id": "msg_1", "webhook-timestamp": str(int(time.time())), "webhook-signature": "v1,é"}
    with pytest.raises(signing.SignatureError) as err:
        signing.verify([secret], h, b"{}")
    assert err.value.error_id == "bad-signature"


def test_an_inbound_secret_that_is_not_a_key_stops_start_up():
    from callcycle.config_sources import SettingsError
    from callcycle.settings import load

    for bad in ("whsec_not*base64", "whsec_c2hvcnQ="):     # not base64; a 5-byte key
        with pytest.raises(SettingsError, match="CALLCYCLE_CRM_INBOUND_SECRETS: secret 1"):
            load(environ={"CALLCYCLE_CRM_INBOUND_SECRETS": f"{bad} {signing.new_secret()}"})
