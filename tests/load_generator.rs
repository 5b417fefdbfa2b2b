//! The load generator's accounting against local servers whose answers are known in advance:
//! every request in exactly one outcome bucket, counts exact. Assertions are on counts only —
//! never on how long anything took — so a busy machine cannot make them flaky.

#[path = "support/scripted.rs"]
mod scripted;

use std::collections::BTreeMap;
use std::time::Duration;

use meshsim::traffic::generator::{self, GeneratorError};
use meshsim::traffic::plan::{LoadPlan, PhasePlan, Protocol, Rate, RequestTemplate};
use meshsim::traffic::report::{Counts, LoadReport, Outcome};
use scripted::{Answer, Scripted};
use tokio::sync::watch;
use tokio::time::Instant;

fn template(path: &str, weight: u32) -> RequestTemplate {
    RequestTemplate {
        name: path.trim_start_matches('/').to_string(),
        weight,
        method: "GET".into(),
        path: path.into(),
        headers: Vec::new(),
        body: None,
    }
}

fn phase(name: &str, seconds: f64, rate: Rate, requests: Vec<RequestTemplate>) -> PhasePlan {
    PhasePlan {
        name: name.into(),
        duration: Duration::from_secs_f64(seconds),
        rate,
        requests,
    }
}

fn plan(target: String, protocol: Protocol, connections: u32, phases: Vec<PhasePlan>) -> LoadPlan {
    LoadPlan {
        target,
        protocol,
        connections,
        timeout: Duration::from_secs(1),
        phases,
    }
}

async fn run(plan: &LoadPlan) -> LoadReport {
    let (_keep, stop) = watch::channel(false);
    generator::run(plan, Instant::now(), stop).await.unwrap()
}

fn counts(pairs: &[(Outcome, u64)]) -> Counts {
    let mut c = Counts::default();
    for (o, n) in pairs {
        c.add(*o, *n);
    }
    c
}

/// `sent` equals the sum of every bucket, per phase and over the seconds, and each answered
/// request (and only those) has a latency.
fn assert_accounting(report: &LoadReport) {
    let by_phase: u64 = report.phases.iter().map(|p| p.total().counts.total()).sum();
    assert_eq!(
        by_phase, report.sent,
        "phases do not add up to sent: {report:#?}"
    );
    let by_second: u64 = report
        .seconds
        .iter()
        .flat_map(|s| s.values())
        .map(|t| t.counts.total())
        .sum();
    assert_eq!(by_second, report.sent, "seconds do not add up to sent");
    for p in &report.phases {
        for (name, t) in &p.requests {
            let answered: u64 = t
                .counts
                .0
                .iter()
                .filter(|(o, _)| matches!(o, Outcome::Status(_) | Outcome::Grpc(_)))
                .map(|(_, n)| n)
                .sum();
            assert_eq!(t.latency.count(), answered, "{}/{name}: latencies", p.name);
        }
    }
}

/// /ok answers 200, /fail 503, /stall never (it sleeps a minute), /reset breaks the body, /drop
/// closes without answering.
async fn misbehaving_server() -> Scripted {
    Scripted::start(|_, path| match path {
        "/ok" => Answer::Status(200),
        "/fail" => Answer::Status(503),
        "/stall" => Answer::Slow(Duration::from_secs(60)),
        "/reset" => Answer::ResetMidBody,
        "/drop" => Answer::Drop,
        _ => Answer::Status(404),
    })
    .await
}

fn misbehaving_mix() -> Vec<RequestTemplate> {
    vec![
        template("/ok", 5),
        template("/fail", 2),
        template("/stall", 2),
        template("/reset", 1),
        template("/drop", 1),
    ]
}

/// 220 requests = 20 rounds of the 5/2/2/1/1 mix.
fn expected_mix_outcomes() -> Vec<(&'static str, Counts)> {
    vec![
        ("ok", counts(&[(Outcome::Status(200), 100)])),
        ("fail", counts(&[(Outcome::Status(503), 40)])),
        ("stall", counts(&[(Outcome::Timeout, 40)])),
        ("reset", counts(&[(Outcome::Reset, 20)])),
        ("drop", counts(&[(Outcome::Reset, 20)])),
    ]
}

fn outcomes_by_name(report: &LoadReport) -> Vec<(&str, Counts)> {
    report.phases[0]
        .requests
        .iter()
        .map(|(n, t)| (n.as_str(), t.counts.clone()))
        .collect()
}

#[tokio::test]
async fn http1_every_request_lands_in_exactly_one_known_bucket() {
    let server = misbehaving_server().await;
    // More connections than requests: none ever waits for a connection, whatever the timing.
    let plan = plan(
        server.addr.to_string(),
        Protocol::Http1,
        256,
        vec![phase("mix", 1.0, Rate::Constant(220.0), misbehaving_mix())],
    );
    let report = run(&plan).await;
    assert_eq!(report.sent, 220);
    assert_eq!(report.phases[0].scheduled, 220);
    assert!(!report.interrupted);
    assert_eq!(outcomes_by_name(&report), expected_mix_outcomes());
    assert_accounting(&report);
    assert_eq!(report.seconds.len(), 1);
    assert_eq!(
        report.seconds[0]["ok"].counts.get(Outcome::Status(200)),
        100
    );
    // Each request reached the server once: nothing was sent twice or invented.
    assert_eq!(server.count(), 220);
}

#[tokio::test]
async fn h2c_streams_are_accounted_the_same_way() {
    let server = misbehaving_server().await;
    // Few connections: the requests are streams multiplexed on them.
    let plan = plan(
        server.addr.to_string(),
        Protocol::H2c,
        2,
        vec![phase("mix", 1.0, Rate::Constant(220.0), misbehaving_mix())],
    );
    let report = run(&plan).await;
    assert_eq!(report.sent, 220);
    assert_eq!(outcomes_by_name(&report), expected_mix_outcomes());
    assert_accounting(&report);
    assert_eq!(server.count(), 220);
}

#[tokio::test]
async fn phases_ramps_and_seconds_split_by_intended_send_time() {
    let server = misbehaving_server().await;
    let ok = || vec![template("/ok", 1)];
    // 40/s for 1.5 s (60), then a ramp 0 → 40/s over 1 s (area 20, due at √(i/20) s into the
    // phase: 5 before its first half second, 15 after).
    let plan = plan(
        server.addr.to_string(),
        Protocol::Http1,
        8,
        vec![
            phase("steady", 1.5, Rate::Constant(40.0), ok()),
            phase(
                "ramp",
                1.0,
                Rate::Ramp {
                    from: 0.0,
                    to: 40.0,
                },
                ok(),
            ),
        ],
    );
    let report = run(&plan).await;
    let scheduled: Vec<u64> = report.phases.iter().map(|p| p.scheduled).collect();
    assert_eq!(scheduled, [60, 20]);
    assert_eq!(report.phases[1].start, Duration::from_millis(1500));
    assert_eq!(report.sent, 80);
    for p in &report.phases {
        assert_eq!(
            p.total().counts.get(Outcome::Status(200)),
            p.scheduled,
            "{}",
            p.name
        );
    }
    let per_second: Vec<u64> = report
        .seconds
        .iter()
        .map(|s| s["ok"].counts.total())
        .collect();
    assert_eq!(per_second, [40, 25, 15]);
    assert_accounting(&report);
}

#[tokio::test]
async fn a_closed_port_and_an_unknown_host_are_connect_errors() {
    let closed = {
        let listener = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
        listener.local_addr().unwrap()
    };
    let mk = |target: String, n: f64| {
        plan(
            target,
            Protocol::Http1,
            4,
            vec![phase("p", 1.0, Rate::Constant(n), vec![template("/x", 1)])],
        )
    };
    let report = run(&mk(closed.to_string(), 20.0)).await;
    assert_eq!(report.sent, 20);
    assert_eq!(
        report.phases[0].requests[0].1.counts,
        counts(&[(Outcome::ConnectError, 20)])
    );
    assert_accounting(&report);

    let mut h2 = mk(closed.to_string(), 10.0);
    h2.protocol = Protocol::H2c;
    let report = run(&h2).await;
    assert_eq!(
        report.phases[0].requests[0].1.counts,
        counts(&[(Outcome::ConnectError, 10)])
    );

    // `.invalid` never resolves (RFC 6761); a slow resolver ends at the timeout, still a
    // connect error.
    let report = run(&mk("meshsim-no-such-host.invalid:80".into(), 3.0)).await;
    assert_eq!(
        report.phases[0].requests[0].1.counts,
        counts(&[(Outcome::ConnectError, 3)])
    );
}

#[tokio::test]
async fn stopping_cancels_what_is_in_flight_and_sends_nothing_more() {
    // Nothing is ever answered, so everything sent is in flight when the stop comes.
    let server = Scripted::start(|_, _| Answer::Slow(Duration::from_secs(60))).await;
    let mut plan = plan(
        server.addr.to_string(),
        Protocol::Http1,
        64,
        vec![phase(
            "long",
            10.0,
            Rate::Constant(20.0),
            vec![template("/x", 1)],
        )],
    );
    plan.timeout = Duration::from_secs(30);
    let (stop_tx, stop) = watch::channel(false);
    let run = tokio::spawn(async move { generator::run(&plan, Instant::now(), stop).await });
    // Bounded: a generator that sends nothing fails here instead of hanging the suite.
    tokio::time::timeout(Duration::from_secs(30), async {
        while server.count() < 10 {
            tokio::time::sleep(Duration::from_millis(20)).await;
        }
    })
    .await
    .expect("the generator sent 10 requests within 30 s");
    stop_tx.send(true).unwrap();
    let report = run.await.unwrap().unwrap();
    assert!(report.interrupted);
    assert_eq!(report.phases[0].scheduled, 200);
    let tally = &report.phases[0].requests[0].1;
    assert!(
        report.sent >= 10 && report.sent < 200,
        "sent {}",
        report.sent
    );
    assert_eq!(
        tally.counts.get(Outcome::Cancelled),
        report.sent,
        "{:?}",
        tally.counts
    );
    assert_accounting(&report);
}

#[tokio::test]
async fn grpc_calls_report_their_grpc_status() {
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    let (shutdown_tx, shutdown) = tokio::sync::oneshot::channel::<()>();
    let server = tokio::spawn(sample_services::serve(
        sample_services::ServiceArgs::new(sample_services::Kind::Grpc),
        listener,
        async {
            let _ = shutdown.await;
        },
    ));
    let call = |name: &str, path: &str, weight, body: Option<&str>| RequestTemplate {
        name: name.into(),
        weight,
        method: "POST".into(),
        path: path.into(),
        headers: Vec::new(),
        body: body.map(str::to_string),
    };
    let mix = vec![
        // The default (empty) request message.
        call("status", sample_services::proto::GET_STATUS_PATH, 3, None),
        // `group: "admins"` in protobuf: field 1, length 6.
        call(
            "users",
            sample_services::proto::GET_USERS_BY_GROUP_PATH,
            1,
            Some("\n\u{6}admins"),
        ),
        call("missing", "/gateway.NoSuchService/Nothing", 1, None),
    ];
    let plan = plan(
        addr.to_string(),
        Protocol::Grpc,
        2,
        vec![phase("calls", 0.5, Rate::Constant(100.0), mix)],
    );
    let report = run(&plan).await;
    let got: BTreeMap<&str, Counts> = report.phases[0]
        .requests
        .iter()
        .map(|(n, t)| (n.as_str(), t.counts.clone()))
        .collect();
    let want: BTreeMap<&str, Counts> = [
        ("status", counts(&[(Outcome::Status(200), 30)])),
        ("users", counts(&[(Outcome::Status(200), 10)])),
        // UNIMPLEMENTED.
        ("missing", counts(&[(Outcome::Grpc(12), 10)])),
    ]
    .into_iter()
    .collect();
    assert_eq!(got, want);
    assert_accounting(&report);
    let _ = shutdown_tx.send(());
    server.await.unwrap().unwrap();
}

#[tokio::test]
async fn a_bad_plan_names_the_field_and_sends_nothing() {
    let server = misbehaving_server().await;
    let mut bad = plan(
        server.addr.to_string(),
        Protocol::Http1,
        1,
        vec![phase(
            "p",
            1.0,
            Rate::Constant(1.0),
            vec![template("/a", 1)],
        )],
    );
    bad.phases[0].requests.push(template("/b", 1));
    bad.phases[0].requests[1].path = "b".into();
    let (_keep, stop) = watch::channel(false);
    match generator::run(&bad, Instant::now(), stop).await {
        Err(GeneratorError::InvalidPlan { field, problem }) => {
            assert_eq!(field, "phases[0].requests[1].path");
            assert!(problem.contains("must start with `/`"), "{problem}");
        }
        other => panic!("expected an invalid plan, got {other:?}"),
    }
    assert_eq!(
        server.requests.load(std::sync::atomic::Ordering::Relaxed),
        0
    );
}

/// `meshsim load` as `meshsim test` runs it in a container: a JSON plan in, one line of JSON
/// out, exit 0; a bad plan is exit 2 with the field named.
#[tokio::test]
async fn the_load_command_prints_the_report_as_one_json_line() {
    let server = misbehaving_server().await;
    let plan = plan(
        server.addr.to_string(),
        Protocol::Http1,
        256,
        vec![phase("mix", 1.0, Rate::Constant(220.0), misbehaving_mix())],
    );
    let json = serde_json::to_string(&plan).unwrap();
    let out = tokio::process::Command::new(env!("CARGO_BIN_EXE_meshsim"))
        .args(["load", "--plan-json", &json])
        .output()
        .await
        .unwrap();
    assert_eq!(
        out.status.code(),
        Some(0),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let stdout = String::from_utf8(out.stdout).unwrap();
    assert_eq!(stdout.lines().count(), 1, "{stdout}");
    let report: LoadReport = serde_json::from_str(&stdout).unwrap();
    assert_eq!(report.sent, 220);
    assert_eq!(outcomes_by_name(&report), expected_mix_outcomes());
    assert_accounting(&report);

    let mut bad = plan.clone();
    bad.phases[0].rate = Rate::Ramp { from: 0.0, to: 0.0 };
    // No server is needed for this one: a blocking child is fine.
    let mut child = std::process::Command::new(env!("CARGO_BIN_EXE_meshsim"))
        .args(["load", "--plan", "-"])
        .stdin(std::process::Stdio::piped())
        .stdout(std::process::Stdio::piped())
        .stderr(std::process::Stdio::piped())
        .spawn()
        .unwrap();
    {
        use std::io::Write;
        let mut stdin = child.stdin.take().unwrap();
        stdin
            .write_all(serde_json::to_string(&bad).unwrap().as_bytes())
            .unwrap();
    }
    let out = child.wait_with_output().unwrap();
    assert_eq!(out.status.code(), Some(2));
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(stderr.contains("`phases[0].rate`"), "{stderr}");
    assert!(out.stdout.is_empty());
}
