//! Fault knobs of the http app: a delay and an (optionally probabilistic) error status,
//! set per process by flags/env, changed at run time through `/meshsim/fault`, and
//! overridden per request by `?delay=` and `?status=`.

use std::sync::{PoisonError, RwLock};
use std::time::Duration;

use http::StatusCode;

/// "Answer with `status`, in `percent` % of requests."
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct StatusFault {
    pub status: StatusCode,
    pub percent: f64,
}

impl StatusFault {
    /// `503` (always) or `503:10` (10 % of requests). Only final statuses (200-599) make
    /// sense as an injected answer.
    pub fn parse(s: &str) -> Result<StatusFault, String> {
        let (code, percent) = match s.split_once(':') {
            Some((code, percent)) => (code, Some(percent)),
            None => (s, None),
        };
        let status = code
            .trim()
            .parse::<u16>()
            .ok()
            .filter(|c| (200..=599).contains(c))
            .and_then(|c| StatusCode::from_u16(c).ok())
            .ok_or_else(|| format!("invalid fault status {s:?}: expected a code 200-599"))?;
        let percent = match percent {
            None => 100.0,
            Some(p) => p
                .trim()
                .parse::<f64>()
                .ok()
                .filter(|p| (0.0..=100.0).contains(p))
                .ok_or_else(|| {
                    format!("invalid fault status {s:?}: probability must be a percent 0-100")
                })?,
        };
        Ok(StatusFault { status, percent })
    }

    /// Draw once: does this request get the fault status?
    pub fn fires(&self) -> bool {
        // fastrand::f64 is in [0, 1), so 100 % always fires and 0 % never does.
        fastrand::f64() * 100.0 < self.percent
    }
}

/// A Go-style duration: a decimal number and a unit (ns, us, µs, ms, s, m, h), or `0`.
pub fn parse_duration(s: &str) -> Result<Duration, String> {
    let t = s.trim();
    if t == "0" {
        return Ok(Duration::ZERO);
    }
    let split = t
        .find(|c: char| !(c.is_ascii_digit() || c == '.'))
        .ok_or_else(|| format!("invalid duration {s:?}: missing unit, e.g. 50ms or 1s"))?;
    let (number, unit) = t.split_at(split);
    let value: f64 = number
        .parse()
        .map_err(|_| format!("invalid duration {s:?}: bad number"))?;
    let unit_secs = match unit {
        "ns" => 1e-9,
        "us" | "µs" => 1e-6,
        "ms" => 1e-3,
        "s" => 1.0,
        "m" => 60.0,
        "h" => 3600.0,
        _ => return Err(format!("invalid duration {s:?}: unknown unit {unit:?}")),
    };
    Duration::try_from_secs_f64(value * unit_secs)
        .map_err(|_| format!("invalid duration {s:?}: out of range"))
}

/// The faults that apply to one request.
#[derive(Debug, Clone, Copy, Default, PartialEq)]
pub struct Faults {
    pub delay: Option<Duration>,
    pub status: Option<StatusFault>,
}

impl Faults {
    /// The process defaults overridden by the request's `delay` and `status` query
    /// parameters, each knob on its own.
    pub fn for_request(self, query: Option<&str>) -> Result<Faults, String> {
        let mut faults = self;
        for (key, value) in query_pairs(query.unwrap_or("")) {
            match key.as_str() {
                "delay" => faults.delay = Some(parse_duration(&value)?),
                "status" => faults.status = Some(StatusFault::parse(&value)?),
                _ => {}
            }
        }
        Ok(faults)
    }
}

/// The process-wide fault defaults, changeable while the app runs (`POST /meshsim/fault`),
/// so a supervisor can make a running replica fail and recover without restarting it (a
/// restart would also reset its counters and its place in the proxies' pools).
#[derive(Debug)]
pub struct FaultControl {
    /// What the flags/env asked for; `clear` goes back to it.
    initial: Faults,
    current: RwLock<Faults>,
}

impl FaultControl {
    pub fn new(initial: Faults) -> FaultControl {
        FaultControl {
            initial,
            current: RwLock::new(initial),
        }
    }

    /// The defaults every request starts from now.
    pub fn current(&self) -> Faults {
        // Faults is plain Copy data: a panic elsewhere cannot leave it half-written.
        *self.current.read().unwrap_or_else(PoisonError::into_inner)
    }

    /// Replaces the defaults by the flags' ones overridden by `query` (`status=503:50`,
    /// `delay=20ms`), each knob on its own. A bad value changes nothing.
    pub fn set(&self, query: Option<&str>) -> Result<Faults, String> {
        let faults = self.initial.for_request(query)?;
        *self.current.write().unwrap_or_else(PoisonError::into_inner) = faults;
        Ok(faults)
    }

    /// Back to what the flags/env said (usually: no fault).
    pub fn clear(&self) -> Faults {
        *self.current.write().unwrap_or_else(PoisonError::into_inner) = self.initial;
        self.initial
    }
}

/// `a=1&b=2` into decoded pairs (`+` as space, `%XX` escapes), so `status=503%3A10`
/// works as well as `status=503:10`.
pub fn query_pairs(query: &str) -> impl Iterator<Item = (String, String)> + '_ {
    query.split('&').filter(|p| !p.is_empty()).map(|pair| {
        let (k, v) = pair.split_once('=').unwrap_or((pair, ""));
        (percent_decode(k), percent_decode(v))
    })
}

fn percent_decode(s: &str) -> String {
    let bytes = s.as_bytes();
    let mut out = Vec::with_capacity(bytes.len());
    let mut i = 0;
    while i < bytes.len() {
        let hex = |b: u8| (b as char).to_digit(16);
        match bytes[i] {
            b'+' => out.push(b' '),
            b'%' => {
                let digit = |at: usize| bytes.get(at).and_then(|&b| hex(b));
                match (digit(i + 1), digit(i + 2)) {
                    (Some(hi), Some(lo)) => {
                        out.push((hi * 16 + lo) as u8);
                        i += 2;
                    }
                    // Not an escape: keep the '%' as typed.
                    _ => out.push(b'%'),
                }
            }
            b => out.push(b),
        }
        i += 1;
    }
    String::from_utf8_lossy(&out).into_owned()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn durations() {
        assert_eq!(parse_duration("50ms").unwrap(), Duration::from_millis(50));
        assert_eq!(parse_duration("1s").unwrap(), Duration::from_secs(1));
        assert_eq!(parse_duration("1.5s").unwrap(), Duration::from_millis(1500));
        assert_eq!(parse_duration("250us").unwrap(), Duration::from_micros(250));
        assert_eq!(parse_duration("0").unwrap(), Duration::ZERO);
        assert!(parse_duration("50").is_err());
        assert!(parse_duration("ms").is_err());
        assert!(parse_duration("5 parsecs").is_err());
    }

    #[test]
    fn status_specs() {
        let always = StatusFault::parse("503").unwrap();
        assert_eq!(always.status, StatusCode::SERVICE_UNAVAILABLE);
        assert_eq!(always.percent, 100.0);
        assert!(always.fires());
        let sometimes = StatusFault::parse("500:12.5").unwrap();
        assert_eq!(sometimes.percent, 12.5);
        assert!(!StatusFault::parse("503:0").unwrap().fires());
        assert!(StatusFault::parse("99").is_err());
        assert!(StatusFault::parse("503:101").is_err());
        assert!(StatusFault::parse("abc").is_err());
    }

    #[test]
    fn query_overrides_each_knob() {
        let defaults = Faults {
            delay: Some(Duration::from_secs(1)),
            status: None,
        };
        let f = defaults.for_request(Some("status=503%3A10&x=1")).unwrap();
        assert_eq!(f.delay, Some(Duration::from_secs(1)));
        assert_eq!(f.status.unwrap().percent, 10.0);
        let f = defaults.for_request(Some("delay=5ms")).unwrap();
        assert_eq!(f.delay, Some(Duration::from_millis(5)));
        assert!(defaults.for_request(Some("delay=soon")).is_err());
        assert_eq!(defaults.for_request(None).unwrap(), defaults);
    }

    #[test]
    fn control_sets_from_the_flags_and_clears_back_to_them() {
        let flags = Faults {
            delay: Some(Duration::from_millis(5)),
            status: None,
        };
        let control = FaultControl::new(flags);
        let set = control.set(Some("status=503:50")).unwrap();
        assert_eq!(set.delay, flags.delay);
        assert_eq!(set.status.unwrap().percent, 50.0);
        assert_eq!(control.current(), set);
        // A bad value leaves the current defaults alone.
        assert!(control.set(Some("status=7")).is_err());
        assert_eq!(control.current(), set);
        assert_eq!(control.clear(), flags);
        assert_eq!(control.current(), flags);
    }

    #[test]
    fn decoding() {
        assert_eq!(percent_decode("a+b%20c%zz%"), "a b c%zz%");
    }
}
