//! Is a run's owner still alive? The janitor's only question, answered from `/proc`.

/// Clock ticks per second in `/proc/<pid>/stat`. `sysconf(_SC_CLK_TCK)` is USER_HZ, fixed at
/// 100 in every Linux ABI meshsim runs on (and this crate forbids the unsafe call to ask).
const USER_HZ: i64 = 100;

/// Slack for comparing a process start time (1 s resolution boot time plus ticks) with a
/// creation time stamped by the daemon.
const CLOCK_SLACK_SECS: i64 = 2;

/// True when the process `pid` that launched a run created at `run_created` (Unix seconds, when
/// known) is gone: no such process, a zombie nobody reaped, or a process that started after the
/// run was created and so only reused the pid.
///
/// The start-time test replaces a "cmdline is meshsim" test: test binaries and other embedders
/// of the library own runs too, and must not have them reaped while they run.
pub(crate) fn owner_gone(pid: u32, run_created: Option<i64>) -> bool {
    if pid == std::process::id() {
        return false;
    }
    let Ok(stat) = std::fs::read_to_string(format!("/proc/{pid}/stat")) else {
        return true;
    };
    // `pid (comm) state ppid …`: comm may hold spaces and parentheses, so split after the last ')'.
    let Some((_, rest)) = stat.rsplit_once(')') else {
        return false;
    };
    let fields: Vec<&str> = rest.split_whitespace().collect();
    if matches!(fields.first(), Some(&"Z") | Some(&"X")) {
        return true;
    }
    // Field 22 of the line is starttime; `fields` starts at field 3.
    let started = fields
        .get(19)
        .and_then(|t| t.parse::<i64>().ok())
        .zip(boot_time())
        .map(|(ticks, boot)| boot + ticks / USER_HZ);
    match (started, run_created) {
        (Some(started), Some(created)) => started > created + CLOCK_SLACK_SECS,
        _ => false,
    }
}

/// `btime` from `/proc/stat`: the boot time in Unix seconds.
fn boot_time() -> Option<i64> {
    std::fs::read_to_string("/proc/stat")
        .ok()?
        .lines()
        .find_map(|l| l.strip_prefix("btime "))
        .and_then(|v| v.trim().parse().ok())
}

/// Unix seconds of an RFC 3339 time as Docker prints it (`2026-05-07T21:09:36.123456789Z`,
/// or with a `+02:00` offset). Fractions are dropped.
pub(crate) fn parse_rfc3339(text: &str) -> Option<i64> {
    let (date, time) = text.split_once('T')?;
    let mut d = date.split('-');
    let (year, month, day): (i64, i64, i64) = (
        d.next()?.parse().ok()?,
        d.next()?.parse().ok()?,
        d.next()?.parse().ok()?,
    );
    let (clock, offset) = if let Some(clock) = time.strip_suffix('Z') {
        (clock, 0)
    } else {
        let at = time.rfind(['+', '-'])?;
        let (clock, zone) = time.split_at(at);
        let sign = if zone.starts_with('-') { -1 } else { 1 };
        let (h, m) = zone[1..].split_once(':')?;
        (
            clock,
            sign * (h.parse::<i64>().ok()? * 3600 + m.parse::<i64>().ok()? * 60),
        )
    };
    let clock = clock.split('.').next()?;
    let mut c = clock.split(':');
    let (h, m, s): (i64, i64, i64) = (
        c.next()?.parse().ok()?,
        c.next()?.parse().ok()?,
        c.next()?.parse().ok()?,
    );
    Some(days_from_civil(year, month, day) * 86_400 + h * 3600 + m * 60 + s - offset)
}

/// Days since 1970-01-01 of a proleptic Gregorian date (Howard Hinnant's algorithm).
fn days_from_civil(y: i64, m: i64, d: i64) -> i64 {
    let y = if m <= 2 { y - 1 } else { y };
    let era = y.div_euclid(400);
    let yoe = y - era * 400;
    let mp = (m + 9) % 12;
    let doy = (153 * mp + 2) / 5 + d - 1;
    let doe = yoe * 365 + yoe / 4 - yoe / 100 + doy;
    era * 146_097 + doe - 719_468
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn rfc3339_in_docker_forms() {
        assert_eq!(parse_rfc3339("1970-01-01T00:00:00Z"), Some(0));
        assert_eq!(
            parse_rfc3339("2024-02-29T12:34:56.123456789Z"),
            Some(1_709_210_096)
        );
        assert_eq!(
            parse_rfc3339("2024-02-29T14:34:56.5+02:00"),
            Some(1_709_210_096)
        );
        assert_eq!(
            parse_rfc3339("2024-02-29T11:34:56-01:00"),
            Some(1_709_210_096)
        );
        assert_eq!(parse_rfc3339("garbage"), None);
    }

    #[test]
    fn this_process_is_alive_and_a_reaped_child_is_gone() {
        assert!(!owner_gone(std::process::id(), Some(0)));
        let mut child = std::process::Command::new("true").spawn().unwrap();
        let pid = child.id();
        child.wait().unwrap();
        assert!(owner_gone(pid, None));
    }

    #[test]
    fn a_process_started_after_the_run_only_reused_the_pid() {
        // pid 1 started at boot: a run "created" before boot cannot be its.
        assert!(owner_gone(1, Some(0)));
        let now = std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .unwrap()
            .as_secs() as i64;
        assert!(!owner_gone(1, Some(now)));
    }
}
