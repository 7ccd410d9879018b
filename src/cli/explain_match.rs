//! `eci-vk explain-match -f pod.yaml`: prints which of the cluster's ImageCaches the pod would
//! start from, and why ([`crate::imagecache::explain_pod`]).

use std::process::ExitCode;

use crate::{
    config::ExplainMatchArgs,
    imagecache::{Policy, explain_pod, read_pod},
};

use super::{Failure, exit, kube_client, runtime};

pub(super) fn main(args: ExplainMatchArgs) -> ExitCode {
    exit("explain-match", run(args))
}

fn run(args: ExplainMatchArgs) -> Result<(), Failure> {
    // A file that is not a pod is bad input, found before the cluster is asked.
    let pod = read_pod(&args.filename).map_err(|error| Failure::usage(&error))?;
    let kubeconfig = match &args.kubeconfig {
        Some(path) => Some(kube_client::read_kubeconfig(path).map_err(|e| Failure::usage(&e))?),
        None => None,
    };
    runtime::block_on(async move {
        let kube = kube_client::client(kubeconfig)
            .await
            .map_err(|error| Failure::runtime(&error))?;
        let policy = Policy {
            auto_default: args.policy.auto_match_image_cache,
            auto_create: args.policy.auto_create_image_cache,
            private_guard: args.policy.image_cache_pull_secret_guard,
        };
        let text = explain_pod(kube, &pod, args.selector.as_deref(), policy)
            .await
            .map_err(|error| Failure::runtime(&error))?;
        print!("{text}");
        Ok(())
    })
}
