//! The run's private network: a user-defined bridge, because Docker's embedded DNS (and so
//! service aliases) only works on those, never on the default bridge.

use bollard::models::NetworkCreateRequest;
use bollard::Docker;

use crate::runtime::Plan;

use super::error::{is_not_found, DockerError};
use super::spec::{network_labels, network_name, Owner};

/// Creates `meshsim-<run>` and returns its id.
pub(crate) async fn create(
    docker: &Docker,
    endpoint: &str,
    plan: &Plan,
    owner: Option<&Owner>,
) -> Result<String, DockerError> {
    let name = network_name(&plan.run_id);
    let request = NetworkCreateRequest {
        name: name.clone(),
        driver: Some("bridge".into()),
        labels: Some(network_labels(plan, owner)),
        ..Default::default()
    };
    let created = docker
        .create_network(request)
        .await
        .map_err(|e| DockerError::api(endpoint, format!("creating network {name}"), e))?;
    Ok(created.id)
}

/// Removes a network; already gone counts as removed.
pub(crate) async fn remove(docker: &Docker, endpoint: &str, id: &str) -> Result<(), DockerError> {
    match docker.remove_network(id).await {
        Ok(()) => Ok(()),
        Err(e) if is_not_found(&e) => Ok(()),
        Err(e) => Err(DockerError::api(
            endpoint,
            format!("removing network {id}"),
            e,
        )),
    }
}
