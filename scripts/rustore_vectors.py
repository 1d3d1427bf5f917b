#!/usr/bin/env python3
"""Generate the RuStore golden cases under adapters/testdata/rustore/.

Each case gets `body` (the exact request body) and `case.json` (description, provenance, tenant,
source, received_at and the source config). `expected.json` is never written here: it comes from
`BLESS=1 cargo test -p storehook-adapters --test adapters golden` and is then reviewed by eye.

Encryption uses Python's `cryptography` package (AES-256-GCM, 12-byte IV, 16-byte tag appended to
the ciphertext, no associated data), so the fixtures do not depend on the Rust code they test.
Everything is deterministic: keys are fixed and each case's IV is derived from its name, so rerunning
the script rewrites identical bytes.

Usage: python3 scripts/rustore_vectors.py
"""

import base64
import hashlib
import json
from pathlib import Path

from cryptography.hazmat.primitives.ciphers.aead import AESGCM

ROOT = Path(__file__).resolve().parent.parent / "adapters" / "testdata" / "rustore"

# The key of the documented test vector in stores/rustore.md: bytes 0x00..0x1f.
KEY = bytes(range(32))
# A second key: the "current" key after a rotation, and the wrong key in negative cases.
OTHER_KEY = hashlib.sha256(b"storehook rustore other key").digest()
# A key as one codebase used it: 32 raw characters instead of base64.
RAW_KEY_TEXT = "storehook-rustore-raw-key-32-chr"
assert len(RAW_KEY_TEXT.encode()) == 32

APP_ID = 12345
RECEIVED_AT = "2026-01-02T03:04:05Z"


def b64(raw: bytes) -> str:
    return base64.b64encode(raw).decode("ascii")


def compact(value) -> str:
    # RuStore's own JSON is compact and not ASCII-escaped (Jackson defaults).
    return json.dumps(value, separators=(",", ":"), ensure_ascii=False)


def iv_for(case: str) -> bytes:
    return hashlib.sha256(b"storehook rustore iv " + case.encode()).digest()[:12]


def seal(key: bytes, iv: bytes, plaintext: bytes) -> bytes:
    """IV || ciphertext || tag, the layout RuStore sends."""
    sealed = iv + AESGCM(key).encrypt(iv, plaintext, None)
    assert AESGCM(key).decrypt(sealed[:12], sealed[12:], None) == plaintext
    return sealed


def config(key: str = b64(KEY), previous_key=None, app_id=str(APP_ID)) -> dict:
    return {"key": key, "previous_key": previous_key, "app_id": app_id}


CASES = {}


def case(name, description, provenance, body: bytes, cfg=None):
    assert name not in CASES, name
    CASES[name] = (description, provenance, body, cfg or config())


def envelope(notification_id, timestamp, payload_b64) -> bytes:
    return compact({"id": notification_id, "timestamp": timestamp, "payload": payload_b64}).encode()


def notification(
    name,
    description,
    notification_id,
    notification_type,
    data,
    *,
    data_as_string=True,
    timestamp="2025-11-18T10:38:59.001Z",
    key=KEY,
    cfg=None,
    app_id=APP_ID,
    extra_provenance="",
):
    """A well-formed notification: payload JSON, sealed under `key`, in an envelope."""
    payload = {"notification_type": notification_type}
    if app_id is not None:
        payload["app_id"] = app_id
    if data is not None:
        payload["data"] = compact(data) if data_as_string else data
    plaintext = compact(payload).encode()
    sealed = seal(key, iv_for(name), plaintext)
    body = envelope(notification_id, timestamp, b64(sealed))
    provenance = (
        "scripts/rustore_vectors.py: payload "
        + compact(payload)
        + " sealed with Python cryptography AESGCM (IV derived from the case name)"
        + extra_provenance
    )
    case(name, description, provenance, body, cfg)


def payment_data(status, **overrides):
    data = {
        "product_code": "premium_month",
        "change_status_time": "2025-11-18T10:38:58.619Z",
        "status_new": status,
        "status_old": "CREATED",
        "purchase_token": "111.456",
        "invoice_id": "987654",
        "order_id": "6f1b2c3d-0000-4000-8000-000000000001",
        "purchase_id": "3aa0c7bd-964e-4562-b218-fe365adb4ae3",
    }
    data.update(overrides)
    return data


def subscription_data(event_type, status_new, period_new, **overrides):
    data = {
        "product_code": "premium_sub",
        "event_time": "2025-12-01T08:00:00.123Z",
        "subscription_event_type": event_type,
        "status_new": status_new,
        "status_old": "ACTIVE",
        "period_new": period_new,
        "period_old": "MAIN",
        "autorenewing": True,
        "invoice_id": "555001",
        "order_id": "sub-order-1",
        "purchase_id": "7c1e9a52-1b2c-4d3e-8f40-5a6b7c8d9e0f",
    }
    data.update(overrides)
    return data


# --- the documented test vector, verbatim ------------------------------------------------------

DOC_PLAINTEXT = (
    '{"notification_type":"INVOICE_STATUS_SANDBOX","app_id":12345,"data":"{\\"product_code\\":'
    '\\"test_test\\",\\"change_status_time\\":\\"2025-11-18T10:38:58.619Z\\",\\"status_new\\":'
    '\\"CONFIRMED\\",\\"status_old\\":\\"EXECUTED\\",\\"purchase_token\\":\\"111.123\\",'
    '\\"invoice_id\\":\\"123\\",\\"order_id\\":\\"123e4567-e89b-12d3-a456-426655440000\\",'
    '\\"purchase_id\\":\\"3aa0c7bd-964e-4562-b218-fe365adb4ae3\\"}"}'
)
DOC_ENVELOPE = (
    '{"id":"12345","timestamp":"2025-11-18T10:38:58.619Z","payload":"AAECAwQFBgcICQoLPCC4dLGMpHLu'
    "IOPi3ocnGfqm4hbKWRYybiisxlg2U+ZARPuv8JJT1jDmMLWqqwpZnik/5D70mesNpB4sNMGRj4Rd5EDxqnpDbCbFCprs"
    "erdb5a0HKkFpNN+J+78Mr83ouIwFxIgd6nn2fVDVLSpSC9sTF9i8sUz3KKN1997EXD6JZy33hfr6a1zQeJsO4nb3DtrV"
    "BAxLz2igA8oEjrOdm+DI8HCeo+5E+0GetZHGz+nQi45+qYcvnharobMEtuicfyjW2DeB9IxvE5Cz7gSd2MNSpFRNdciS"
    "GfDpoh484JEmTYiN3HwhFGN2ljmHIiBzhM+bHPNG5sx0Djga78Bgu0jzw6KuhmoSK/0dddNISFWz0JbvutejnkMcCGU/"
    "wo1mZDvnKpf0/HOhEVtuP6ON56r8bWt8oPsnqAEtSrURGcu54A1J4wELjPyJH3x/6UFAoHu2tP8j52xkmk5S6Jx8ym8d"
    '1Lu3ZUrmRsqXFaLUBkqwnHpKstN94+Ihqy4k/AqIuDHjDFc+qfTr"}'
)
_doc_sealed = base64.b64decode(json.loads(DOC_ENVELOPE)["payload"])
assert _doc_sealed[:12] == bytes.fromhex("000102030405060708090a0b")
assert AESGCM(KEY).decrypt(_doc_sealed[:12], _doc_sealed[12:], None).decode() == DOC_PLAINTEXT
case(
    "documented_vector",
    "The test vector of stores/rustore.md: a sandbox CONFIRMED payment, data as a JSON string.",
    "Verbatim envelope from stores/rustore.md (key 0x00..0x1f, IV 0x00..0x0b); this script checks "
    "that Python cryptography decrypts it to the documented plaintext.",
    DOC_ENVELOPE.encode(),
)

# --- payments -----------------------------------------------------------------------------------

PAYMENT_STATUSES = [
    # (status as sent, what it is)
    ("CREATED", "invoice created"),
    ("INVOICE_CREATED", "Pay SDK synonym of CREATED"),
    ("EXECUTED", "payment in progress"),
    ("EXECUTING", "Pay SDK synonym of EXECUTED"),
    ("PROCESSING", "Pay SDK synonym of EXECUTED"),
    ("PAID", "two-stage payment: money on hold"),
    ("CONFIRMED", "final success"),
    ("REJECTED", "declined"),
    ("CANCELLED", "buyer cancelled before paying"),
    ("EXPIRED", "payment time ran out"),
    ("REVERSED", "hold released"),
    ("REFUNDED", "refunded"),
    ("REFUNDING", "Pay SDK: refund in progress"),
]
for n, (status, what) in enumerate(PAYMENT_STATUSES):
    notification(
        f"payment_{status.lower()}",
        f"INVOICE_STATUS with status_new {status} ({what}), production.",
        f"2000{n:02d}",
        "INVOICE_STATUS",
        payment_data(status),
    )

# Older documentation spells the statuses in lower case.
for n, status in enumerate(
    ["created", "executed", "paid", "confirmed", "rejected", "cancelled", "expired", "reversed", "refunded"]
):
    notification(
        f"payment_{status}_lowercase",
        f"INVOICE_STATUS with lower-case status_new {status!r} (older documentation spelling).",
        f"2100{n:02d}",
        "INVOICE_STATUS",
        payment_data(status, status_old="created"),
    )

notification(
    "payment_mixed_case_synonym",
    "INVOICE_STATUS with status_new 'Refunding' in mixed case: a synonym compared case-insensitively.",
    "220001",
    "INVOICE_STATUS",
    payment_data("Refunding"),
)
notification(
    "payment_sandbox",
    "INVOICE_STATUS_SANDBOX with status PAID: the _SANDBOX suffix means environment sandbox.",
    "220002",
    "INVOICE_STATUS_SANDBOX",
    payment_data("PAID"),
)
notification(
    "payment_unknown_status",
    "INVOICE_STATUS with a status storehook does not know: authentic, so store.unrecognized.",
    "220003",
    "INVOICE_STATUS",
    payment_data("ON_HOLD_FOREVER"),
)
notification(
    "payment_data_as_object",
    "INVOICE_STATUS whose data is a JSON object instead of a string holding JSON.",
    "220004",
    "INVOICE_STATUS",
    payment_data("CONFIRMED"),
    data_as_string=False,
)
notification(
    "payment_extra_fields",
    "INVOICE_STATUS with developer_payload, numeric invoice_id and fields storehook does not know: "
    "all kept in store_data.raw.",
    "220005",
    "INVOICE_STATUS",
    payment_data(
        "CONFIRMED",
        invoice_id=987655,
        developer_payload="{\"user\":\"u-42\",\"note\":\"кириллица\"}",
        amount_hint={"value": 19900, "currency": "RUB"},
        new_field_2027=[1, 2, 3],
    ),
)
notification(
    "timestamps_seven_digits_moscow_offset",
    "change_status_time and envelope timestamp with 7 fractional digits and +03:00: "
    "occurred_at is the change time converted to UTC.",
    "220006",
    "INVOICE_STATUS",
    payment_data("CONFIRMED", change_status_time="2025-11-18T13:38:58.6191234+03:00"),
    timestamp="2025-11-18T13:38:59.0000001+03:00",
)
notification(
    "timestamp_falls_back_to_envelope",
    "No change_status_time: occurred_at is the envelope timestamp (+03:00, 7 digits) in UTC.",
    "220007",
    "INVOICE_STATUS",
    {k: v for k, v in payment_data("CONFIRMED").items() if k != "change_status_time"},
    timestamp="2025-11-18T13:38:59.1234567+03:00",
)
notification(
    "timestamp_falls_back_to_received_at",
    "Unparseable change_status_time and envelope timestamp: occurred_at is received_at.",
    "220008",
    "INVOICE_STATUS",
    payment_data("CONFIRMED", change_status_time="yesterday"),
    timestamp="not a time",
)
notification(
    "app_id_as_string",
    "app_id sent as a string instead of a number: still matches the configured app id.",
    "220009",
    "INVOICE_STATUS",
    payment_data("CONFIRMED"),
    app_id=str(APP_ID),
)
notification(
    "app_id_not_configured",
    "The source sets no app_id: a notification for any app is accepted.",
    "220010",
    "INVOICE_STATUS",
    payment_data("CONFIRMED"),
    app_id=777,
    cfg=config(app_id=None),
)
notification(
    "key_raw_32_chars",
    "The source key is 32 raw characters rather than base64 (seen in one public codebase).",
    "220011",
    "INVOICE_STATUS",
    payment_data("CONFIRMED"),
    key=RAW_KEY_TEXT.encode(),
    cfg=config(key=RAW_KEY_TEXT),
    extra_provenance="; key = the 32 raw characters of config.key",
)
notification(
    "previous_key_accepted",
    "Sealed with the key before a rotation: the current key fails, the previous key opens it.",
    "220012",
    "INVOICE_STATUS",
    payment_data("CONFIRMED"),
    key=KEY,
    cfg=config(key=b64(OTHER_KEY), previous_key=b64(KEY)),
)

# --- subscriptions ------------------------------------------------------------------------------

SUBSCRIPTION_CASES = [
    ("subscription_activated_trial", "ACTIVATED in TRIAL: trial started.", ("ACTIVATED", "ACTIVE", "TRIAL"), {}),
    ("subscription_activated_main", "ACTIVATED in MAIN: paid subscription started.", ("ACTIVATED", "ACTIVE", "MAIN"), {}),
    ("subscription_activated_promo", "ACTIVATED in PROMO: started at an intro price.", ("ACTIVATED", "ACTIVE", "PROMO"), {}),
    ("subscription_renewed", "RENEWED in MAIN.", ("RENEWED", "ACTIVE", "MAIN"), {}),
    (
        "subscription_cancelled",
        "CANCELLED: auto-renew turned off, access until the period ends.",
        ("CANCELLED", "ACTIVE", "MAIN"),
        {"autorenewing": False},
    ),
    (
        "subscription_payment_failed_grace",
        "PAYMENT_FAILED in GRACE: billing issue, access kept (entitlement none).",
        ("PAYMENT_FAILED", "ACTIVE", "GRACE"),
        {},
    ),
    (
        "subscription_payment_failed_hold",
        "PAYMENT_FAILED in HOLD, status PAUSED: billing issue, access suspended (revoke).",
        ("PAYMENT_FAILED", "PAUSED", "HOLD"),
        {},
    ),
    ("subscription_resumed", "RESUMED after HOLD, back in MAIN.", ("RESUMED", "ACTIVE", "MAIN"), {"status_old": "PAUSED", "period_old": "HOLD"}),
    ("subscription_closed", "CLOSED: access ended.", ("CLOSED", "CLOSED", "MAIN"), {"autorenewing": False}),
    (
        "subscription_status_terminated",
        "PAYMENT_FAILED whose status_new is TERMINATED: the subscription ended, so expired (revoke).",
        ("PAYMENT_FAILED", "TERMINATED", "HOLD"),
        {"autorenewing": False},
    ),
    (
        "subscription_status_closed",
        "CANCELLED whose status_new is CLOSED: ended, so expired rather than renewal_disabled.",
        ("CANCELLED", "CLOSED", "MAIN"),
        {"autorenewing": False},
    ),
    (
        "subscription_lowercase",
        "renewed / active / main in lower case: compared case-insensitively.",
        ("renewed", "active", "main"),
        {},
    ),
    (
        "subscription_unknown_event_type",
        "A subscription_event_type storehook does not know: store.unrecognized with the subscription.",
        ("UPGRADED", "ACTIVE", "MAIN"),
        {},
    ),
]
for n, (name, description, (event_type, status_new, period_new), overrides) in enumerate(SUBSCRIPTION_CASES):
    notification(
        name,
        "SUBSCRIPTION_EVENT " + description,
        f"3000{n:02d}",
        "SUBSCRIPTION_EVENT",
        subscription_data(event_type, status_new, period_new, **overrides),
    )
notification(
    "subscription_sandbox",
    "SUBSCRIPTION_EVENT_SANDBOX RENEWED: environment sandbox; event_time with +03:00.",
    "310001",
    "SUBSCRIPTION_EVENT_SANDBOX",
    subscription_data("RENEWED", "ACTIVE", "MAIN", event_time="2025-12-01T11:00:00.1234567+03:00"),
)

# --- test events and unknown kinds --------------------------------------------------------------

notification("test_event", "TEST_EVENT from the Console: test.ping, production.", "400001", "TEST_EVENT", {})
notification(
    "test_event_sandbox", "TEST_EVENT_SANDBOX: test.ping, sandbox.", "400002", "TEST_EVENT_SANDBOX", {}
)
notification(
    "unknown_notification_type",
    "A notification_type storehook does not know: accepted as store.unrecognized with the raw payload.",
    "400003",
    "REFUND_REQUESTED",
    {"invoice_id": "987654", "reason": "customer request"},
)
notification(
    "unknown_notification_type_sandbox",
    "An unknown notification_type with _SANDBOX and no data: store.unrecognized in sandbox.",
    "400004",
    "SOMETHING_NEW_SANDBOX",
    None,
)
# data that is a string but not JSON, for a kind we do not read: kept as the string.
_payload = compact({"notification_type": "SOMETHING_NEW", "app_id": APP_ID, "data": "plain text"}).encode()
case(
    "unknown_notification_type_plain_data",
    "An unknown notification_type whose data is plain text: store.unrecognized, data kept as sent.",
    "scripts/rustore_vectors.py: payload " + _payload.decode() + " sealed with Python cryptography AESGCM",
    envelope("400005", "2025-11-18T10:38:59.001Z", b64(seal(KEY, iv_for("unknown_plain"), _payload))),
)

# --- rejections ---------------------------------------------------------------------------------

_good_plain = compact(
    {"notification_type": "INVOICE_STATUS", "app_id": APP_ID, "data": compact(payment_data("CONFIRMED"))}
).encode()
_good = seal(KEY, iv_for("reject"), _good_plain)


def flip(raw: bytes, index: int) -> bytes:
    out = bytearray(raw)
    out[index] ^= 0x01
    return bytes(out)


for name, what, sealed in [
    ("reject_tampered_ciphertext", "one bit flipped in the ciphertext", flip(_good, 20)),
    ("reject_tampered_tag", "one bit flipped in the GCM tag", flip(_good, len(_good) - 1)),
    ("reject_tampered_iv", "one bit flipped in the IV", flip(_good, 0)),
]:
    case(
        name,
        f"A valid INVOICE_STATUS payload with {what}: unauthenticated.",
        "scripts/rustore_vectors.py: sealed with Python cryptography AESGCM, then " + what,
        envelope("500001", "2025-11-18T10:38:59.001Z", b64(sealed)),
    )
case(
    "reject_wrong_key",
    "A valid payload sealed with a key that is neither the source's current nor previous key.",
    "scripts/rustore_vectors.py: sealed with Python cryptography AESGCM under another key",
    envelope("500002", "2025-11-18T10:38:59.001Z", b64(seal(OTHER_KEY, iv_for("wrong"), _good_plain))),
)
case(
    "reject_wrong_key_with_previous",
    "A payload sealed with a third key while both a current and a previous key are set.",
    "scripts/rustore_vectors.py: sealed with Python cryptography AESGCM under a key the source lacks",
    envelope(
        "500003",
        "2025-11-18T10:38:59.001Z",
        b64(seal(hashlib.sha256(b"third").digest(), iv_for("third"), _good_plain)),
    ),
    config(key=b64(OTHER_KEY), previous_key=b64(KEY)),
)
case(
    "reject_app_id_mismatch",
    "Authentic payload for app 99999 on a source configured for app 12345: unauthenticated.",
    "scripts/rustore_vectors.py: payload with app_id 99999 sealed with Python cryptography AESGCM",
    envelope(
        "500004",
        "2025-11-18T10:38:59.001Z",
        b64(
            seal(
                KEY,
                iv_for("app"),
                compact(
                    {"notification_type": "INVOICE_STATUS", "app_id": 99999, "data": compact(payment_data("CONFIRMED"))}
                ).encode(),
            )
        ),
    ),
)
case(
    "reject_not_json",
    "The body is not JSON at all.",
    "hand-written",
    b"id=12345&payload=AAEC",
)
case(
    "reject_envelope_not_object",
    "The body is JSON but an array, not the envelope object.",
    "hand-written",
    b'["12345","2025-11-18T10:38:58.619Z"]',
)
case(
    "reject_missing_payload",
    "The envelope has no payload.",
    "hand-written",
    b'{"id":"500005","timestamp":"2025-11-18T10:38:58.619Z"}',
)
case(
    "reject_missing_id",
    "The envelope has no id (the notification id every resend shares).",
    "scripts/rustore_vectors.py: a valid sealed payload in an envelope without id",
    compact({"timestamp": "2025-11-18T10:38:58.619Z", "payload": b64(_good)}).encode(),
)
case(
    "reject_bad_base64",
    "The payload is not base64.",
    "hand-written",
    b'{"id":"500006","timestamp":"2025-11-18T10:38:58.619Z","payload":"not*base64!"}',
)
case(
    "reject_payload_too_short",
    "The payload decodes to 27 bytes: shorter than a 12-byte IV plus a 16-byte tag.",
    "scripts/rustore_vectors.py: base64 of 27 zero bytes",
    envelope("500007", "2025-11-18T10:38:58.619Z", b64(bytes(27))),
)
case(
    "reject_decrypted_not_json",
    "The payload decrypts, but the plaintext is not JSON.",
    "scripts/rustore_vectors.py: plaintext 'hello, not json' sealed with Python cryptography AESGCM",
    envelope("500008", "2025-11-18T10:38:58.619Z", b64(seal(KEY, iv_for("notjson"), b"hello, not json"))),
)
_bad_data = compact({"notification_type": "INVOICE_STATUS", "app_id": APP_ID, "data": "{\"status_new\":"}).encode()
case(
    "reject_data_not_json",
    "INVOICE_STATUS whose data string is truncated JSON: authentic but malformed.",
    "scripts/rustore_vectors.py: payload " + _bad_data.decode() + " sealed with Python cryptography AESGCM",
    envelope("500009", "2025-11-18T10:38:58.619Z", b64(seal(KEY, iv_for("baddata"), _bad_data))),
)


def write(path: Path, content: bytes):
    if not path.exists() or path.read_bytes() != content:
        path.write_bytes(content)


def main():
    ROOT.mkdir(parents=True, exist_ok=True)
    for name, (description, provenance, body, cfg) in sorted(CASES.items()):
        folder = ROOT / name
        folder.mkdir(exist_ok=True)
        write(folder / "body", body)
        case_json = {
            "description": description,
            "provenance": provenance,
            "tenant": "acme",
            "source": "src_rustore_1",
            "received_at": RECEIVED_AT,
            "config": cfg,
        }
        write(folder / "case.json", (json.dumps(case_json, indent=2, ensure_ascii=False) + "\n").encode())
    print(f"{len(CASES)} cases in {ROOT}")


if __name__ == "__main__":
    main()
