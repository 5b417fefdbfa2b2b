//! What changed between two listings of a run's units, as the event lines the UI shows.

use std::collections::BTreeMap;

use crate::runtime::UnitStatus;

/// The last listing, by unit name: (id, state).
#[derive(Debug, Default)]
pub struct UnitWatch {
    last: Option<BTreeMap<String, (String, String)>>,
}

impl UnitWatch {
    /// Remembers `units` and says what changed since the last call. The first call only
    /// primes (what runs at start is in the ready table already).
    pub fn update(&mut self, units: &[UnitStatus]) -> Diff {
        let now: BTreeMap<String, (String, String)> = units
            .iter()
            .map(|u| (u.unit.clone(), (u.id.clone(), u.state.clone())))
            .collect();
        let diff = match &self.last {
            None => Diff {
                events: Vec::new(),
                membership_changed: true,
            },
            Some(last) => diff(last, &now),
        };
        self.last = Some(now);
        diff
    }
}

/// The changes between two listings.
#[derive(Debug, PartialEq, Eq)]
pub struct Diff {
    /// One line per change, in unit order.
    pub events: Vec<String>,
    /// A unit came, went or was replaced (the scrape targets may have changed).
    pub membership_changed: bool,
}

fn diff(
    last: &BTreeMap<String, (String, String)>,
    now: &BTreeMap<String, (String, String)>,
) -> Diff {
    let mut events = Vec::new();
    let mut membership_changed = false;
    for (unit, (id, state)) in now {
        match last.get(unit) {
            None => {
                membership_changed = true;
                events.push(match state.as_str() {
                    "running" => format!("{unit} started ({})", short(id)),
                    _ => format!("{unit} appeared, {state}"),
                });
            }
            Some((old_id, _)) if old_id != id => {
                membership_changed = true;
                events.push(format!(
                    "{unit} restarted: {} replaced {} ({state})",
                    short(id),
                    short(old_id)
                ));
            }
            Some((_, old_state)) if old_state != state => {
                events.push(match (old_state.as_str(), state.as_str()) {
                    ("running", "exited" | "dead") => format!("{unit} died ({state})"),
                    _ => format!("{unit} is {state} (was {old_state})"),
                });
            }
            Some(_) => {}
        }
    }
    for unit in last.keys().filter(|u| !now.contains_key(*u)) {
        membership_changed = true;
        events.push(format!("{unit} removed"));
    }
    Diff {
        events,
        membership_changed,
    }
}

/// A Docker id is 64 hex digits; 12 say enough (as `docker ps` shows them). Pids stay whole.
fn short(id: &str) -> &str {
    &id[..id.len().min(12)]
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::runtime::Role;

    fn unit(name: &str, id: &str, state: &str) -> UnitStatus {
        UnitStatus {
            run: "r".into(),
            scenario: "s".into(),
            unit: name.into(),
            service: name.split('#').next().unwrap().into(),
            replica: 1,
            role: Role::App,
            state: state.into(),
            id: id.into(),
            address: None,
            runtime: "local",
            published: Vec::new(),
            started_at: None,
        }
    }

    #[test]
    fn the_first_listing_only_primes() {
        let mut watch = UnitWatch::default();
        let diff = watch.update(&[unit("a#1/app", "1", "running")]);
        assert!(diff.events.is_empty());
        assert!(diff.membership_changed);
        let again = watch.update(&[unit("a#1/app", "1", "running")]);
        assert_eq!(
            again,
            Diff {
                events: vec![],
                membership_changed: false
            }
        );
    }

    #[test]
    fn every_kind_of_change_is_one_line() {
        let mut watch = UnitWatch::default();
        watch.update(&[
            unit("a#1/app", "10", "running"),
            unit("b#1/app", "20", "running"),
            unit("c#1/app", "30", "running"),
            unit("d#1/app", "40", "running"),
        ]);
        let diff = watch.update(&[
            unit("a#1/app", "10", "exited"),
            unit("b#1/app", "21", "running"),
            unit("d#1/app", "40", "paused"),
            unit("e#1/app", "50", "running"),
            unit("f#1/app", "0123456789abcdef", "created"),
        ]);
        assert_eq!(
            diff.events,
            [
                "a#1/app died (exited)",
                "b#1/app restarted: 21 replaced 20 (running)",
                "d#1/app is paused (was running)",
                "e#1/app started (50)",
                "f#1/app appeared, created",
                "c#1/app removed",
            ]
        );
        assert!(diff.membership_changed);
    }
}
