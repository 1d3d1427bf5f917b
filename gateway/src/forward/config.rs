//! The `[forward]` section of the configuration, and endpoint event-type filters.

use std::time::Duration;

use serde::{Deserialize, Deserializer};
use storehook_schema::EventType;

use super::schedule::{RetryPolicy, Schedule, parse_duration};

/// `[forward]`: the webhook forwarder. Every key has a default.
#[derive(Debug, Clone, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct ForwardSettings {
    /// Retries after the initial attempt.
    pub retries: u32,
    /// The first retry's delay (`10s`); the others grow geometrically.
    #[serde(deserialize_with = "duration")]
    pub first_delay: Duration,
    /// All retries fit in this window (`36h`).
    #[serde(deserialize_with = "duration")]
    pub window: Duration,
    /// One attempt (connect, request, response head and up to 1 KiB of body) must finish within
    /// this time to count as delivered.
    #[serde(deserialize_with = "duration")]
    pub timeout: Duration,
    /// Events taken from `<prefix>.forward` at once (their first attempts run concurrently).
    pub prefetch: u16,
    /// Retries taken from `<prefix>.deliveries` at once.
    pub retry_prefetch: u16,
    /// How long an endpoint read from the registry is used before it is read again.
    #[serde(deserialize_with = "duration")]
    pub endpoint_cache: Duration,
    /// Permit targets on loopback, private, link-local and metadata addresses: local development
    /// and tests only.
    pub allow_private_targets: bool,
    /// Permit `http://` endpoint URLs (otherwise only `https://`).
    pub allow_http: bool,
}

impl Default for ForwardSettings {
    fn default() -> Self {
        let policy = RetryPolicy::default();
        ForwardSettings {
            retries: policy.retries,
            first_delay: policy.first_delay,
            window: policy.window,
            timeout: Duration::from_secs(3),
            prefetch: 512,
            retry_prefetch: 256,
            endpoint_cache: Duration::from_secs(5),
            allow_private_targets: false,
            allow_http: false,
        }
    }
}

/// A duration written as text (`500ms`, `3s`, `1h30m`), for `deserialize_with`.
pub(crate) fn duration<'de, D: Deserializer<'de>>(deserializer: D) -> Result<Duration, D::Error> {
    let text = String::deserialize(deserializer)?;
    parse_duration(&text).map_err(serde::de::Error::custom)
}

impl ForwardSettings {
    pub fn retry_policy(&self) -> RetryPolicy {
        RetryPolicy {
            retries: self.retries,
            first_delay: self.first_delay,
            window: self.window,
        }
    }

    /// The ladder these settings describe.
    pub fn schedule(&self) -> Result<Schedule, super::schedule::ScheduleError> {
        Schedule::new(self.retry_policy())
    }

    /// Every check that needs no network: `Err((key, message))`.
    pub fn validate(&self) -> Result<(), (&'static str, String)> {
        self.schedule()
            .map_err(|e| ("forward.window", format!("unusable retry schedule: {e}")))?;
        if self.timeout.is_zero() {
            return Err(("forward.timeout", "must be longer than 0".to_owned()));
        }
        if self.prefetch == 0 {
            return Err(("forward.prefetch", "must be at least 1".to_owned()));
        }
        if self.retry_prefetch == 0 {
            return Err(("forward.retry_prefetch", "must be at least 1".to_owned()));
        }
        Ok(())
    }
}

/// One endpoint's event-type filter: exact types (`subscription.renewed`), a category
/// (`subscription.*`) or everything (`*`); no patterns at all also means everything.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct TypeFilter {
    patterns: Vec<String>,
}

impl TypeFilter {
    /// Parse a list of patterns; each must match at least one known event type, so a typo is an
    /// error rather than an endpoint that silently receives nothing.
    pub fn parse<S: AsRef<str>>(patterns: &[S]) -> Result<TypeFilter, String> {
        let mut parsed = Vec::with_capacity(patterns.len());
        for pattern in patterns {
            let pattern = pattern.as_ref().trim();
            if !EventType::ALL.iter().any(|t| matches(pattern, t.as_str())) {
                return Err(format!(
                    "{pattern:?} matches no event type (use e.g. \"subscription.renewed\", \"subscription.*\" or \"*\")"
                ));
            }
            parsed.push(pattern.to_owned());
        }
        Ok(TypeFilter { patterns: parsed })
    }

    /// Whether an event of this type goes to the endpoint.
    pub fn accepts(&self, event_type: &str) -> bool {
        self.patterns.is_empty() || self.patterns.iter().any(|p| matches(p, event_type))
    }
}

fn matches(pattern: &str, event_type: &str) -> bool {
    if pattern == "*" {
        return true;
    }
    match pattern.strip_suffix(".*") {
        Some(category) => event_type
            .strip_prefix(category)
            .is_some_and(|rest| rest.starts_with('.') && rest.len() > 1),
        None => pattern == event_type,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn filters_by_exact_type_category_or_everything() {
        let filter = TypeFilter::parse(&["subscription.*", "transaction.refunded"]).expect("valid");
        assert!(filter.accepts("subscription.renewed"));
        assert!(filter.accepts("transaction.refunded"));
        assert!(!filter.accepts("transaction.succeeded"));
        assert!(!filter.accepts("subscriptions.renewed"));
        assert!(
            TypeFilter::parse(&["*"])
                .expect("valid")
                .accepts("test.ping")
        );
        assert!(
            TypeFilter::parse::<&str>(&[])
                .expect("valid")
                .accepts("test.ping")
        );
    }

    #[test]
    fn rejects_patterns_that_match_nothing() {
        assert!(TypeFilter::parse(&["subscripton.*"]).is_err());
        assert!(TypeFilter::parse(&["subscription.renewd"]).is_err());
        assert!(TypeFilter::parse(&["subscription"]).is_err());
    }

    #[test]
    fn default_settings_are_valid() {
        let settings = ForwardSettings::default();
        assert_eq!(settings.validate(), Ok(()));
        assert_eq!(settings.schedule().expect("usable").retries(), 16);
    }
}
