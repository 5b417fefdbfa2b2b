//! Stats whose names depend on the response code (`upstream_rq_200`, `upstream_rq_2xx`,
//! `downstream_rq_5xx`). Envoy creates them on first use; so do we, once per name, after which
//! counting is a lock-free `OnceLock::get` plus an atomic add.

use std::sync::OnceLock;

use crate::proxy::stats::{Counter, Store};

/// `<prefix><stem>_<code>` and `<prefix><stem>_<N>xx` counters.
pub struct CodeCounters {
    store: Store,
    /// e.g. `cluster.service1.upstream_rq`
    stem: String,
    codes: Box<[OnceLock<Counter>]>,
    classes: [OnceLock<Counter>; 5],
}

const FIRST_CODE: u16 = 100;
const LAST_CODE: u16 = 599;

impl CodeCounters {
    pub fn new(store: &Store, stem: impl Into<String>) -> Self {
        CodeCounters {
            store: store.clone(),
            stem: stem.into(),
            codes: (FIRST_CODE..=LAST_CODE).map(|_| OnceLock::new()).collect(),
            classes: Default::default(),
        }
    }

    /// Counts one response: the exact code and its class.
    pub fn record(&self, code: u16) {
        if !(FIRST_CODE..=LAST_CODE).contains(&code) {
            return;
        }
        self.codes[usize::from(code - FIRST_CODE)]
            .get_or_init(|| self.store.counter(&format!("{}_{code}", self.stem)))
            .inc();
        self.record_class(code);
    }

    /// Counts only the class (`_2xx`), for scopes where Envoy keeps no per-code counters.
    pub fn record_class(&self, code: u16) {
        let class = usize::from(code / 100);
        if (1..=5).contains(&class) {
            self.classes[class - 1]
                .get_or_init(|| self.store.counter(&format!("{}_{class}xx", self.stem)))
                .inc();
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn creates_code_and_class_counters_on_first_use() {
        let store = Store::new();
        let c = CodeCounters::new(&store, "cluster.a.upstream_rq");
        c.record(200);
        c.record(200);
        c.record(503);
        assert_eq!(store.counter("cluster.a.upstream_rq_200").value(), 2);
        assert_eq!(store.counter("cluster.a.upstream_rq_2xx").value(), 2);
        assert_eq!(store.counter("cluster.a.upstream_rq_503").value(), 1);
        assert_eq!(store.counter("cluster.a.upstream_rq_5xx").value(), 1);
        c.record_class(404);
        assert_eq!(store.counter("cluster.a.upstream_rq_4xx").value(), 1);
    }
}
