//! What the device offers and acknowledges, and its config space.

use super::*;

/// Features, protocol features, queue count and the config space (mount tag).
#[test]
fn negotiation_and_config() {
    let (_share, daemon) = start("hostshare", &[]);
    let mut c = connect_with(
        &daemon,
        VmmOpts {
            mem: MemSetup::AddMemRegions,
            ..VmmOpts::two_regions()
        },
    );

    let f = c.vmm.device_features;
    for (bit, name) in [
        (VIRTIO_F_VERSION_1, "VIRTIO_F_VERSION_1"),
        (VIRTIO_RING_F_INDIRECT_DESC, "VIRTIO_RING_F_INDIRECT_DESC"),
        (VIRTIO_RING_F_EVENT_IDX, "VIRTIO_RING_F_EVENT_IDX"),
        (VIRTIO_9P_MOUNT_TAG, "VIRTIO_9P_MOUNT_TAG"),
        (
            VhostUserVirtioFeatures::PROTOCOL_FEATURES.bits(),
            "VHOST_USER_F_PROTOCOL_FEATURES",
        ),
    ] {
        assert!(f & bit != 0, "device features {f:#x} lack {name}");
    }
    let wanted = VIRTIO_F_VERSION_1
        | VIRTIO_RING_F_INDIRECT_DESC
        | VIRTIO_RING_F_EVENT_IDX
        | VIRTIO_9P_MOUNT_TAG
        | VHOST_USER_F_PROTOCOL_FEATURES;
    assert_eq!(c.vmm.acked_features, wanted, "SET_FEATURES accepted");

    let pf = c.vmm.protocol_features;
    for (feat, name) in [
        (VhostUserProtocolFeatures::CONFIG, "CONFIG"),
        (VhostUserProtocolFeatures::MQ, "MQ"),
        (VhostUserProtocolFeatures::REPLY_ACK, "REPLY_ACK"),
        (
            VhostUserProtocolFeatures::CONFIGURE_MEM_SLOTS,
            "CONFIGURE_MEM_SLOTS",
        ),
    ] {
        assert!(pf.contains(feat), "protocol features {pf:?} lack {name}");
    }
    assert_eq!(c.vmm.queue_num, 1, "GET_QUEUE_NUM");
    let slots = c
        .vmm
        .frontend()
        .clone()
        .get_max_mem_slots()
        .expect("GET_MAX_MEM_SLOTS");
    assert!(slots >= 2, "GET_MAX_MEM_SLOTS = {slots}");

    // Config space: le16 tag_len, then the tag, no NUL.
    let tag = b"hostshare";
    let cfg = c.vmm.get_config(0, 2 + tag.len() as u32);
    let mut want = (tag.len() as u16).to_le_bytes().to_vec();
    want.extend_from_slice(tag);
    assert_eq!(cfg, want, "GET_CONFIG(0, {})", 2 + tag.len());
    // A frontend may read just the length field first.
    assert_eq!(
        c.vmm.get_config(0, 2),
        want[..2].to_vec(),
        "GET_CONFIG(0, 2)"
    );

    // The full-size (1024-entry) ring set up through ADD_MEM_REG works.
    let (msize, v) = c.version(MSIZE, "9P2000.L");
    assert_eq!(v, "9P2000.L");
    assert!(msize <= MSIZE);
}

/// A different tag length, to be sure the config is not hard-wired.
#[test]
fn config_space_other_tag() {
    let tag = "t";
    let (_share, daemon) = start(tag, &[]);
    let c = connect(&daemon);
    assert_eq!(c.vmm.get_config(0, 3), vec![1, 0, b't']);
}
