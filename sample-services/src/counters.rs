//! What the app really received, so the proxy's counts can be reconciled with it:
//! requests in total, by path and by the status answered.

use std::collections::BTreeMap;
use std::sync::Mutex;

use http::StatusCode;
use serde::Serialize;

/// Distinct paths tracked before further new paths share one bucket: a scanner hitting
/// random paths must not grow the map without bound.
const MAX_PATHS: usize = 1024;
const OTHER_PATHS: &str = "(other)";

#[derive(Debug, Default)]
pub struct Counters {
    inner: Mutex<Tallies>,
}

#[derive(Debug, Default, Clone)]
struct Tallies {
    requests_total: u64,
    by_path: BTreeMap<String, u64>,
    by_status: BTreeMap<u16, u64>,
}

/// The `/meshsim/stats` document.
#[derive(Debug, Serialize)]
pub struct Snapshot<'a> {
    pub hostname: &'a str,
    pub service_name: &'a str,
    pub requests_total: u64,
    pub by_path: BTreeMap<String, u64>,
    pub by_status: BTreeMap<String, u64>,
}

impl Counters {
    /// Count one answered request.
    pub fn record(&self, path: &str, status: StatusCode) {
        let mut t = self.lock();
        t.requests_total += 1;
        if let Some(n) = t.by_path.get_mut(path) {
            *n += 1;
        } else {
            let key = if t.by_path.len() < MAX_PATHS {
                path
            } else {
                OTHER_PATHS
            };
            *t.by_path.entry(key.to_owned()).or_default() += 1;
        }
        *t.by_status.entry(status.as_u16()).or_default() += 1;
    }

    pub fn reset(&self) {
        *self.lock() = Tallies::default();
    }

    pub fn snapshot<'a>(&self, hostname: &'a str, service_name: &'a str) -> Snapshot<'a> {
        let t = self.lock().clone();
        Snapshot {
            hostname,
            service_name,
            requests_total: t.requests_total,
            by_path: t.by_path,
            by_status: t
                .by_status
                .into_iter()
                .map(|(code, n)| (code.to_string(), n))
                .collect(),
        }
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, Tallies> {
        // The tallies stay consistent even if a holder panicked: every update is a
        // plain increment.
        self.inner.lock().unwrap_or_else(|e| e.into_inner())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn counts_and_resets() {
        let c = Counters::default();
        c.record("/service/1", StatusCode::OK);
        c.record("/service/1", StatusCode::OK);
        c.record("/x", StatusCode::NOT_FOUND);
        let json = serde_json::to_value(c.snapshot("h", "1")).unwrap();
        assert_eq!(
            json,
            serde_json::json!({"hostname":"h","service_name":"1","requests_total":3,
                "by_path":{"/service/1":2,"/x":1},"by_status":{"200":2,"404":1}})
        );
        c.reset();
        assert_eq!(c.snapshot("h", "1").requests_total, 0);
    }

    #[test]
    fn path_cardinality_is_capped() {
        let c = Counters::default();
        for i in 0..MAX_PATHS + 10 {
            c.record(&format!("/p{i}"), StatusCode::OK);
        }
        let s = c.snapshot("h", "1");
        assert_eq!(s.by_path.len(), MAX_PATHS + 1);
        assert_eq!(s.by_path[OTHER_PATHS], 10);
        assert_eq!(s.requests_total, (MAX_PATHS + 10) as u64);
    }
}
