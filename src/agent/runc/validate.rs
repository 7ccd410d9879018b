//! The checks of a create request, before anything is made.

use std::collections::HashMap;

use super::{PreparedImage, RuntimeError, pb};

fn valid_name(name: &str) -> bool {
    !name.is_empty()
        && name.len() <= 128
        && name
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || b == b'-' || b == b'.')
        && !name.starts_with('.')
}

/// Checks a create request before anything is made.
pub(crate) fn create_request(
    request: &pb::CreateGroupRequest,
    images: &HashMap<String, PreparedImage>,
) -> Result<(), RuntimeError> {
    if !valid_name(&request.group_id) {
        return Err(RuntimeError::invalid(format!(
            "group id {:?} must be 1 to 128 characters of [A-Za-z0-9.-]",
            request.group_id
        )));
    }
    if request.containers.is_empty() {
        return Err(RuntimeError::invalid(
            "a group needs at least one container",
        ));
    }
    if !matches!(
        request.restart_policy.as_str(),
        "" | "Always" | "OnFailure" | "Never"
    ) {
        return Err(RuntimeError::invalid(format!(
            "restart policy {:?} is not Always, OnFailure or Never",
            request.restart_policy
        )));
    }
    let mut names = std::collections::HashSet::new();
    for spec in request.init_containers.iter().chain(&request.containers) {
        if !valid_name(&spec.name) || spec.name.contains('.') {
            return Err(RuntimeError::invalid(format!(
                "container name {:?} must be 1 to 128 characters of [A-Za-z0-9-]",
                spec.name
            )));
        }
        if !names.insert(spec.name.as_str()) {
            return Err(RuntimeError::invalid(format!(
                "container name {} is used twice",
                spec.name
            )));
        }
        if !images.contains_key(&spec.image) {
            return Err(RuntimeError::invalid(format!(
                "container {}: image {} was not prepared",
                spec.name, spec.image
            )));
        }
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn request() -> (pb::CreateGroupRequest, HashMap<String, PreparedImage>) {
        let container = |name: &str| pb::ContainerSpec {
            name: name.into(),
            image: "img".into(),
            ..pb::ContainerSpec::default()
        };
        let images = HashMap::from([(
            "img".to_owned(),
            PreparedImage {
                rootfs: "/nowhere".into(),
                config: super::super::ImageRunConfig::default(),
            },
        )]);
        let request = pb::CreateGroupRequest {
            group_id: "eci-1".into(),
            init_containers: vec![container("init")],
            containers: vec![container("main")],
            ..pb::CreateGroupRequest::default()
        };
        (request, images)
    }

    #[test]
    fn bad_requests_are_refused() {
        let (good, images) = request();
        assert!(create_request(&good, &images).is_ok());
        let bad: [fn(&mut pb::CreateGroupRequest); 6] = [
            |r| r.group_id = "../x".into(),
            |r| r.containers.clear(),
            |r| r.restart_policy = "Sometimes".into(),
            |r| r.containers[0].name = "init".into(),
            |r| r.containers[0].name = "a.b".into(),
            |r| r.containers[0].image = "other".into(),
        ];
        for change in bad {
            let mut request = good.clone();
            change(&mut request);
            assert!(
                matches!(
                    create_request(&request, &images),
                    Err(RuntimeError::InvalidRequest { .. })
                ),
                "{request:?}"
            );
        }
    }
}
