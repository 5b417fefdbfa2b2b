//! When each fault step is done and undone, from the start of traffic: a pure timeline the
//! test runner walks.

use std::time::Duration;

use super::{FaultAction, FaultStep, When};

/// One thing to do at one moment.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Timed {
    pub at: Duration,
    /// Index into the steps.
    pub step: usize,
    pub undo: bool,
}

/// Every step's doing, and the undoing of those with a `for:`, in time order (a step's undo
/// never before its doing; ties keep the file's order). Phases are `(name, start)`; a step at
/// an unknown phase is left out (the scenario check has already refused it).
pub fn timeline(steps: &[FaultStep], phases: &[(String, Duration)]) -> Vec<Timed> {
    let mut out = Vec::new();
    for (i, step) in steps.iter().enumerate() {
        let at = match &step.at {
            When::After(at) => *at,
            When::Phase { name, plus } => match phases.iter().find(|(n, _)| n == name) {
                Some((_, start)) => *start + *plus,
                None => continue,
            },
        };
        out.push(Timed {
            at,
            step: i,
            undo: false,
        });
        if let Some(lasts) = step.lasts {
            out.push(Timed {
                at: at + lasts,
                step: i,
                undo: true,
            });
        }
    }
    // Stable: at equal times, file order, and a doing before its own undoing.
    out.sort_by_key(|t| t.at);
    out
}

/// Whether the end of the run undoes this step when its `for:` has not: what would otherwise
/// outlive the test's intent (a frozen or cut-off pod, an injected fault, a replaced config).
/// Kills, stops and scaling are the run's new shape and go with the teardown.
pub fn undone_at_end(action: &FaultAction) -> bool {
    matches!(
        action,
        FaultAction::Pause(_)
            | FaultAction::Disconnect(_)
            | FaultAction::Proxy { .. }
            | FaultAction::Reload { .. }
            | FaultAction::App { .. }
    )
}

#[cfg(test)]
mod tests {
    use super::super::Target;
    use super::*;
    use crate::config::node::Span;

    fn step(at: When, lasts: Option<u64>) -> FaultStep {
        FaultStep {
            at,
            lasts: lasts.map(Duration::from_secs),
            action: FaultAction::Pause(Target {
                service: "s".into(),
                replica: Some(1),
            }),
            at_span: Span::default(),
            span: Span::default(),
        }
    }

    #[test]
    fn steps_and_undos_in_time_order_with_phase_offsets() {
        let phases = vec![
            ("warm".to_string(), Duration::ZERO),
            ("steady".to_string(), Duration::from_secs(5)),
        ];
        let steps = vec![
            step(When::After(Duration::from_secs(8)), None),
            step(
                When::Phase {
                    name: "steady".into(),
                    plus: Duration::from_secs(1),
                },
                Some(4),
            ),
            step(
                When::Phase {
                    name: "nope".into(),
                    plus: Duration::ZERO,
                },
                None,
            ),
        ];
        let t = timeline(&steps, &phases);
        let seen: Vec<(u64, usize, bool)> =
            t.iter().map(|t| (t.at.as_secs(), t.step, t.undo)).collect();
        assert_eq!(seen, vec![(6, 1, false), (8, 0, false), (10, 1, true)]);
    }

    #[test]
    fn what_the_end_of_a_run_undoes() {
        let t = Target {
            service: "s".into(),
            replica: None,
        };
        assert!(undone_at_end(&FaultAction::Pause(t.clone())));
        assert!(undone_at_end(&FaultAction::Disconnect(t.clone())));
        assert!(!undone_at_end(&FaultAction::Kill(t.clone())));
        assert!(!undone_at_end(&FaultAction::Scale {
            service: "s".into(),
            replicas: 2
        }));
    }
}
