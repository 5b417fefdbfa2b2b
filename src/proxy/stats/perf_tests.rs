//! Rendering cost at a realistic size (50 clusters × 100 stats). Timing depends on the machine
//! and build profile, so it is opt-in: `cargo test --release -- --ignored render_cost`.

use std::time::{Duration, Instant};

use super::{RenderOptions, Store};

fn populated_store() -> Store {
    let store = Store::new();
    for c in 0..50u64 {
        for s in 0..90 {
            store
                .counter(&format!("cluster.service_{c}.upstream_stat_{s}"))
                .add(s);
        }
        for s in 0..5 {
            store
                .gauge(&format!("cluster.service_{c}.gauge_{s}"))
                .set(s);
        }
        for s in 0..5u64 {
            let h = store.histogram(&format!("cluster.service_{c}.upstream_rq_time_{s}"));
            for v in 0..1000u64 {
                h.record(v * (c + s + 1) % 3000);
            }
        }
    }
    store.flush();
    store
}

/// Best of a few runs, so one descheduling does not fail the check.
fn best_of(mut f: impl FnMut() -> usize) -> Duration {
    (0..5)
        .map(|_| {
            let start = Instant::now();
            assert!(f() > 0);
            start.elapsed()
        })
        .min()
        .unwrap_or_default()
}

#[test]
#[ignore]
fn render_cost() {
    let store = populated_store();
    let options = RenderOptions::default();
    let text = best_of(|| store.render_text(&options).len());
    let json = best_of(|| store.render_json(&options).len());
    let prom = best_of(|| store.render_prometheus(&options).len());
    let flush = best_of(|| {
        store.flush();
        1
    });
    println!("text {text:?} json {json:?} prometheus {prom:?} flush {flush:?}");
    let budget = Duration::from_millis(if cfg!(debug_assertions) { 200 } else { 20 });
    for (what, took) in [
        ("text", text),
        ("json", json),
        ("prometheus", prom),
        ("flush", flush),
    ] {
        assert!(took < budget, "{what} took {took:?}");
    }
}
