//! A pod as Docker sees it: names, labels, command lines and container create bodies.
//!
//! Pure functions of the plan, so the mapping is tested without a daemon.

use std::collections::HashMap;
use std::io;

use bollard::models::{
    ContainerCreateBody, EndpointSettings, HostConfig, NetworkingConfig, PortBinding,
};

use crate::runtime::{
    labels, unit_name, ConfigFile, Container, Plan, Pod, PortPurpose, PortSpec, Program,
};

use super::image::{BINARY_PATH, ENVOY_PATH};

/// Who launched a run, for the janitor. Absent on detached runs.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct Owner {
    pub pid: u32,
    pub host: String,
}

impl Owner {
    /// This process on this machine.
    pub fn current() -> Owner {
        Owner {
            pid: std::process::id(),
            host: this_host(),
        }
    }
}

/// The machine's name as `meshsim.owner-host` records it: `/etc/hostname`, else the kernel's.
pub(crate) fn this_host() -> String {
    ["/etc/hostname", "/proc/sys/kernel/hostname"]
        .iter()
        .filter_map(|p| std::fs::read_to_string(p).ok())
        .map(|s| s.trim().to_string())
        .find(|s| !s.is_empty())
        .unwrap_or_else(|| "unknown".into())
}

/// `meshsim-<run>`: one bridge network per run, so runs never see each other's DNS names.
pub(crate) fn network_name(run_id: &str) -> String {
    sanitize(&format!("meshsim-{run_id}"))
}

/// `meshsim-<run>-<service>-<replica>-<role>`: derived from the run id, never fixed, so two runs
/// (or a crashed one) never collide on a name.
pub(crate) fn container_name(run_id: &str, pod: &Pod, container: &Container) -> String {
    sanitize(&format!(
        "meshsim-{run_id}-{}-{}-{}",
        pod.service,
        pod.replica,
        container.role.as_str()
    ))
}

/// Docker names allow `[a-zA-Z0-9][a-zA-Z0-9_.-]*`.
fn sanitize(name: &str) -> String {
    name.chars()
        .map(|c| {
            if c.is_ascii_alphanumeric() || "_.-".contains(c) {
                c
            } else {
                '-'
            }
        })
        .collect()
}

/// A DNS label for the pod's hostname (`service1-2`): what a sample app reports as its host.
fn hostname(pod: &Pod) -> String {
    let name: String = format!("{}-{}", pod.service, pod.replica)
        .chars()
        .map(|c| {
            if c.is_ascii_alphanumeric() {
                c.to_ascii_lowercase()
            } else {
                '-'
            }
        })
        .collect();
    name.trim_matches('-').chars().take(63).collect()
}

pub(crate) fn owner_labels(owner: Option<&Owner>, into: &mut HashMap<String, String>) {
    if let Some(owner) = owner {
        into.insert(labels::OWNER_PID.into(), owner.pid.to_string());
        into.insert(labels::OWNER_HOST.into(), owner.host.clone());
    }
}

pub(crate) fn network_labels(plan: &Plan, owner: Option<&Owner>) -> HashMap<String, String> {
    let mut l = HashMap::from([
        (labels::RUN.to_string(), plan.run_id.clone()),
        (labels::SCENARIO.to_string(), plan.scenario.clone()),
        (labels::UNIT.to_string(), plan.run_id.clone()),
    ]);
    owner_labels(owner, &mut l);
    l
}

pub(crate) fn container_labels(
    plan: &Plan,
    pod: &Pod,
    container: &Container,
    owner: Option<&Owner>,
) -> HashMap<String, String> {
    let mut l = HashMap::from([
        (labels::RUN.to_string(), plan.run_id.clone()),
        (labels::SCENARIO.to_string(), plan.scenario.clone()),
        (
            labels::UNIT.to_string(),
            unit_name(&pod.service, pod.replica, container.role),
        ),
        (labels::SERVICE.to_string(), pod.service.clone()),
        (labels::REPLICA.to_string(), pod.replica.to_string()),
        (
            labels::ROLE.to_string(),
            container.role.as_str().to_string(),
        ),
        (labels::PORTS.to_string(), ports_label(&pod.ports)),
    ]);
    owner_labels(owner, &mut l);
    l
}

/// `container_port:host_port:purpose,…`; host port `0` when Docker picks it.
pub(crate) fn ports_label(ports: &[PortSpec]) -> String {
    ports
        .iter()
        .map(|p| {
            format!(
                "{}:{}:{}",
                p.container_port,
                p.host_port.unwrap_or(0),
                p.purpose.as_str()
            )
        })
        .collect::<Vec<_>>()
        .join(",")
}

/// The inverse of [`ports_label`]; malformed entries are skipped (labels are user-editable).
pub(crate) fn parse_ports_label(text: &str) -> Vec<PortSpec> {
    text.split(',')
        .filter_map(|entry| {
            let mut parts = entry.split(':');
            let container_port = parts.next()?.trim().parse().ok()?;
            let host_port: u16 = parts.next()?.trim().parse().ok()?;
            let purpose = match parts.next()?.trim() {
                "publish" => PortPurpose::Publish,
                "admin" => PortPurpose::Admin,
                "app" => PortPurpose::App,
                _ => return None,
            };
            Some(PortSpec {
                container_port,
                host_port: (host_port != 0).then_some(host_port),
                purpose,
            })
        })
        .collect()
}

/// The image a container runs: meshsim's own for samples and proxies, the user's otherwise.
pub(crate) fn image_of<'a>(program: &'a Program, meshsim_image: &'a str) -> &'a str {
    match program {
        Program::Image { image, .. } => image,
        Program::Sample { .. } | Program::Proxy { .. } => meshsim_image,
    }
}

/// The full command line. The meshsim image has no ENTRYPOINT, so this is all of argv; a user
/// image keeps its ENTRYPOINT and gets `command` as its CMD (compose's `command:` semantics).
pub(crate) fn command(program: &Program) -> Option<Vec<String>> {
    match program {
        Program::Sample { kind, args } => Some(
            [BINARY_PATH, "service", "--kind", kind]
                .into_iter()
                .map(String::from)
                .chain(args.iter().cloned())
                .collect(),
        ),
        Program::Proxy { config, args } => Some(
            [ENVOY_PATH, "-c", &config.container_path]
                .into_iter()
                .map(String::from)
                .chain(args.iter().cloned())
                .collect(),
        ),
        Program::Image { command, .. } => command.clone(),
    }
}

pub(crate) fn port_key(container_port: u16) -> String {
    format!("{container_port}/tcp")
}

/// How a container gets its network.
pub(crate) enum Netns<'a> {
    /// `containers[0]`: on the run network, with the service name as DNS alias (replicas share
    /// it, so Docker DNS answers with every replica), and every pod port published.
    Own { network: &'a str },
    /// A further container (the sidecar) joins `containers[0]`'s namespace, as in a Kubernetes
    /// pod: `127.0.0.1:<app port>` reaches the app.
    Join { container_id: &'a str },
}

pub(crate) fn create_body(
    plan: &Plan,
    pod: &Pod,
    container: &Container,
    meshsim_image: &str,
    netns: Netns<'_>,
    owner: Option<&Owner>,
) -> ContainerCreateBody {
    let env: Vec<String> = container
        .env
        .iter()
        .map(|(k, v)| format!("{k}={v}"))
        .chain(
            container
                .files
                .iter()
                .map(|f| format!("{}={}", f.env, f.container_path)),
        )
        .collect();
    let mut body = ContainerCreateBody {
        image: Some(image_of(&container.program, meshsim_image).to_string()),
        cmd: command(&container.program),
        env: (!env.is_empty()).then_some(env),
        labels: Some(container_labels(plan, pod, container, owner)),
        ..Default::default()
    };
    match netns {
        Netns::Own { network } => {
            // Both are needed: ExposedPorts declares the port, PortBindings publishes it. Host
            // port None is left out of the JSON, and Docker picks a free one.
            let bindings = pod
                .ports
                .iter()
                .map(|p| {
                    let binding = PortBinding {
                        host_ip: Some("127.0.0.1".into()),
                        host_port: p.host_port.map(|h| h.to_string()),
                    };
                    (port_key(p.container_port), Some(vec![binding]))
                })
                .collect::<HashMap<_, _>>();
            body.hostname = Some(hostname(pod));
            body.exposed_ports = Some(
                pod.ports
                    .iter()
                    .map(|p| port_key(p.container_port))
                    .collect(),
            );
            body.host_config = Some(HostConfig {
                network_mode: Some(network.to_string()),
                port_bindings: Some(bindings),
                ..Default::default()
            });
            // API 1.41 takes exactly one network at create time; that is all a pod needs.
            body.networking_config = Some(NetworkingConfig {
                endpoints_config: Some(HashMap::from([(
                    network.to_string(),
                    EndpointSettings {
                        aliases: Some(vec![pod.service.clone()]),
                        ..Default::default()
                    },
                )])),
            });
        }
        Netns::Join { container_id } => {
            body.host_config = Some(HostConfig {
                network_mode: Some(format!("container:{container_id}")),
                ..Default::default()
            });
        }
    }
    body
}

/// A tar holding one config file at its container path, for `upload_to_container` to `/`
/// before the container starts (no bind mount, so a remote daemon works too).
pub(crate) fn config_tar(config: &ConfigFile) -> io::Result<Vec<u8>> {
    file_tar(&config.container_path, &config.contents, 0o644)
}

/// A tar holding one file at `container_path` with `mode`.
pub(crate) fn file_tar(container_path: &str, contents: &[u8], mode: u32) -> io::Result<Vec<u8>> {
    let mut tar = tar::Builder::new(Vec::new());
    let mut header = tar::Header::new_gnu();
    header.set_entry_type(tar::EntryType::Regular);
    header.set_mode(mode);
    header.set_size(contents.len() as u64);
    // Now, not 0: a proxy notices a replaced config by its modification time (and size), and
    // a `reload` fault's new config may well have the old one's size.
    let now = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map_or(0, |d| d.as_secs());
    header.set_mtime(now);
    let path = container_path.trim_start_matches('/');
    tar.append_data(&mut header, path, contents)?;
    tar.into_inner()
}

#[cfg(test)]
mod tests {
    use std::path::PathBuf;

    use super::*;
    use crate::runtime::Role;

    fn plan(pods: Vec<Pod>) -> Plan {
        Plan {
            run_id: "r1".into(),
            scenario: "front-proxy".into(),
            scenario_path: PathBuf::from("/s/front.yaml"),
            pods,
            detached: false,
        }
    }

    fn pod() -> Pod {
        Pod {
            wave: 0,
            service: "service1".into(),
            replica: 2,
            containers: vec![
                Container {
                    role: Role::App,
                    program: Program::Sample {
                        kind: "http".into(),
                        args: vec!["--port".into(), "8080".into()],
                    },
                    env: vec![("SERVICE_NAME".into(), "1".into())],
                    files: vec![],
                },
                Container {
                    role: Role::Sidecar,
                    program: Program::Proxy {
                        config: ConfigFile {
                            source: "/s/envoy.yaml".into(),
                            container_path: "/etc/meshsim/envoy.yaml".into(),
                            contents: b"admin: {}\n".to_vec(),
                        },
                        args: vec!["--concurrency".into(), "1".into()],
                    },
                    env: vec![],
                    files: vec![],
                },
            ],
            ports: vec![
                PortSpec {
                    container_port: 8000,
                    host_port: None,
                    purpose: PortPurpose::Publish,
                },
                PortSpec {
                    container_port: 8001,
                    host_port: Some(18001),
                    purpose: PortPurpose::Admin,
                },
            ],
        }
    }

    #[test]
    fn names_derive_from_the_run() {
        let pod = pod();
        assert_eq!(
            container_name("r1", &pod, &pod.containers[1]),
            "meshsim-r1-service1-2-sidecar"
        );
        assert_eq!(network_name("r1"), "meshsim-r1");
        assert_eq!(sanitize("a b#c/d"), "a-b-c-d");
        assert_eq!(hostname(&pod), "service1-2");
    }

    #[test]
    fn commands_use_the_image_paths_and_envoy_name() {
        let pod = pod();
        assert_eq!(
            command(&pod.containers[0].program).unwrap(),
            [
                "/usr/local/bin/meshsim",
                "service",
                "--kind",
                "http",
                "--port",
                "8080"
            ]
        );
        assert_eq!(
            command(&pod.containers[1].program).unwrap(),
            [
                "/usr/local/bin/envoy",
                "-c",
                "/etc/meshsim/envoy.yaml",
                "--concurrency",
                "1"
            ]
        );
        let user = Program::Image {
            image: "org/app:1".into(),
            command: None,
        };
        assert_eq!(command(&user), None);
        assert_eq!(image_of(&user, "meshsim:abc"), "org/app:1");
    }

    #[test]
    fn owner_of_the_netns_publishes_on_loopback_with_the_service_alias() {
        let pod = pod();
        let plan = plan(vec![pod.clone()]);
        let owner = Owner {
            pid: 42,
            host: "box".into(),
        };
        let body = create_body(
            &plan,
            &pod,
            &pod.containers[0],
            "meshsim:abc",
            Netns::Own {
                network: "meshsim-r1",
            },
            Some(&owner),
        );
        assert_eq!(body.image.as_deref(), Some("meshsim:abc"));
        assert_eq!(body.env, Some(vec!["SERVICE_NAME=1".to_string()]));
        assert_eq!(
            body.exposed_ports,
            Some(vec!["8000/tcp".into(), "8001/tcp".into()])
        );
        let host = body.host_config.unwrap();
        assert_eq!(host.network_mode.as_deref(), Some("meshsim-r1"));
        let bindings = host.port_bindings.unwrap();
        let admin = bindings["8001/tcp"].as_ref().unwrap();
        assert_eq!(admin[0].host_ip.as_deref(), Some("127.0.0.1"));
        assert_eq!(admin[0].host_port.as_deref(), Some("18001"));
        assert_eq!(bindings["8000/tcp"].as_ref().unwrap()[0].host_port, None);
        let endpoints = body.networking_config.unwrap().endpoints_config.unwrap();
        assert_eq!(
            endpoints["meshsim-r1"].aliases,
            Some(vec!["service1".to_string()])
        );
        let l = body.labels.unwrap();
        assert_eq!(l[labels::UNIT], "service1#2/app");
        assert_eq!(l[labels::REPLICA], "2");
        assert_eq!(l[labels::OWNER_PID], "42");
        assert_eq!(l[labels::OWNER_HOST], "box");
        assert_eq!(l[labels::PORTS], "8000:0:publish,8001:18001:admin");
    }

    #[test]
    fn sidecar_joins_the_namespace_and_publishes_nothing() {
        let pod = pod();
        let mut plan = plan(vec![pod.clone()]);
        plan.detached = true;
        let body = create_body(
            &plan,
            &pod,
            &pod.containers[1],
            "meshsim:abc",
            Netns::Join {
                container_id: "abc123",
            },
            None,
        );
        let host = body.host_config.unwrap();
        assert_eq!(host.network_mode.as_deref(), Some("container:abc123"));
        assert!(host.port_bindings.is_none());
        assert!(body.exposed_ports.is_none() && body.networking_config.is_none());
        let l = body.labels.unwrap();
        assert!(!l.contains_key(labels::OWNER_PID));
        assert_eq!(l[labels::ROLE], "sidecar");
    }

    #[test]
    fn ports_label_round_trips() {
        let pod = pod();
        assert_eq!(parse_ports_label(&ports_label(&pod.ports)), pod.ports);
        assert!(parse_ports_label("junk,1:2").is_empty());
    }

    #[test]
    fn config_tar_holds_the_file_at_its_container_path() {
        let pod = pod();
        let Program::Proxy { config, .. } = &pod.containers[1].program else {
            unreachable!()
        };
        let bytes = config_tar(config).unwrap();
        let mut archive = tar::Archive::new(&bytes[..]);
        let mut entry = archive.entries().unwrap().next().unwrap().unwrap();
        assert_eq!(
            entry.path().unwrap().to_str(),
            Some("etc/meshsim/envoy.yaml")
        );
        let mut text = String::new();
        io::Read::read_to_string(&mut entry, &mut text).unwrap();
        assert_eq!(text, "admin: {}\n");
    }
}
