//! Autodesk App Store IPN: PayPal-style form posts relayed by Autodesk.
//!
//! STUB: the real adapter replaces this file (see `stores/autodesk-ipn.md`).

use crate::{AdapterError, Context, Event, Store, StoreAdapter};

/// An Autodesk source's allow-lists. An empty list allows any value; a non-empty one rejects
/// every notification whose field is not in it.
#[derive(Debug, Clone, Default)]
pub struct Config {
    /// The publisher's PayPal e-mails (`receiver_email` or `business`), compared case-insensitively.
    pub receiver_emails: Vec<String>,
    /// The publisher's PayPal merchant ids (`receiver_id`).
    pub receiver_ids: Vec<String>,
    /// The publisher's apps: `appId` or `item_number` values.
    pub app_ids: Vec<String>,
}

/// The Autodesk IPN adapter.
#[derive(Debug)]
pub struct Autodesk;

/// A decoded IPN that passed the allow-lists.
#[derive(Debug)]
pub struct Verified;

impl StoreAdapter for Autodesk {
    const STORE: Store = Store::Autodesk;
    type Config = Config;
    type Verified = Verified;

    fn verify(_config: &Config, _body: &[u8]) -> Result<Verified, AdapterError> {
        Err(AdapterError::malformed("not implemented"))
    }

    fn normalize(_verified: Verified, _ctx: &Context<'_>) -> Result<Vec<Event>, AdapterError> {
        Err(AdapterError::malformed("not implemented"))
    }
}
