//! One webhook attempt: a signed `POST`, judged by its status within the timeout.

use std::sync::Arc;
use std::time::{Duration, Instant};

use reqwest::header::{CONTENT_TYPE, HeaderValue, RETRY_AFTER};
use reqwest::redirect::Policy;

use super::attempts::BODY_LIMIT;
use super::endpoints::Target;
use super::signature::signature_header;
use super::ssrf::{GuardedResolver, check_url};

/// The HTTP client every attempt goes through: no redirects, the SSRF-guarded resolver, our
/// `User-Agent`, TLS by rustls.
pub fn client(allow_private: bool, timeout: Duration) -> reqwest::Result<reqwest::Client> {
    reqwest::Client::builder()
        .redirect(Policy::none())
        // A proxy from the environment would connect to the target itself, out of the guard's
        // sight.
        .no_proxy()
        .user_agent(concat!("storehook/", env!("CARGO_PKG_VERSION")))
        .dns_resolver(Arc::new(GuardedResolver { allow_private }))
        .connect_timeout(timeout)
        .tcp_nodelay(true)
        .pool_idle_timeout(Duration::from_secs(30))
        .build()
}

/// How an attempt went.
#[derive(Debug, Clone)]
pub struct AttemptResult {
    pub status: Option<u16>,
    pub error: Option<String>,
    pub latency: Duration,
    pub body: Option<Vec<u8>>,
    /// The endpoint's `Retry-After`, when it sent one we can read.
    pub retry_after: Option<Duration>,
}

impl AttemptResult {
    pub fn delivered(&self) -> bool {
        self.status.is_some_and(|s| (200..300).contains(&s))
    }

    pub fn gone(&self) -> bool {
        self.status == Some(410)
    }

    fn failed(error: String, started: Instant) -> AttemptResult {
        AttemptResult {
            status: None,
            error: Some(error),
            latency: started.elapsed(),
            body: None,
            retry_after: None,
        }
    }
}

/// The parts of a request that do not depend on the endpoint.
#[derive(Debug, Clone, Copy)]
pub struct Message<'a> {
    /// The event id: `webhook-id`.
    pub id: &'a str,
    /// The event JSON, sent as is.
    pub body: &'a [u8],
}

/// Make one attempt. Never panics and never waits longer than `timeout` (plus the resolver's
/// own refusal, which is immediate).
pub async fn attempt(
    client: &reqwest::Client,
    target: &Target,
    message: Message<'_>,
    timeout: Duration,
    allow_http: bool,
    allow_private: bool,
) -> AttemptResult {
    let started = Instant::now();
    if let Err(refused) = check_url(&target.url, allow_http, allow_private) {
        return AttemptResult::failed(refused.to_string(), started);
    }
    let timestamp = chrono::Utc::now().timestamp();
    let signature = signature_header(&target.secrets, message.id, timestamp, message.body);
    let request = client
        .post(target.url.clone())
        .header(CONTENT_TYPE, HeaderValue::from_static("application/json"))
        .header("webhook-id", message.id)
        .header("webhook-timestamp", timestamp.to_string())
        .header("webhook-signature", signature)
        .body(message.body.to_vec())
        .send();
    let exchange = async {
        let mut response = request.await?;
        let status = response.status().as_u16();
        let retry_after = response
            .headers()
            .get(RETRY_AFTER)
            .and_then(|v| v.to_str().ok())
            .and_then(parse_retry_after);
        let mut body = Vec::new();
        while body.len() < BODY_LIMIT {
            match response.chunk().await? {
                Some(chunk) => {
                    let room = BODY_LIMIT - body.len();
                    body.extend_from_slice(&chunk[..chunk.len().min(room)]);
                }
                None => break,
            }
        }
        Ok::<_, reqwest::Error>((status, retry_after, body))
    };
    match tokio::time::timeout(timeout, exchange).await {
        Ok(Ok((status, retry_after, body))) => AttemptResult {
            status: Some(status),
            error: None,
            latency: started.elapsed(),
            body: (!body.is_empty()).then_some(body),
            retry_after,
        },
        Ok(Err(error)) => AttemptResult::failed(describe(&error), started),
        Err(_) => AttemptResult::failed(
            format!("timed out after {} ms", timeout.as_millis()),
            started,
        ),
    }
}

/// The error and its causes on one line (reqwest's own text hides the cause, e.g. a refused
/// target behind "error sending request").
fn describe(error: &reqwest::Error) -> String {
    let mut text = error.to_string();
    let mut source = std::error::Error::source(error);
    while let Some(cause) = source {
        text.push_str(": ");
        text.push_str(&cause.to_string());
        source = cause.source();
    }
    text
}

/// `Retry-After`: seconds, or an HTTP date.
pub fn parse_retry_after(value: &str) -> Option<Duration> {
    let value = value.trim();
    if let Ok(seconds) = value.parse::<u64>() {
        return Some(Duration::from_secs(seconds));
    }
    let at = chrono::DateTime::parse_from_rfc2822(value).ok()?;
    let seconds = at.timestamp() - chrono::Utc::now().timestamp();
    Some(Duration::from_secs(u64::try_from(seconds).unwrap_or(0)))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn reads_retry_after_in_seconds_or_as_a_date() {
        assert_eq!(parse_retry_after("120"), Some(Duration::from_secs(120)));
        assert_eq!(
            parse_retry_after("Wed, 21 Oct 2015 07:28:00 GMT"),
            Some(Duration::ZERO)
        );
        assert_eq!(parse_retry_after("soon"), None);
        let later = (chrono::Utc::now() + chrono::Duration::seconds(600)).to_rfc2822();
        let parsed = parse_retry_after(&later).expect("a date");
        assert!(parsed > Duration::from_secs(590), "{parsed:?}");
    }
}
