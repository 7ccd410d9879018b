//! Properties of the wire between the node's client and the emulator (issue #20): what the
//! client signs the emulator verifies, and what the client flattens the emulator reads back.

use proptest::{collection, option, prelude::*};
use serde::Serialize;

use crate::{
    eci::{
        container_spec::{Container, EnvironmentVar},
        params::to_params,
        tag::Tag,
    },
    emulator::{
        fuzz::sign_then_verify,
        params::Params,
        spec::{parse_container, parse_tags},
    },
};

/// The flattened part of a CreateContainerGroup request this property covers.
#[derive(Serialize)]
struct Request {
    #[serde(rename = "Container")]
    containers: Vec<Container>,
    #[serde(rename = "Tag")]
    tags: Vec<Tag>,
}

fn container() -> impl Strategy<Value = Container> {
    (
        "[a-z][a-z0-9-]{0,10}",
        collection::vec("\\PC{0,16}", 0..4),
        collection::vec("(?s).{0,16}", 0..4),
        collection::vec(
            ("[A-Za-z_][A-Za-z0-9_.]{0,10}", option::of("\\PC{0,16}")),
            0..4,
        ),
    )
        .prop_map(|(name, commands, args, env)| Container {
            name,
            image: "registry.example.com/app:1".into(),
            commands,
            args,
            environment_vars: env
                .into_iter()
                .map(|(key, value)| EnvironmentVar {
                    key,
                    value,
                    field_ref: None,
                })
                .collect(),
            ..Container::default()
        })
}

proptest! {
    /// Any parameters, with any characters in names and values, signed by the client (V1 and
    /// V3) and sent as it sends them, decode to what was signed and verify.
    #[test]
    fn what_the_client_signs_the_emulator_verifies(
        params in collection::btree_map("\\PC{1,12}", "(?s).{0,24}", 0..8)
    ) {
        sign_then_verify(&params);
    }

    /// Containers and tags flattened by the client (`Container.N.Arg.M`, `Tag.N.Key`) are read
    /// back by the emulator's parser as they were: every argument in its place, empty ones too.
    #[test]
    fn what_the_client_flattens_the_emulator_reads_back(
        containers in collection::vec(container(), 1..4),
        tags in collection::btree_map("[a-z][a-z0-9./-]{0,20}", "[a-z0-9 ]{0,20}", 0..5),
    ) {
        let tags: Vec<Tag> = tags.into_iter().map(|(key, value)| Tag { key, value }).collect();
        let request = Request { containers: containers.clone(), tags: tags.clone() };
        let params = Params::new(to_params(&request).map_err(TestCaseError::fail)?);
        let read = params.objects("Container").map_err(|e| TestCaseError::fail(e.message))?;
        prop_assert_eq!(read.len(), containers.len());
        for (sent, read) in containers.iter().zip(&read) {
            let spec = parse_container(read).map_err(|e| TestCaseError::fail(e.message))?;
            prop_assert_eq!(&spec.name, &sent.name);
            prop_assert_eq!(&spec.commands, &sent.commands);
            prop_assert_eq!(&spec.args, &sent.args);
            let env: Vec<(String, String)> =
                spec.env.into_iter().map(|e| (e.key, e.value)).collect();
            let expected: Vec<(String, String)> = sent
                .environment_vars
                .iter()
                .map(|e| (e.key.clone(), e.value.clone().unwrap_or_default()))
                .collect();
            prop_assert_eq!(env, expected);
        }
        let read_tags = parse_tags(&params).map_err(|e| TestCaseError::fail(e.message))?;
        let read_tags: Vec<(String, String)> =
            read_tags.into_iter().map(|t| (t.key, t.value)).collect();
        let tags: Vec<(String, String)> = tags.into_iter().map(|t| (t.key, t.value)).collect();
        prop_assert_eq!(read_tags, tags);
    }
}
