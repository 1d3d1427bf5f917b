//! The retry ladder: how long a failed delivery waits before each retry.
//!
//! A pure function of three numbers: `retries` (16), `first_delay` (10 s) and `window` (36 h). The
//! delays grow geometrically from `first_delay` with the one ratio that makes all `retries` of them
//! add up to `window` (≈ 1.779 for the defaults), computed in whole milliseconds, the unit of a
//! RabbitMQ `x-message-ttl`; the last delay absorbs the rounding so that the sum is exact. A test
//! shrinks the same ladder to fractions of a second by passing other numbers.

use std::fmt;
use std::time::Duration;

/// The most retries a ladder may have: each one is a RabbitMQ queue.
pub const MAX_RETRIES: u32 = 64;
/// The longest single delay: RabbitMQ's `x-message-ttl` is an unsigned 32-bit count of ms.
pub const MAX_DELAY_MS: u64 = u32::MAX as u64;

/// The parameters of the ladder, as configured.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct RetryPolicy {
    pub retries: u32,
    pub first_delay: Duration,
    pub window: Duration,
}

impl Default for RetryPolicy {
    /// 16 retries from 10 s within 36 h, as RuStore retries its own notifications.
    fn default() -> Self {
        RetryPolicy {
            retries: 16,
            first_delay: Duration::from_secs(10),
            window: Duration::from_secs(36 * 3600),
        }
    }
}

/// Parameters no ladder can be built from; the message says which and why.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum ScheduleError {
    #[error("retries must be between 1 and {MAX_RETRIES}, not {0}")]
    Retries(u32),
    #[error("the first delay must be at least 1 ms")]
    FirstDelayTooShort,
    #[error(
        "with a single retry the window must equal the first delay ({first_ms} ms), not {window_ms} ms"
    )]
    SingleRetryWindow { first_ms: u64, window_ms: u64 },
    #[error(
        "the window ({window_ms} ms) must be longer than retries × first delay ({floor_ms} ms) for the delays to grow"
    )]
    WindowTooShort { window_ms: u64, floor_ms: u64 },
    #[error("the delays cannot grow strictly at millisecond precision; lengthen the window")]
    NoGrowth,
    #[error("a delay of {0} ms exceeds RabbitMQ's longest message TTL ({MAX_DELAY_MS} ms)")]
    DelayTooLong(u64),
}

/// The computed ladder: `delays[i]` is the wait before retry `i + 1` (attempt `i + 2`).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Schedule {
    delays_ms: Vec<u64>,
}

impl Schedule {
    /// Build the ladder, or say why these parameters cannot make one.
    pub fn new(policy: RetryPolicy) -> Result<Schedule, ScheduleError> {
        let n = policy.retries;
        if n == 0 || n > MAX_RETRIES {
            return Err(ScheduleError::Retries(n));
        }
        let first = u64::try_from(policy.first_delay.as_millis()).unwrap_or(u64::MAX);
        let window = u64::try_from(policy.window.as_millis()).unwrap_or(u64::MAX);
        if first == 0 {
            return Err(ScheduleError::FirstDelayTooShort);
        }
        if n == 1 {
            if window != first {
                return Err(ScheduleError::SingleRetryWindow {
                    first_ms: first,
                    window_ms: window,
                });
            }
            return Self::checked(vec![first]);
        }
        let floor = first.saturating_mul(u64::from(n));
        if window <= floor {
            return Err(ScheduleError::WindowTooShort {
                window_ms: window,
                floor_ms: floor,
            });
        }
        let ratio = growth_ratio(n, first as f64, window as f64);
        let mut delays: Vec<u64> = (0..n - 1)
            .map(|i| (first as f64 * ratio.powi(i as i32)).round() as u64)
            .collect();
        let spent: u64 = delays.iter().sum();
        // The last delay takes the rounding of the others, so the sum is the window exactly.
        delays.push(window.saturating_sub(spent));
        if delays.windows(2).any(|pair| pair[1] <= pair[0]) {
            return Err(ScheduleError::NoGrowth);
        }
        Self::checked(delays)
    }

    fn checked(delays_ms: Vec<u64>) -> Result<Schedule, ScheduleError> {
        if let Some(&too_long) = delays_ms.iter().find(|&&d| d > MAX_DELAY_MS) {
            return Err(ScheduleError::DelayTooLong(too_long));
        }
        Ok(Schedule { delays_ms })
    }

    /// How many retries follow the initial attempt.
    pub fn retries(&self) -> u32 {
        self.delays_ms.len() as u32
    }

    /// The delays, in order.
    pub fn delays(&self) -> impl ExactSizeIterator<Item = Duration> + '_ {
        self.delays_ms.iter().map(|&ms| Duration::from_millis(ms))
    }

    /// The delays in whole milliseconds (RabbitMQ TTLs).
    pub fn delays_ms(&self) -> &[u64] {
        &self.delays_ms
    }

    /// The wait before retry `step` (1-based), if the ladder has that step.
    pub fn delay(&self, step: u32) -> Option<Duration> {
        let index = usize::try_from(step.checked_sub(1)?).ok()?;
        self.delays_ms
            .get(index)
            .map(|&ms| Duration::from_millis(ms))
    }

    /// The sum of every delay: the window.
    pub fn total(&self) -> Duration {
        Duration::from_millis(self.delays_ms.iter().sum())
    }
}

/// The ratio `r >= 1` with `first · (1 + r + … + r^(n-1)) = window`, by bisection (the sum grows
/// monotonically with `r`). Needs `n >= 2` and `window > n · first`.
fn growth_ratio(n: u32, first: f64, window: f64) -> f64 {
    let sum = |r: f64| (0..n).map(|i| first * r.powi(i as i32)).sum::<f64>();
    let (mut low, mut high) = (1.0_f64, 2.0_f64);
    while sum(high) < window {
        high *= 2.0;
    }
    for _ in 0..200 {
        let middle = (low + high) / 2.0;
        if sum(middle) < window {
            low = middle;
        } else {
            high = middle;
        }
    }
    (low + high) / 2.0
}

/// A delay shortened by jitter: `delay × (1 − fraction × unit)`, with `fraction` and `unit` (a
/// uniform random number) clamped to `[0, 1]`. It never lengthens a delay, so a jittered ladder
/// still ends within its window.
pub fn jittered(delay: Duration, fraction: f64, unit: f64) -> Duration {
    let clamp = |x: f64| if x.is_nan() { 0.0 } else { x.clamp(0.0, 1.0) };
    delay.mul_f64(1.0 - clamp(fraction) * clamp(unit))
}

/// A duration as written in the configuration and on the command line: one or more
/// `<number><unit>` parts, units `ms`, `s`, `m`, `h`, `d`, e.g. `10s`, `36h`, `1h30m`, `0.5s`.
pub fn parse_duration(text: &str) -> Result<Duration, String> {
    let text = text.trim();
    if text.is_empty() {
        return Err("empty duration".to_owned());
    }
    let mut total = Duration::ZERO;
    let mut rest = text;
    while !rest.is_empty() {
        let number_len = rest
            .find(|c: char| !(c.is_ascii_digit() || c == '.'))
            .unwrap_or(rest.len());
        let (number, after) = rest.split_at(number_len);
        let unit_len = after
            .find(|c: char| c.is_ascii_digit() || c == '.')
            .unwrap_or(after.len());
        let (unit, after) = after.split_at(unit_len);
        let value: f64 = number
            .parse()
            .map_err(|_| format!("{text:?}: expected a number before a unit"))?;
        let seconds = match unit.trim() {
            "ms" => value / 1000.0,
            "s" => value,
            "m" | "min" => value * 60.0,
            "h" => value * 3600.0,
            "d" => value * 86_400.0,
            "" => return Err(format!("{text:?}: a unit is required (ms, s, m, h, d)")),
            other => return Err(format!("{text:?}: unknown unit {other:?} (ms, s, m, h, d)")),
        };
        let part =
            Duration::try_from_secs_f64(seconds).map_err(|_| format!("{text:?}: out of range"))?;
        total = total
            .checked_add(part)
            .ok_or_else(|| format!("{text:?}: out of range"))?;
        rest = after;
    }
    Ok(total)
}

/// A duration for people: `250ms`, `17.8s`, `9m 22.5s`, `15h 47m 3.2s`.
pub fn human(duration: Duration) -> String {
    let ms = duration.as_millis();
    if ms < 1000 {
        return format!("{ms}ms");
    }
    let hours = ms / 3_600_000;
    let minutes = ms % 3_600_000 / 60_000;
    let seconds = (ms % 60_000) as f64 / 1000.0;
    let seconds = format!("{seconds:.3}");
    let seconds = seconds.trim_end_matches('0').trim_end_matches('.');
    match (hours, minutes) {
        (0, 0) => format!("{seconds}s"),
        (0, m) => format!("{m}m {seconds}s"),
        (h, m) => format!("{h}h {m}m {seconds}s"),
    }
}

impl fmt::Display for Schedule {
    /// One line per step: step, delay, cumulative.
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        writeln!(f, "{:>4}  {:>16}  {:>16}", "step", "delay", "cumulative")?;
        let mut cumulative = Duration::ZERO;
        for (i, delay) in self.delays().enumerate() {
            cumulative += delay;
            writeln!(
                f,
                "{:>4}  {:>16}  {:>16}",
                i + 1,
                human(delay),
                human(cumulative)
            )?;
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn policy(retries: u32, first: Duration, window: Duration) -> RetryPolicy {
        RetryPolicy {
            retries,
            first_delay: first,
            window,
        }
    }

    #[test]
    fn default_ladder_has_sixteen_growing_delays_summing_to_36_hours() {
        let schedule = Schedule::new(RetryPolicy::default()).expect("the default is usable");
        assert_eq!(schedule.retries(), 16);
        assert_eq!(schedule.total(), Duration::from_secs(36 * 3600));
        let delays = schedule.delays_ms();
        assert_eq!(delays[0], 10_000);
        assert!(delays.windows(2).all(|p| p[1] > p[0]), "{delays:?}");
        let ratio = delays[1] as f64 / delays[0] as f64;
        assert!((ratio - 1.779).abs() < 0.001, "ratio {ratio}");
    }

    #[test]
    fn default_ladder_matches_the_design_table() {
        // DESIGN.md: 10 s, 18 s, 32 s, 56 s, 1.7 m, 3.0 m, 5.3 m, 9.4 m, 17 m, 30 m, 53 m, 1.6 h,
        // 2.8 h, 5.0 h, 8.9 h, 15.8 h.
        let expected_s = [
            10.0, 18.0, 32.0, 56.0, 102.0, 180.0, 318.0, 564.0, 1020.0, 1800.0, 3180.0, 5760.0,
            10080.0, 18000.0, 32040.0, 56880.0,
        ];
        let schedule = Schedule::new(RetryPolicy::default()).expect("usable");
        for (delay, expected) in schedule.delays().zip(expected_s) {
            let relative = (delay.as_secs_f64() - expected).abs() / expected;
            assert!(relative < 0.04, "{delay:?} vs {expected} s");
        }
    }

    #[test]
    fn shrunk_ladder_keeps_its_shape() {
        let schedule = Schedule::new(policy(
            16,
            Duration::from_millis(20),
            Duration::from_millis(3000),
        ))
        .expect("usable");
        assert_eq!(schedule.total(), Duration::from_millis(3000));
        assert_eq!(schedule.delay(1), Some(Duration::from_millis(20)));
        assert_eq!(schedule.delay(0), None);
        assert_eq!(schedule.delay(17), None);
        assert!(schedule.delays_ms().windows(2).all(|p| p[1] > p[0]));
    }

    #[test]
    fn ladder_is_a_pure_function() {
        let p = policy(7, Duration::from_secs(3), Duration::from_secs(600));
        assert_eq!(Schedule::new(p), Schedule::new(p));
    }

    #[test]
    fn rejects_unusable_parameters() {
        let s = Duration::from_secs;
        assert_eq!(
            Schedule::new(policy(0, s(10), s(100))),
            Err(ScheduleError::Retries(0))
        );
        assert_eq!(
            Schedule::new(policy(65, s(10), s(100_000))),
            Err(ScheduleError::Retries(65))
        );
        assert_eq!(
            Schedule::new(policy(3, Duration::ZERO, s(100))),
            Err(ScheduleError::FirstDelayTooShort)
        );
        assert!(matches!(
            Schedule::new(policy(16, s(10), s(160))),
            Err(ScheduleError::WindowTooShort { .. })
        ));
        assert!(matches!(
            Schedule::new(policy(1, s(10), s(20))),
            Err(ScheduleError::SingleRetryWindow { .. })
        ));
        assert_eq!(
            Schedule::new(policy(
                16,
                Duration::from_millis(1),
                Duration::from_millis(17)
            )),
            Err(ScheduleError::NoGrowth)
        );
        assert!(matches!(
            Schedule::new(policy(2, s(10), s(100 * 86_400))),
            Err(ScheduleError::DelayTooLong(_))
        ));
    }

    #[test]
    fn a_single_retry_waits_the_whole_window() {
        let schedule = Schedule::new(policy(1, Duration::from_secs(5), Duration::from_secs(5)))
            .expect("usable");
        assert_eq!(schedule.delays_ms(), &[5000]);
    }

    #[test]
    fn jitter_only_shortens() {
        let delay = Duration::from_secs(100);
        for unit in [0.0, 0.3, 0.999, 1.0, 7.0, -3.0, f64::NAN] {
            for fraction in [0.0, 0.1, 0.5, 1.0, 2.0, -1.0, f64::NAN] {
                let jittered = jittered(delay, fraction, unit);
                assert!(jittered <= delay, "{fraction} {unit}: {jittered:?}");
            }
        }
        assert_eq!(jittered(delay, 0.1, 0.5), Duration::from_secs(95));
    }

    #[test]
    fn parses_durations() {
        assert_eq!(parse_duration("10s"), Ok(Duration::from_secs(10)));
        assert_eq!(parse_duration("36h"), Ok(Duration::from_secs(129_600)));
        assert_eq!(parse_duration("1h30m"), Ok(Duration::from_secs(5400)));
        assert_eq!(parse_duration("250ms"), Ok(Duration::from_millis(250)));
        assert_eq!(parse_duration("0.5s"), Ok(Duration::from_millis(500)));
        assert_eq!(parse_duration("2d"), Ok(Duration::from_secs(172_800)));
        assert!(parse_duration("10").is_err());
        assert!(parse_duration("").is_err());
        assert!(parse_duration("5 parsecs").is_err());
        assert!(parse_duration("s").is_err());
    }

    #[test]
    fn prints_durations_for_people() {
        assert_eq!(human(Duration::from_millis(250)), "250ms");
        assert_eq!(human(Duration::from_secs(10)), "10s");
        assert_eq!(human(Duration::from_millis(17_790)), "17.79s");
        assert_eq!(human(Duration::from_secs(5400)), "1h 30m 0s");
        assert_eq!(human(Duration::from_secs(562)), "9m 22s");
    }
}
