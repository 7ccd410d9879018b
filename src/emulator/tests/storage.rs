//! Disks are one group's at a time and at most six a group; an NFS share is anyone's.

use super::*;

fn group_with(name: &str, volumes: &[(&str, &str)]) -> Req {
    let mut req = Req::new(
        "CreateContainerGroup",
        &[
            ("ContainerGroupName", name),
            ("Container.1.Name", "a"),
            ("Container.1.Image", "nginx"),
        ],
    );
    for (k, v) in volumes {
        req = req.param(k, v);
    }
    req
}

const DISK: &[(&str, &str)] = &[
    ("Volume.1.Name", "data"),
    ("Volume.1.Type", "DiskVolume"),
    ("Volume.1.DiskVolume.DiskId", "d-shared1"),
    ("Container.1.VolumeMount.1.Name", "data"),
    ("Container.1.VolumeMount.1.MountPath", "/data"),
];

#[tokio::test]
async fn a_disk_is_attached_to_one_group_until_it_is_deleted() {
    within(async {
        let (handle, c) = start_default().await;
        let created = c.send(group_with("first", DISK)).await;
        assert_eq!(created.status, 200, "{}", created.body);
        let id = created.body["ContainerGroupId"]
            .as_str()
            .expect("an id")
            .to_owned();
        let second = c.send(group_with("second", DISK)).await;
        assert_eq!(
            (second.status, second.code()),
            (400, "IncorrectDiskStatus"),
            "{}",
            second.body
        );
        assert!(
            second.body["Message"]
                .as_str()
                .is_some_and(|m| m.contains("d-shared1") && m.contains(&id))
        );
        // The same disk through ECI's documented FlexVolume form is the same disk.
        let flex = c
            .send(group_with(
                "third",
                &[
                    ("Volume.1.Name", "data"),
                    ("Volume.1.Type", "FlexVolume"),
                    ("Volume.1.FlexVolume.Driver", "alicloud/disk"),
                    ("Volume.1.FlexVolume.Options", r#"{"volumeId":"d-shared1"}"#),
                ],
            ))
            .await;
        assert_eq!(flex.code(), "IncorrectDiskStatus", "{}", flex.body);
        c.call("DeleteContainerGroup", &[("ContainerGroupId", &id)])
            .await;
        let again = c.send(group_with("second", DISK)).await;
        assert_eq!(again.status, 200, "{}", again.body);
        handle.shutdown().await;
    })
    .await;
}

#[tokio::test]
async fn at_most_six_disks_a_group_and_nfs_is_shared() {
    within(async {
        let (handle, c) = start_default().await;
        let mut many: Vec<(String, String)> = Vec::new();
        for i in 1..=7 {
            many.push((format!("Volume.{i}.Name"), format!("v{i}")));
            many.push((format!("Volume.{i}.Type"), "DiskVolume".into()));
            many.push((
                format!("Volume.{i}.DiskVolume.DiskId"),
                format!("d-many{i}"),
            ));
        }
        let params: Vec<(&str, &str)> =
            many.iter().map(|(k, v)| (k.as_str(), v.as_str())).collect();
        let refused = c.send(group_with("many", &params)).await;
        assert_eq!(refused.code(), "DiskNumber.LimitExceed", "{}", refused.body);
        let six = c.send(group_with("six", &params[..18])).await;
        assert_eq!(six.status, 200, "{}", six.body);

        let nfs = [
            ("Volume.1.Name", "share"),
            ("Volume.1.Type", "NFSVolume"),
            ("Volume.1.NFSVolume.Server", "nas.example"),
            ("Volume.1.NFSVolume.Path", "/exports/a"),
        ];
        for name in ["nfs-one", "nfs-two"] {
            let answer = c.send(group_with(name, &nfs)).await;
            assert_eq!(answer.status, 200, "{name}: {}", answer.body);
        }
        handle.shutdown().await;
    })
    .await;
}
