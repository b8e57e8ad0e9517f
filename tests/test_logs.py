from callcycle.logs import mask_phone, mask_phones


def test_phone_numbers_are_masked_by_key_and_inside_text():
    event = mask_phones(None, "info", {"event": "dialing +1 415 555 0123 now", "phone": "+14155550123",
                                        "campaign_id": 12, "note": "order 42"})
    assert event["phone"] == "+14*******23"
    assert "555" not in event["event"] and event["event"].startswith("dialing +1")
    assert event["campaign_id"] == 12 and event["note"] == "order 42"


def test_short_values_are_fully_masked():
    assert mask_phone("1234") == "****"
