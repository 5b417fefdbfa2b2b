//! The Docker runtime against a real daemon, with no public image: meshsim's own binary is
//! packaged and its proxy stands in for apps (direct_response routes). Skips when there is no
//! daemon, except in CI. Every test removes its run, also on panic.

mod support;

use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

use bollard::query_parameters::{ListNetworksOptionsBuilder, RemoveImageOptionsBuilder};
use futures_util::TryStreamExt;
use meshsim::runtime::docker::{DockerError, LogsRequest, Removed, Which};
use meshsim::runtime::{
    labels, ConfigFile, Container, Plan, Pod, PortPurpose, PortSpec, Program, Role, UnitStatus,
};
use support::docker::{docker_or_skip, meshsim_image, run_id, RunGuard};

const HCM: &str = "type.googleapis.com/envoy.extensions.filters.network.http_connection_manager.v3.HttpConnectionManager";
const ROUTER: &str = "type.googleapis.com/envoy.extensions.filters.http.router.v3.Router";

/// A proxy config: one listener on 0.0.0.0:`port` whose single route is `route` (YAML flow
/// map), admin on 0.0.0.0:`admin`, and `clusters` (YAML block, may be empty).
fn proxy_yaml(port: u16, route: &str, admin: u16, clusters: &str) -> String {
    format!(
        r#"static_resources:
  listeners:
  - name: main
    address: {{socket_address: {{address: 0.0.0.0, port_value: {port}}}}}
    filter_chains:
    - filters:
      - name: envoy.filters.network.http_connection_manager
        typed_config:
          "@type": {HCM}
          stat_prefix: main
          route_config:
            name: local
            virtual_hosts:
            - name: all
              domains: ["*"]
              routes:
              - match: {{prefix: "/"}}
                {route}
          http_filters:
          - name: envoy.filters.http.router
            typed_config:
              "@type": {ROUTER}
  clusters: {clusters}
admin:
  address: {{socket_address: {{address: 0.0.0.0, port_value: {admin}}}}}
"#
    )
}

fn answering(port: u16, admin: u16, body: &str) -> String {
    proxy_yaml(
        port,
        &format!("direct_response: {{status: 200, body: {{inline_string: \"{body}\"}}}}"),
        admin,
        "[]",
    )
}

fn routing(port: u16, admin: u16, kind: &str, host: &str, upstream_port: u16) -> String {
    let cluster = format!(
        r#"
  - name: up
    connect_timeout: 1s
    type: {kind}
    dns_refresh_rate: 1s
    dns_lookup_family: V4_ONLY
    lb_policy: ROUND_ROBIN
    load_assignment:
      cluster_name: up
      endpoints:
      - lb_endpoints:
        - endpoint: {{address: {{socket_address: {{address: {host}, port_value: {upstream_port}}}}}}}"#
    );
    proxy_yaml(port, "route: {cluster: up}", admin, &cluster)
}

fn proxy(role: Role, file: &str, yaml: String) -> Container {
    Container {
        role,
        program: Program::Proxy {
            config: ConfigFile {
                source: PathBuf::from(format!("/test/{file}")),
                container_path: format!("/etc/meshsim/{file}"),
                contents: yaml.into_bytes(),
            },
            args: vec!["--concurrency".into(), "1".into()],
        },
        env: vec![("MESHSIM_TEST".into(), "1".into())],
        files: vec![],
    }
}

fn port(container_port: u16, purpose: PortPurpose) -> PortSpec {
    PortSpec {
        container_port,
        host_port: None,
        purpose,
    }
}

fn pod(service: &str, replica: u32, containers: Vec<Container>, ports: Vec<PortSpec>) -> Pod {
    Pod {
        wave: 0,
        service: service.into(),
        replica,
        containers,
        ports,
    }
}

fn plan(run_id: &str, pods: Vec<Pod>, detached: bool) -> Plan {
    Plan {
        run_id: run_id.into(),
        scenario: "docker-runtime-test".into(),
        scenario_path: PathBuf::from("/test/scenario.yaml"),
        pods,
        detached,
    }
}

fn host_port(units: &[UnitStatus], unit: &str, container_port: u16) -> u16 {
    units
        .iter()
        .find(|u| u.unit == unit)
        .unwrap_or_else(|| panic!("no unit {unit} in {units:?}"))
        .published
        .iter()
        .find(|p| p.container_port == container_port)
        .unwrap_or_else(|| panic!("{unit} does not publish {container_port}"))
        .host_port
}

/// GET on the host's loopback; None on any failure (the thing may not be up yet).
async fn try_get(port: u16, path: &str) -> Option<(u16, String)> {
    let client = support::http1();
    let url = format!("http://127.0.0.1:{port}{path}");
    let response = tokio::time::timeout(Duration::from_secs(2), client.get(url.parse().ok()?))
        .await
        .ok()?
        .ok()?;
    let status = response.status().as_u16();
    Some((status, support::body_string(response).await))
}

async fn wait_ready(admin_port: u16) {
    let ready = support::eventually(Duration::from_secs(15), || async {
        try_get(admin_port, "/ready")
            .await
            .is_some_and(|(status, body)| status == 200 && body.trim() == "LIVE")
    })
    .await;
    assert!(ready, "admin on 127.0.0.1:{admin_port} never said LIVE");
}

/// Hosts of cluster `up` in a proxy's `/clusters` (`up::172.18.0.3:10000::cx_active::0`).
async fn cluster_hosts(admin_port: u16) -> std::collections::BTreeSet<String> {
    let (_, body) = try_get(admin_port, "/clusters").await.unwrap_or_default();
    body.lines()
        .filter_map(|l| l.strip_prefix("up::"))
        .filter_map(|l| l.split("::").next())
        .filter(|h| h.contains(':'))
        .map(str::to_string)
        .collect()
}

async fn assert_nothing_left(docker: &meshsim::runtime::docker::DockerRuntime, run: &str) {
    let left = support::docker::labelled(docker, &format!("{}={run}", labels::RUN)).await;
    assert_eq!(left, (0, 0), "containers and networks of {run} left");
}

/// One launch exercising the pod model: a standalone proxy, a 2-replica service behind one DNS
/// alias seen by a strict_dns cluster, an app with a sidecar in its namespace; then scaling,
/// logs, labels, and `down`.
#[tokio::test]
async fn a_mesh_launches_answers_scales_and_goes_down() {
    let Some(docker) = docker_or_skip().await else {
        return;
    };
    let image = meshsim_image(&docker).await;
    let run = run_id("mesh");
    let _guard = RunGuard::new(&run);

    let backend = |replica: u32| {
        pod(
            "backend",
            replica,
            vec![proxy(
                Role::Proxy,
                "backend.yaml",
                answering(10000, 9901, &format!("replica-{replica}")),
            )],
            vec![port(9901, PortPurpose::Admin)],
        )
    };
    let pods = vec![
        pod(
            "front",
            1,
            vec![proxy(
                Role::Proxy,
                "front.yaml",
                routing(8080, 9901, "STRICT_DNS", "backend", 10000),
            )],
            vec![
                port(8080, PortPurpose::Publish),
                port(9901, PortPurpose::Admin),
            ],
        ),
        backend(1),
        backend(2),
        pod(
            "web",
            1,
            vec![
                proxy(Role::App, "app.yaml", answering(8080, 9902, "from-web-app")),
                proxy(
                    Role::Sidecar,
                    "sidecar.yaml",
                    routing(8000, 9901, "STATIC", "127.0.0.1", 8080),
                ),
            ],
            vec![
                port(8000, PortPurpose::Publish),
                port(9901, PortPurpose::Admin),
            ],
        ),
    ];
    let plan = plan(&run, pods, false);

    let started = Instant::now();
    let units = docker.launch(&plan, &image).await.expect("launch");
    eprintln!("launch of 5 containers: {:?}", started.elapsed());
    assert_eq!(units.len(), 5, "{units:?}");
    assert!(units
        .iter()
        .all(|u| u.runtime == "docker" && !u.id.is_empty()));

    // The standalone proxy answers on its published admin port.
    let front_admin = host_port(&units, "front#1/proxy", 9901);
    wait_ready(front_admin).await;

    // Both replicas answer through the front's strict_dns cluster on the shared alias.
    let front = host_port(&units, "front#1/proxy", 8080);
    let mut seen = std::collections::BTreeSet::new();
    let deadline = Instant::now() + Duration::from_secs(20);
    while seen.len() < 2 && Instant::now() < deadline {
        match try_get(front, "/").await {
            Some((200, body)) => {
                seen.insert(body);
            }
            _ => tokio::time::sleep(Duration::from_millis(100)).await,
        }
    }
    assert_eq!(
        seen.into_iter().collect::<Vec<_>>(),
        ["replica-1", "replica-2"],
        "not every replica answered through the front"
    );
    assert_eq!(cluster_hosts(front_admin).await.len(), 2);

    // The sidecar shares the app's namespace: its 127.0.0.1:8080 is the app.
    let web = host_port(&units, "web#1/sidecar", 8000);
    let answered = support::eventually(Duration::from_secs(15), || async {
        try_get(web, "/").await == Some((200, "from-web-app".into()))
    })
    .await;
    assert!(answered, "the sidecar did not reach the app over 127.0.0.1");

    // Labels on containers and network; configs arrived without any mount.
    for unit in &units {
        let inspect = docker
            .api()
            .inspect_container(&unit.id, None)
            .await
            .unwrap();
        let l = inspect.config.unwrap().labels.unwrap();
        assert_eq!(l[labels::RUN], run);
        assert_eq!(l[labels::SCENARIO], "docker-runtime-test");
        assert_eq!(l[labels::UNIT], unit.unit);
        assert_eq!(l[labels::SERVICE], unit.service);
        assert_eq!(l[labels::REPLICA], unit.replica.to_string());
        assert_eq!(l[labels::ROLE], unit.role.as_str());
        assert_eq!(l[labels::OWNER_PID], std::process::id().to_string());
        assert!(!l[labels::OWNER_HOST].is_empty());
        assert!(l.contains_key(labels::PORTS));
        assert!(
            inspect.mounts.unwrap_or_default().is_empty(),
            "{} has mounts",
            unit.unit
        );
        let binds = inspect
            .host_config
            .and_then(|h| h.binds)
            .unwrap_or_default();
        assert!(binds.is_empty(), "{} has binds", unit.unit);
    }
    let filters =
        std::collections::HashMap::from([("label", vec![format!("{}={run}", labels::RUN)])]);
    let networks = docker
        .api()
        .list_networks(Some(
            ListNetworksOptionsBuilder::new().filters(&filters).build(),
        ))
        .await
        .unwrap();
    assert_eq!(networks.len(), 1);
    let nl = networks[0].labels.clone().unwrap();
    assert_eq!(
        networks[0].name.as_deref(),
        Some(format!("meshsim-{run}").as_str())
    );
    assert_eq!(nl[labels::SCENARIO], "docker-runtime-test");
    assert_eq!(nl[labels::OWNER_PID], std::process::id().to_string());

    // `list` sees the same units; the sidecar carries its pod's ports.
    let listed = docker.list(Some(&run)).await.unwrap();
    assert_eq!(listed.len(), 5);
    assert!(listed.iter().all(|u| u.state == "running"), "{listed:?}");
    assert_eq!(host_port(&listed, "web#1/app", 8000), web);
    let admin = listed
        .iter()
        .find(|u| u.unit == "front#1/proxy")
        .unwrap()
        .published
        .iter()
        .find(|p| p.container_port == 9901)
        .unwrap()
        .purpose;
    assert_eq!(admin, PortPurpose::Admin);

    // Logs of one unit, by prefix, as lines.
    let lines: Vec<_> = docker
        .logs(LogsRequest {
            run: Some(run.clone()),
            unit: "front".into(),
            follow: false,
            tail: None,
        })
        .try_collect()
        .await
        .unwrap();
    assert!(lines
        .iter()
        .all(|l| l.unit == "front#1/proxy" && !l.text.contains('\n')));
    eprintln!("front logged {} lines", lines.len());
    let none = docker
        .logs(LogsRequest {
            run: Some(run.clone()),
            unit: "nosuch".into(),
            ..Default::default()
        })
        .try_collect::<Vec<_>>()
        .await;
    assert!(matches!(none, Err(DockerError::NoMatchingUnit { .. })));

    // Scaling: a removed replica vanishes from DNS, an added one appears, without restarts.
    docker.remove_pod(&run, "backend", 2).await.unwrap();
    assert!(
        support::eventually(Duration::from_secs(10), || async {
            cluster_hosts(front_admin).await.len() == 1
        })
        .await,
        "the removed replica stayed in the cluster"
    );
    let added = docker.launch_pod(&plan, &backend(3), &image).await.unwrap();
    assert_eq!(added.len(), 1);
    assert!(
        support::eventually(Duration::from_secs(10), || async {
            cluster_hosts(front_admin).await.len() == 2
        })
        .await,
        "the added replica never joined the cluster"
    );

    // Killing a pod with a sidecar removes both of its containers.
    docker.remove_pod(&run, "web", 1).await.unwrap();
    let left = docker.list(Some(&run)).await.unwrap();
    let left: Vec<&str> = left.iter().map(|u| u.unit.as_str()).collect();
    assert_eq!(
        left,
        ["backend#1/proxy", "backend#3/proxy", "front#1/proxy"]
    );

    let started = Instant::now();
    let removed = docker.down(&Which::Run(run.clone())).await.unwrap();
    eprintln!("down of 3 containers: {:?}", started.elapsed());
    assert_eq!(
        removed,
        Removed {
            containers: 3,
            networks: 1
        }
    );
    assert_nothing_left(&docker, &run).await;
    let again = docker.down(&Which::Run(run.clone())).await.unwrap();
    assert_eq!(again, Removed::default());
}

/// Packaging works for any binary path, not only the running one: /bin/true, imported, cached,
/// and started through both of its names.
#[tokio::test]
async fn image_is_built_once_and_runs_from_scratch() {
    let Some(docker) = docker_or_skip().await else {
        return;
    };
    // meshsim's own image: a second call finds the tag.
    let first = meshsim_image(&docker).await;
    let again = docker
        .ensure_image(Path::new(env!("CARGO_BIN_EXE_meshsim")))
        .await
        .unwrap();
    assert_eq!(again.tag, first);
    assert!(!again.built);
    assert!(first.starts_with("meshsim:") && first.len() == "meshsim:".len() + 12);

    // A small foreign binary, built for certain (its tag removed first), then cached.
    let binary = Path::new("/bin/true");
    let probe = docker.ensure_image(binary).await.unwrap();
    let _ = docker
        .api()
        .remove_image(
            &probe.tag,
            Some(RemoveImageOptionsBuilder::new().force(true).build()),
            None,
        )
        .await;
    let started = Instant::now();
    let built = docker.ensure_image(binary).await.unwrap();
    eprintln!("import of /bin/true's image: {:?}", started.elapsed());
    assert!(built.built);
    assert!(!docker.ensure_image(binary).await.unwrap().built);

    // Its loader and libraries are where the loader looks: both names run and exit 0.
    let run = run_id("image");
    let _guard = RunGuard::new(&run);
    for (name, path) in [
        ("true", "/usr/local/bin/meshsim"),
        ("envoy", "/usr/local/bin/envoy"),
    ] {
        let body = bollard::models::ContainerCreateBody {
            image: Some(built.tag.clone()),
            cmd: Some(vec![path.into()]),
            labels: Some(std::collections::HashMap::from([(
                labels::RUN.to_string(),
                run.clone(),
            )])),
            ..Default::default()
        };
        let options = bollard::query_parameters::CreateContainerOptionsBuilder::new()
            .name(&format!("meshsim-{run}-{name}"))
            .build();
        let id = docker
            .api()
            .create_container(Some(options), body)
            .await
            .unwrap()
            .id;
        docker.api().start_container(&id, None).await.unwrap();
        let waited: Result<Vec<_>, _> = docker.api().wait_container(&id, None).try_collect().await;
        assert!(
            waited.is_ok(),
            "{path} in the image did not exit 0: {waited:?}"
        );
    }
    docker.down(&Which::Run(run.clone())).await.unwrap();
    let _ = docker
        .api()
        .remove_image(
            &built.tag,
            Some(RemoveImageOptionsBuilder::new().force(true).build()),
            None,
        )
        .await;
}

#[tokio::test]
async fn a_missing_user_image_is_named_and_nothing_is_created() {
    let Some(docker) = docker_or_skip().await else {
        return;
    };
    let image = meshsim_image(&docker).await;
    let run = run_id("noimage");
    let _guard = RunGuard::new(&run);
    let ghost = Container {
        role: Role::App,
        program: Program::Image {
            image: "meshsim-test/absent:never".into(),
            command: None,
        },
        env: vec![],
        files: vec![],
    };
    let plan = plan(&run, vec![pod("ghost", 1, vec![ghost], vec![])], false);
    let err = docker.launch(&plan, &image).await.unwrap_err();
    match &err {
        DockerError::ImageMissing { image, unit } => {
            assert_eq!(image, "meshsim-test/absent:never");
            assert_eq!(unit, "ghost#1/app");
        }
        other => panic!("expected ImageMissing, got {other:?}"),
    }
    let text = err.to_string();
    assert!(
        text.contains("no registry") && text.contains("docker build"),
        "{text}"
    );
    assert_nothing_left(&docker, &run).await;
}

#[tokio::test]
async fn a_taken_host_port_is_reported_and_nothing_is_left() {
    let Some(docker) = docker_or_skip().await else {
        return;
    };
    let image = meshsim_image(&docker).await;
    let run = run_id("porttaken");
    let _guard = RunGuard::new(&run);
    let held = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let taken = held.local_addr().unwrap().port();
    let pods = vec![
        pod(
            "fine",
            1,
            vec![proxy(Role::Proxy, "fine.yaml", answering(8080, 9901, "ok"))],
            vec![port(9901, PortPurpose::Admin)],
        ),
        pod(
            "busy",
            1,
            vec![proxy(Role::Proxy, "busy.yaml", answering(8080, 9901, "ok"))],
            vec![PortSpec {
                container_port: 8080,
                host_port: Some(taken),
                purpose: PortPurpose::Publish,
            }],
        ),
    ];
    let err = docker
        .launch(&plan(&run, pods, false), &image)
        .await
        .unwrap_err();
    match err {
        DockerError::PortTaken { host_port, unit } => {
            assert_eq!(host_port, taken);
            assert_eq!(unit, "busy#1");
        }
        other => panic!("expected PortTaken, got {other:?}"),
    }
    assert_nothing_left(&docker, &run).await;
    drop(held);
}

/// A failure after some containers exist (here: a command that is not in the image) removes
/// every container and the network of the launch.
#[tokio::test]
async fn a_launch_failing_midway_rolls_back() {
    let Some(docker) = docker_or_skip().await else {
        return;
    };
    let image = meshsim_image(&docker).await;
    let run = run_id("rollback");
    let _guard = RunGuard::new(&run);
    let broken = Container {
        role: Role::App,
        program: Program::Image {
            image: image.clone(),
            command: Some(vec!["/no/such/binary".into()]),
        },
        env: vec![],
        files: vec![],
    };
    let pods = vec![
        pod(
            "fine",
            1,
            vec![proxy(Role::Proxy, "fine.yaml", answering(8080, 9901, "ok"))],
            vec![port(9901, PortPurpose::Admin)],
        ),
        pod("broken", 1, vec![broken], vec![]),
    ];
    let err = docker
        .launch(&plan(&run, pods, false), &image)
        .await
        .unwrap_err();
    assert!(
        matches!(&err, DockerError::Api { context, .. } if context.contains("broken#1/app")),
        "{err:?}"
    );
    assert_nothing_left(&docker, &run).await;
}

/// The janitor removes a run whose owner died and keeps a detached run and a live owner's run.
#[tokio::test]
async fn janitor_reaps_runs_of_dead_owners_only() {
    let Some(docker) = docker_or_skip().await else {
        return;
    };
    let image = meshsim_image(&docker).await;
    let dead_pid = {
        let mut child = std::process::Command::new("true").spawn().unwrap();
        let pid = child.id();
        child.wait().unwrap();
        pid
    };
    let orphaned = docker.clone().with_owner_pid(dead_pid);
    let quick = |service: &str| {
        let c = Container {
            role: Role::App,
            program: Program::Image {
                image: image.clone(),
                command: Some(vec!["/usr/local/bin/meshsim".into(), "--help".into()]),
            },
            env: vec![],
            files: vec![],
        };
        pod(service, 1, vec![c], vec![])
    };
    let (dead, detached, alive) = (run_id("jdead"), run_id("jdetached"), run_id("jalive"));
    let _guards = [
        RunGuard::new(&dead),
        RunGuard::new(&detached),
        RunGuard::new(&alive),
    ];
    orphaned
        .launch(&plan(&dead, vec![quick("a")], false), &image)
        .await
        .unwrap();
    orphaned
        .launch(&plan(&detached, vec![quick("b")], true), &image)
        .await
        .unwrap();
    docker
        .launch(&plan(&alive, vec![quick("c")], false), &image)
        .await
        .unwrap();

    let reaped = docker.janitor().await.unwrap();
    assert!(reaped.contains(&dead), "{reaped:?}");
    assert!(
        !reaped.contains(&detached) && !reaped.contains(&alive),
        "{reaped:?}"
    );
    assert_nothing_left(&docker, &dead).await;
    assert_eq!(docker.list(Some(&detached)).await.unwrap().len(), 1);
    assert_eq!(docker.list(Some(&alive)).await.unwrap().len(), 1);
}
