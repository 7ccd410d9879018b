//! The ECI OpenAPI client: request signing (V1 and V3), typed calls, retries and a local budget.
//!
//! The node only ever speaks this API (DESIGN.md), to Alibaba Cloud or to the emulator on
//! loopback, through the same code. [`sign`] is shared with the emulator, which verifies
//! signatures with it.
//!
//! ```no_run
//! # async fn demo() -> Result<(), eci_vk::eci::Error> {
//! use eci_vk::eci::{Client, ClientConfig, Credentials, DescribeImageCaches, Endpoint, ProcessEnv};
//!
//! let mut config = ClientConfig::new("cn-hangzhou", Credentials::from_env(&ProcessEnv)?);
//! config.endpoint = Endpoint::Url("http://127.0.0.1:8080/".into()); // e.g. the emulator
//! let client = Client::new(config)?;
//! let caches = client
//!     .describe_image_caches(&DescribeImageCaches {
//!         match_images: vec!["nginx:1.25".into()],
//!         ..Default::default()
//!     })
//!     .await?;
//! println!("{} caches", caches.total_count);
//! # Ok(())
//! # }
//! ```

pub mod annotation;
pub mod annotation_value;
mod budget;
mod client;
pub mod container_group;
pub mod container_ops;
pub mod container_spec;
mod credentials;
mod error;
pub mod image_cache;
pub mod instance_spec;
pub mod params;
mod retry;
pub mod sign;
pub mod tag;
pub mod usage;

pub use budget::{Budget, BudgetConfig, Quota};
/// The signed request the client sends, for the emulator's sign → verify checks.
pub(crate) use client::signed_request;
pub use client::{
    API_VERSION, Action, AttemptRecord, Client, ClientConfig, Clock, EmptyResponse, Endpoint, Gate,
    NonceSource, Observer, SignatureVersion,
};
pub use container_group::{
    ContainerGroup, ContainerGroupStatus, CreateContainerGroup, CreateContainerGroupResponse,
    DescribeContainerGroups, DescribeContainerGroupsResponse, Event, UpdateContainerGroup,
};
pub use container_ops::{
    DeleteContainerGroup, DescribeContainerGroupMetric, DescribeContainerGroupMetricResponse,
    DescribeContainerLog, DescribeContainerLogResponse, ExecContainerCommand,
    ExecContainerCommandResponse, RestartContainerGroup,
};
pub use container_spec::{Container, ImageRegistryCredential, Volume};
pub use credentials::{
    ChainSettings, Credentials, DEFAULT_METADATA_ENDPOINT, DEFAULT_SESSION_NAME,
    DEFAULT_STS_ENDPOINT, ENV_ACCESS_KEY_ID, ENV_ACCESS_KEY_SECRET, ENV_CLI_PROFILE_DISABLED,
    ENV_CREDENTIALS_FILE, ENV_ECS_METADATA, ENV_ECS_METADATA_DISABLED, ENV_IMDSV1_DISABLED,
    ENV_OIDC_PROVIDER_ARN, ENV_OIDC_TOKEN_FILE, ENV_PROFILE, ENV_ROLE_ARN, ENV_ROLE_SESSION_NAME,
    ENV_SECURITY_TOKEN, ENV_STS_ENDPOINT, ENV_STS_REGION, ENV_VPC_ENDPOINT_ENABLED, Env,
    FILE_ACCESS_KEY_ID, FILE_ACCESS_KEY_SECRET, FILE_SECURITY_TOKEN, ProcessEnv, Provider,
    REREAD_FILES, STS_API_VERSION, SecretValue, default_chain,
};
pub use error::{ApiError, Error};
pub use image_cache::{
    CreateImageCache, CreateImageCacheResponse, DeleteImageCache, DescribeImageCaches,
    DescribeImageCachesResponse, ImageCache, ImageCacheStatus, UpdateImageCache,
};
pub use instance_spec::{DEFAULT_SPEC, SPECS, round_up_spec};
pub use retry::RetryPolicy;
pub use tag::Tag;
pub use usage::{ListUsage, ListUsageResponse};
