//! CreateContainerGroup, DescribeContainerGroups, DeleteContainerGroup, UpdateContainerGroup,
//! RestartContainerGroup.

use serde_json::{Value, json};

use super::{Ctx, Outcome, caches, page, render};
use crate::emulator::{
    disks,
    driver::{GroupMode, Work},
    error::ApiError,
    instance,
    matching::{self, MatchFilter},
    params::Params,
    spec::{self, ContainerSpec},
    state::{ContainerRuntime, Group, GroupStatus, Store},
};

/// Most ids in `ContainerGroupIds`.
const MAX_IDS: usize = 20;

fn find<'a>(store: &'a mut Store, region: &str, id: &str) -> Result<&'a mut Group, ApiError> {
    store
        .groups
        .get_mut(id)
        .filter(|g| g.region_id == region)
        .ok_or_else(|| ApiError::not_found("container group", id))
}

pub fn create(ctx: &Ctx<'_>, store: &mut Store, p: &Params) -> Result<Outcome, ApiError> {
    let mut spec = spec::parse_group(p)?;
    disks::check_new(store, ctx.region, &spec)?;
    let landing = super::zones::land(
        ctx.region,
        &spec.zone_id,
        &spec.vswitch_id,
        &ctx.core.settings.vswitch_zones,
    )?;
    // The group is in one vSwitch, as DescribeContainerGroups reports it.
    spec.vswitch_id.clone_from(&landing.vswitch);
    // The first spec in stock, in the order asked ("multiple specifications").
    let gpus = spec
        .containers
        .iter()
        .chain(&spec.init_containers)
        .map(|c| c.gpu)
        .max()
        .unwrap_or(0);
    if let Some((name, cpu, memory)) =
        instance::choose(&spec.options, &ctx.core.settings.sold_out, gpus)?
    {
        spec.instance_type = name;
        spec.cpu = cpu;
        spec.memory = memory;
    }
    let now = ctx.now;
    // The cache to start from: explicit beats automatic (reference §3.6).
    let mut hit: Option<(String, Option<String>)> = None;
    let mut missed = false;
    let mut build_full = false;
    if let Some(cache_id) = &spec.image_snapshot_id {
        // Unknown: the reference names no code; `InvalidImageSnapshotId.NotFound` follows the
        // gateway's `Invalid{Parameter}.NotFound` style. Not Ready: `IncorrectStatus`.
        let cache = store
            .caches
            .get(cache_id)
            .filter(|c| c.region_id == ctx.region)
            .ok_or_else(|| {
                ApiError::bad_request(
                    "InvalidImageSnapshotId.NotFound",
                    format!("The specified image cache {cache_id} does not exist."),
                )
            })?;
        if !cache.usable(now) {
            return Err(ApiError::bad_request(
                "IncorrectStatus",
                format!(
                    "The production for specified image cache {cache_id} is not yet complete (status {}).",
                    cache.status.as_str()
                ),
            ));
        }
        hit = Some((cache_id.clone(), cache.snapshot_id.clone()));
    } else if spec.auto_match_image_cache {
        let candidates = store.caches.values().filter(|c| c.region_id == ctx.region);
        let images = spec.images();
        let wanted = images
            .iter()
            .map(|i| matching::normalize_image(i))
            .collect::<std::collections::BTreeSet<_>>()
            .len();
        match matching::rank(candidates, &images, MatchFilter::default(), now).first() {
            Some((cache, score)) => {
                hit = Some((cache.id.clone(), cache.snapshot_id.clone()));
                // "If no cache is (fully) matched, the system automatically creates an image
                // cache" (reference §3.6): a partial hit starts this group and builds one.
                build_full = score.matched < wanted;
            }
            None => {
                missed = true;
                build_full = true;
            }
        }
    }
    if p.bool("DryRun")? == Some(true) {
        return Err(ApiError::bad_request(
            "DryRunOperation",
            "Request validation has been passed with DryRun flag set.",
        ));
    }
    let id = ctx.core.ids.resource_id("eci");
    if spec.options.auto_create_eip || !spec.options.eip_instance_id.is_empty() {
        spec.options.internet_ip = instance::eip_address(&id);
    }
    if !spec.options.ipv6_address.is_empty() {
        spec.options.ipv6_address = instance::ipv6_address(&id);
    }
    if let Some((cache_id, _)) = &hit
        && let Some(cache) = store.caches.get_mut(cache_id)
    {
        cache.last_matched_time = Some(now);
    }
    let zone_id = landing.zone;
    let waiting = |c: &ContainerSpec| ContainerRuntime::waiting(&c.name, "ContainerCreating");
    let mut group = Group {
        id: id.clone(),
        region_id: ctx.region.to_owned(),
        status: GroupStatus::Scheduling,
        status_since: now,
        creation_time: now,
        succeeded_time: None,
        failed_time: None,
        expired_time: None,
        // Set once the agent created the group: the real agent reports the address of the
        // group's network namespace, the simulated one none (then the emulator allocates).
        intranet_ip: String::new(),
        zone_id,
        events: Vec::new(),
        containers: spec.containers.iter().map(waiting).collect(),
        init_containers: spec.init_containers.iter().map(waiting).collect(),
        image_cache_id: hit.as_ref().map(|(c, _)| c.clone()),
        snapshot_id: hit.as_ref().and_then(|(_, s)| s.clone()),
        generation: 0,
        spec,
    };
    if let Some((cache_id, _)) = &hit {
        group.event(
            "Normal",
            "SuccessfulHitImageCache",
            format!("[eci.imagecache]Successfully hit image cache {cache_id}, eci will be scheduled with this image cache."),
            now,
        );
    } else if missed {
        group.event("Warning", "ImageCacheMissed", "Missed image cache.", now);
    }
    let mut work = vec![Work::Group {
        id: id.clone(),
        generation: 0,
        mode: GroupMode::Create,
    }];
    if build_full && let Some((cache_id, build)) = caches::create_automatic(ctx, store, &group) {
        group.event(
            "Normal",
            "ImageCacheAutoCreated",
            format!(
                "Creating image cache {cache_id} from the images of this instance for later ones."
            ),
            now,
        );
        work.push(build);
    }
    store.groups.insert(id.clone(), group);
    Ok((json!({"ContainerGroupId": id}), work))
}

pub fn describe(ctx: &Ctx<'_>, store: &Store, p: &Params) -> Result<Value, ApiError> {
    let ids = p.json_strings("ContainerGroupIds")?;
    if ids.as_ref().is_some_and(|ids| ids.len() > MAX_IDS) {
        return Err(ApiError::invalid(
            "ContainerGroupIds",
            format!("at most {MAX_IDS} ids"),
        ));
    }
    let status = p
        .get("Status")
        .map(|s| {
            GroupStatus::parse(s)
                .ok_or_else(|| ApiError::invalid("Status", format!("{s:?} is not a status")))
        })
        .transpose()?;
    let tags = spec::parse_tags(p)?;
    let limit = page::limit(p, 20, 20)?;
    let with_events = p.bool("WithEvent")?.unwrap_or(true);
    let name = p.get("ContainerGroupName");
    let same = |want: Option<&str>, have: &str| want.is_none_or(|w| w == have);
    // By ids: those groups only, not a scan of every group in the store.
    let candidates: Box<dyn Iterator<Item = &Group>> = match &ids {
        Some(ids) => {
            let unique: std::collections::BTreeSet<&String> = ids.iter().collect();
            Box::new(unique.into_iter().filter_map(|id| store.groups.get(id)))
        }
        None => Box::new(store.groups.values()),
    };
    let matches: Vec<&Group> = candidates
        .filter(|g| g.region_id == ctx.region)
        .filter(|g| same(name, &g.spec.name))
        .filter(|g| status.is_none_or(|s| g.status == s))
        .filter(|g| same(p.get("ZoneId"), &g.zone_id))
        .filter(|g| same(p.get("VSwitchId"), &g.spec.vswitch_id))
        .filter(|g| same(p.get("SecurityGroupId"), &g.spec.security_group_id))
        .filter(|g| same(p.get("ResourceGroupId"), &g.spec.resource_group_id))
        .filter(|g| spec::tags_match(&g.spec.tags, &tags))
        .collect();
    let total = matches.len();
    let (items, next) = page::page(
        matches,
        |g| page::time_key(g.creation_time, &g.id),
        p.get("NextToken"),
        limit,
    )?;
    Ok(json!({
        "TotalCount": total,
        "NextToken": next,
        "ContainerGroups": items.iter().map(|g| render::group(g, with_events)).collect::<Vec<_>>(),
    }))
}

pub fn delete(ctx: &Ctx<'_>, store: &mut Store, p: &Params) -> Result<Outcome, ApiError> {
    let id = p.required("ContainerGroupId")?;
    let force = p.bool("Force")?.unwrap_or(false);
    let group = find(store, ctx.region, id)?;
    if group.status == GroupStatus::Terminating {
        // Already being deleted: a repeat is answered like the first (no second deletion).
        return Ok((json!({}), Vec::new()));
    }
    let live = matches!(
        group.status,
        GroupStatus::Pending
            | GroupStatus::Running
            | GroupStatus::Restarting
            | GroupStatus::Updating
    );
    let pre_stop = group.spec.containers.iter().any(|c| c.has_pre_stop);
    let grace = group.spec.termination_grace_period_seconds.unwrap_or(30);
    group.generation += 1;
    if live && pre_stop && !force {
        // A running instance with preStop hooks is `Terminating` until they ran (reference §2.3).
        group.set_status(GroupStatus::Terminating, ctx.now);
        group.event(
            "Normal",
            "Killing",
            "Stopping containers (preStop hooks run first).",
            ctx.now,
        );
        let work = Work::DeleteGroup {
            id: id.to_owned(),
            grace_seconds: grace,
            force: false,
            remove_after: true,
        };
        return Ok((json!({}), vec![work]));
    }
    store.groups.remove(id);
    Ok((
        json!({}),
        vec![Work::DeleteGroup {
            id: id.to_owned(),
            grace_seconds: 0,
            force: true,
            remove_after: false,
        }],
    ))
}

pub fn restart(ctx: &Ctx<'_>, store: &mut Store, p: &Params) -> Result<Outcome, ApiError> {
    let id = p.required("ContainerGroupId")?;
    let group = find(store, ctx.region, id)?;
    if !group.status.allows_restart_or_update() {
        return Err(ApiError::incorrect_status(
            "container group",
            id,
            group.status.as_str(),
            "a restart",
        ));
    }
    group.generation += 1;
    group.set_status(GroupStatus::Restarting, ctx.now);
    group.event(
        "Normal",
        "Restarting",
        "Restarting the container group.",
        ctx.now,
    );
    Ok((
        json!({}),
        vec![Work::Group {
            id: id.to_owned(),
            generation: group.generation,
            mode: GroupMode::Restart,
        }],
    ))
}

/// Applies `Container.N` of an update: `RenewUpdate` replaces the list, `IncrementalUpdate`
/// changes the named containers' given fields and adds new ones.
fn update_containers(
    current: &[ContainerSpec],
    given: &[Params],
    incremental: bool,
) -> Result<Vec<ContainerSpec>, ApiError> {
    if !incremental {
        return given.iter().map(spec::parse_container).collect();
    }
    let mut out = current.to_vec();
    for c in given {
        let name = c.required("Name")?;
        match out.iter_mut().find(|o| o.name == name) {
            Some(existing) => {
                if let Some(image) = c.get("Image") {
                    image.clone_into(&mut existing.image);
                }
                if let Some(cpu) = c.float("Cpu")? {
                    existing.cpu = cpu;
                }
                if let Some(memory) = c.float("Memory")? {
                    existing.memory = memory;
                }
                if c.has("Command") {
                    existing.commands = c.strings("Command")?;
                }
                if c.has("Arg") {
                    existing.args = c.strings("Arg")?;
                }
                if c.has("EnvironmentVar") {
                    existing.env = spec::parse_env(c)?;
                }
            }
            None => out.push(spec::parse_container(c)?),
        }
    }
    Ok(out)
}

pub fn update(ctx: &Ctx<'_>, store: &mut Store, p: &Params) -> Result<Outcome, ApiError> {
    let id = p.required("ContainerGroupId")?;
    let incremental = p
        .one_of("UpdateType", &["RenewUpdate", "IncrementalUpdate"])?
        .is_some_and(|t| t == "IncrementalUpdate");
    let group = find(store, ctx.region, id)?;
    if !group.status.allows_restart_or_update() {
        return Err(ApiError::incorrect_status(
            "container group",
            id,
            group.status.as_str(),
            "an update",
        ));
    }
    let mut next = group.spec.clone();
    if let Some(policy) = p.one_of("RestartPolicy", &["Always", "OnFailure", "Never"])? {
        next.restart_policy = policy;
    }
    if p.has("Tag") {
        next.tags = spec::parse_tags(p)?;
    }
    let containers = p.objects("Container")?;
    if !containers.is_empty() {
        next.containers = update_containers(&next.containers, &containers, incremental)?;
    }
    let init = p.objects("InitContainer")?;
    if !init.is_empty() {
        next.init_containers = update_containers(&next.init_containers, &init, incremental)?;
    }
    spec::check_containers(&next.containers, &next.init_containers)?;
    let (cpu, memory) = (p.float("Cpu")?, p.float("Memory")?);
    if cpu.is_some() || memory.is_some() || !containers.is_empty() || !init.is_empty() {
        let (cpu, memory) =
            spec::resolve_spec(cpu, memory, &next.containers, &next.init_containers);
        next.cpu = cpu;
        next.memory = memory;
    }
    let group = find(store, ctx.region, id)?;
    group.generation += 1;
    group.spec = next;
    group.set_status(GroupStatus::Updating, ctx.now);
    group.event(
        "Normal",
        "Updating",
        "Updating the container group.",
        ctx.now,
    );
    Ok((
        json!({}),
        vec![Work::Group {
            id: id.to_owned(),
            generation: group.generation,
            mode: GroupMode::Update,
        }],
    ))
}
