from callcycle.logs import mask_phone, mask_phones


def test_phone_numbers_are_masked_by_key_and_inside_text():
    event = mask_phones(None, "info", {"event": "dialing +1 415 555 0123 now", "phone": "+14155550123",
                                        "campaign_id": 12, "note": "order 42"})
    assert event["phone"] == "+14*******23"
    assert "555" not in event["event"] and event["event"].startswith("dialing +1")
    assert event["campaign_id"] == 12 and event["note"] == "order 42"


def test_short_values_are_fully_masked():
    assert mask_phone("1234") == "****"


def test_timestamps_and_asterisk_ids_are_not_mistaken_for_phone_numbers():
    event = mask_phones(None, "info", {"timestamp": "2026-11-23T18:19:55.123Z", "event": "x",
                                        "detail": "call 1795457995.84 at 2026-11-23 18:19:55 from 4155550123"})
    assert event["timestamp"] == "2026-11-23T18:19:55.123Z"
    assert event["detail"] == "call 1795457995.84 at 2026-11-23 18:19:55 from 41******23"


def test_numbers_in_dial_strings_with_dashes_and_in_lists_or_nested_values_are_masked():
    from callcycle.logs import mask_phones

    event = mask_phones(None, "", {"event": "x", "channel": "Local/14155550123@sim-customer-0001;1",
                                   "error": "refusing dial string 'PJSIP/4155550123@carrier'",
                                   "said": "call +1-415-555-0123", "phone": 14155550123,
                                   "to": ["+14155550123"], "data": {"phone": "+14155550123"},
                                   "linkedid": "1795457995.84", "at": "2026-11-23T18:19:20.123456"})
    assert "4155550123" not in str(event) and "415-555" not in str(event)
    assert event["linkedid"] == "1795457995.84" and event["at"] == "2026-11-23T18:19:20.123456"
    assert event["channel"].endswith("@sim-customer-0001;1")
