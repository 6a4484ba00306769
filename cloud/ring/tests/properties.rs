//! Properties of the ring: owners are members, membership changes move only the keys they
//! must, load is spread evenly, normalisation is stable.

use std::collections::{BTreeSet, HashMap};

use proptest::collection::{btree_set, vec};
use proptest::prelude::*;
use xmidt_ring::{Instance, Ring, RingOptions};

fn options(vnode_count: u32) -> RingOptions {
    RingOptions {
        vnode_count,
        ..RingOptions::default()
    }
}

fn build(members: &BTreeSet<String>, vnode_count: u32) -> Ring {
    match Ring::new(members, &options(vnode_count)) {
        Ok(ring) => ring,
        Err(e) => panic!("generated members are valid: {e}"),
    }
}

fn owner<'r>(ring: &'r Ring, key: &[u8]) -> &'r str {
    match ring.owner(key) {
        Ok(instance) => instance.as_str(),
        Err(e) => panic!("non-empty ring: {e}"),
    }
}

/// Instance URLs with distinct hostnames (one port each), already in normalised form.
fn members(max: usize) -> impl Strategy<Value = BTreeSet<String>> {
    btree_set("[a-z][a-z0-9-]{0,10}", 1..=max).prop_flat_map(|hosts| {
        let n = hosts.len();
        (Just(hosts), vec(6000u16..7000, n)).prop_map(|(hosts, ports)| {
            hosts
                .into_iter()
                .zip(ports)
                .map(|(h, p)| format!("http://{h}:{p}"))
                .collect()
        })
    })
}

fn keys() -> impl Strategy<Value = Vec<Vec<u8>>> {
    vec(vec(any::<u8>(), 0..40), 1..64)
}

proptest! {
    #[test]
    fn owner_is_always_a_member(members in members(8), vnodes in 1u32..64, keys in keys()) {
        let ring = build(&members, vnodes);
        prop_assert_eq!(ring.len(), members.len());
        for key in &keys {
            prop_assert!(members.contains(owner(&ring, key)));
        }
    }

    #[test]
    fn removing_a_member_moves_only_its_keys(
        members in members(8),
        vnodes in 1u32..64,
        victim in any::<prop::sample::Index>(),
        keys in keys(),
    ) {
        let full = build(&members, vnodes);
        let removed = victim.get(&members.iter().collect::<Vec<_>>()).to_string();
        let mut rest = members.clone();
        rest.remove(&removed);
        prop_assume!(!rest.is_empty());
        let smaller = build(&rest, vnodes);
        for key in &keys {
            let before = owner(&full, key);
            if before != removed {
                prop_assert_eq!(owner(&smaller, key), before);
            }
        }
    }

    #[test]
    fn adding_a_member_moves_keys_only_to_it(
        members in members(8),
        vnodes in 1u32..64,
        newcomer in any::<prop::sample::Index>(),
        keys in keys(),
    ) {
        let added = newcomer.get(&members.iter().collect::<Vec<_>>()).to_string();
        let mut rest = members.clone();
        rest.remove(&added);
        prop_assume!(!rest.is_empty());
        let before = build(&rest, vnodes);
        let after = build(&members, vnodes);
        for key in &keys {
            let now = owner(&after, key);
            prop_assert!(now == added || now == owner(&before, key));
        }
    }

    #[test]
    fn parse_never_panics_and_normal_form_is_a_fixed_point(raw in "\\PC{0,40}", scheme in "[a-z]{1,6}") {
        if let Ok(instance) = Instance::parse(&raw, &scheme) {
            let again = Instance::parse(instance.as_str(), "https");
            prop_assert_eq!(again.as_ref(), Ok(&instance));
            prop_assert!(instance.as_str().contains(instance.hostname()));
            prop_assert!(instance.as_str().starts_with(instance.scheme()));
        }
    }

    #[test]
    fn url_shaped_input_normalises(
        scheme in "(http|https|HTTP|ws)",
        host in "[A-Za-z0-9][A-Za-z0-9.-]{0,20}",
        port in proptest::option::of(0u16..),
    ) {
        let raw = match port {
            Some(p) => format!(" {scheme}://{host}:{p} "),
            None => format!("{scheme}://{host}"),
        };
        let instance = Instance::parse(&raw, "https");
        prop_assert!(instance.is_ok(), "{:?}", instance);
        if let Ok(instance) = instance {
            prop_assert_eq!(instance.hostname(), host.as_str());
            prop_assert_eq!(instance.scheme(), scheme.to_ascii_lowercase());
        }
    }
}

/// Share of 30 000 device ids owned by each member of an n-member ring, relative to 1/n.
fn relative_shares(n: usize, vnodes: u32) -> Vec<f64> {
    let members: BTreeSet<String> = (0..n).map(|i| format!("http://talaria-{i}:6200")).collect();
    let ring = build(&members, vnodes);
    let total = 30_000u64;
    let mut counts: HashMap<&str, u64> = HashMap::new();
    for i in 0..total {
        let key = format!("mac:{:012x}", i.wrapping_mul(0x9e37_79b9_7f4a_7c15) >> 16);
        *counts.entry(owner(&ring, key.as_bytes())).or_default() += 1;
    }
    let fair = total as f64 / n as f64;
    members
        .iter()
        .map(|m| counts.get(m.as_str()).copied().unwrap_or(0) as f64 / fair)
        .collect()
}

#[test]
fn distribution_is_reasonably_even() {
    // Deterministic members and keys; the bound leaves room above what 211 vnodes give.
    for n in [3, 10, 50] {
        let shares = relative_shares(n, xmidt_ring::DEFAULT_VNODE_COUNT);
        for (i, share) in shares.iter().enumerate() {
            assert!(
                (0.7..=1.3).contains(share),
                "{n} members: talaria-{i} owns {share:.3} of its fair share ({shares:?})"
            );
        }
    }
}

#[test]
fn more_vnodes_spread_load_better() {
    let spread = |vnodes| {
        let shares = relative_shares(10, vnodes);
        let max = shares.iter().copied().fold(f64::MIN, f64::max);
        let min = shares.iter().copied().fold(f64::MAX, f64::min);
        max - min
    };
    assert!(spread(211) < spread(1));
}
