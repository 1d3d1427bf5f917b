//! Store notifications, made without the code under test.

use aes_gcm::aead::{Aead, KeyInit};
use aes_gcm::{Aes256Gcm, Nonce};
use base64::Engine as _;
use base64::engine::general_purpose::STANDARD;
use serde_json::json;

/// RuStore's documented test key (bytes 0x00..0x1f).
pub const RUSTORE_KEY: [u8; 32] = {
    let mut key = [0u8; 32];
    let mut i = 0;
    while i < 32 {
        key[i] = i as u8;
        i += 1;
    }
    key
};

/// The RuStore app id the test sources expect.
pub const RUSTORE_APP_ID: u64 = 12345;

/// `key` as RuStore Console shows it.
pub fn rustore_key_base64(key: &[u8; 32]) -> String {
    STANDARD.encode(key)
}

/// The HTTP body RuStore POSTs: `{"id", "timestamp", "payload"}` with `payload` =
/// base64(IV || AES-256-GCM(key, IV, plaintext)). A fresh random IV each call, as RuStore would.
pub fn rustore_envelope(key: &[u8; 32], notification_id: &str, plaintext: &str) -> String {
    let cipher = Aes256Gcm::new_from_slice(key).expect("a 32-byte key");
    let iv: [u8; 12] = uuid::Uuid::new_v4().as_bytes()[..12]
        .try_into()
        .expect("12 bytes");
    let sealed = cipher
        .encrypt(Nonce::from_slice(&iv), plaintext.as_bytes())
        .expect("AES-GCM encrypts");
    let mut payload = iv.to_vec();
    payload.extend_from_slice(&sealed);
    json!({
        "id": notification_id,
        "timestamp": "2025-11-18T10:38:58.619Z",
        "payload": STANDARD.encode(payload),
    })
    .to_string()
}

/// A decrypted INVOICE_STATUS payload: a payment whose status became `status` (e.g. `CONFIRMED`
/// → `transaction.succeeded`, `REFUNDED` → `transaction.refunded`).
pub fn rustore_invoice(invoice_id: &str, status: &str, sandbox: bool) -> String {
    let data = json!({
        "product_code": "premium",
        "change_status_time": "2025-11-18T10:38:58.619Z",
        "status_new": status,
        "status_old": "EXECUTED",
        "purchase_token": format!("token-{invoice_id}"),
        "invoice_id": invoice_id,
        "order_id": format!("order-{invoice_id}"),
        "purchase_id": "3aa0c7bd-964e-4562-b218-fe365adb4ae3",
    });
    json!({
        "notification_type": if sandbox { "INVOICE_STATUS_SANDBOX" } else { "INVOICE_STATUS" },
        "app_id": RUSTORE_APP_ID,
        "data": data.to_string(),
    })
    .to_string()
}

/// A decrypted SUBSCRIPTION_EVENT payload (`RENEWED` → `subscription.renewed`).
pub fn rustore_subscription(invoice_id: &str, event_type: &str) -> String {
    let data = json!({
        "product_code": "monthly",
        "event_time": "2025-11-18T10:38:58.619Z",
        "subscription_event_type": event_type,
        "status_new": "ACTIVE",
        "status_old": "ACTIVE",
        "period_new": "MAIN",
        "period_old": "MAIN",
        "autorenewing": true,
        "invoice_id": invoice_id,
        "order_id": format!("order-{invoice_id}"),
        "purchase_id": "5bb0c7bd-964e-4562-b218-fe365adb4ae3",
    });
    json!({
        "notification_type": "SUBSCRIPTION_EVENT",
        "app_id": RUSTORE_APP_ID,
        "data": data.to_string(),
    })
    .to_string()
}

/// The receiver e-mail the test Autodesk sources allow.
pub const AUTODESK_RECEIVER: &str = "paypal@redbike.com.au";

/// A completed `web_accept` IPN as Autodesk relays it (shape of a real 2014 notification), with
/// its own transaction and track ids → one `transaction.succeeded` event.
pub fn autodesk_web_accept(txn_id: &str) -> String {
    format!(
        "transaction_subject=200703030249937&txn_type=web_accept\
         &payment_date=23%3A36%3A36+Jan+11%2C+2014+PST&last_name=Balsom&residence_country=AU\
         &item_name=RDBK_AutoNumber+Pro&payment_gross=5.50&mc_currency=USD\
         &business={receiver}&payment_type=instant&protection_eligibility=Ineligible\
         &payer_status=verified&tax=0.50&payer_email=buyer%40example.com&txn_id={txn_id}\
         &quantity=1&receiver_email={receiver}&first_name=MARK&payer_id=NEH6BJPL9LBYG\
         &receiver_id=GDGRD3PAZBMD8&item_number=appstore.exchange.autodesk.com%3acloudrendering%3aen\
         &handling_amount=0.00&payment_status=Completed&payment_fee=0.43&mc_fee=0.43\
         &shipping=0.00&mc_gross=5.50&custom=200703030249937&charset=windows-1252\
         &notify_version=3.7&ipn_track_id=track-{txn_id}&form_charset=UTF-8",
        receiver = AUTODESK_RECEIVER.replace('@', "%40"),
    )
}
