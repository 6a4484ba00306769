//! The consistent-hash ring that maps device ids to talaria instances.
//!
//! Bit-compatible with the Go Xmidt services (petasos, talaria, scytale), which use
//! billhathaway/consistentHash through webpa-common's `service` package: given the same instance
//! list, vnode count and default scheme, a [`Ring`] picks the same owner for every key.
//!
//! - Instances are normalised ([`Instance::parse`]) and sorted by normalised URL.
//! - Each distinct hostname becomes one member with `vnode_count` tokens,
//!   `token_i = sum64("{i}={hostname}")` for `i` in `0..vnode_count` ([`sum64`] is Go's
//!   `murmur3.Sum64`).
//! - A key's owner is the member of the first token `>= sum64(key)`, wrapping to the first token.
//!
//! The ring is immutable: when membership changes, build a new one and swap an `Arc<Ring>`.
//!
//! ```
//! use xmidt_ring::{Ring, RingOptions};
//!
//! let ring = Ring::new(
//!     ["http://talaria-0:6200", "http://talaria-1:6200"],
//!     &RingOptions::default(),
//! )?;
//! let owner = ring.owner(b"mac:112233445566")?;
//! assert_eq!(owner.as_str(), "http://talaria-0:6200");
//! # Ok::<(), xmidt_ring::RingError>(())
//! ```

mod error;
mod hash;
mod instance;

use std::collections::HashMap;

pub use error::{InstanceError, RingError};
pub use hash::sum64;
pub use instance::Instance;

/// Virtual nodes per member when not configured (webpa-common's `DefaultVnodeCount`).
pub const DEFAULT_VNODE_COUNT: u32 = 211;

/// Largest accepted vnode count: far above any deployed value, and it bounds the memory a
/// misconfiguration can ask for (tokens = members × vnodes).
pub const MAX_VNODE_COUNT: u32 = 10_000;

/// Scheme given to instances written without one (webpa-common's `DefaultScheme`).
pub const DEFAULT_SCHEME: &str = "https";

/// How a [`Ring`] is built.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RingOptions {
    /// Virtual nodes per member, `1..=MAX_VNODE_COUNT` (Go config `service.vnodeCount`).
    pub vnode_count: u32,
    /// Scheme for instances without one (Go config `service.defaultScheme`).
    pub default_scheme: String,
}

impl Default for RingOptions {
    fn default() -> Self {
        RingOptions {
            vnode_count: DEFAULT_VNODE_COUNT,
            default_scheme: DEFAULT_SCHEME.to_owned(),
        }
    }
}

impl RingOptions {
    /// Checks the vnode count and the default scheme.
    pub fn validate(&self) -> Result<(), RingError> {
        if !(1..=MAX_VNODE_COUNT).contains(&self.vnode_count) {
            return Err(RingError::InvalidVnodeCount(self.vnode_count));
        }
        if !instance::is_valid_scheme(&self.default_scheme) {
            return Err(RingError::InvalidDefaultScheme(self.default_scheme.clone()));
        }
        Ok(())
    }
}

/// An immutable consistent-hash ring of instances.
///
/// Members sharing a hostname (say `http://talaria:6200` and `http://talaria:6201`) collapse
/// into one member, as in Go: its vnodes take the insertion rank of the first of them in sorted
/// order and lookups return the last of them. Two members whose tokens collide are ordered as
/// Go's insertion leaves them: the later-added member (greater normalised URL) comes first and
/// so wins the lookup.
#[derive(Debug, Clone)]
pub struct Ring {
    /// Sorted vnode tokens; a separate array keeps the binary search cache-friendly.
    tokens: Box<[u64]>,
    /// `owners[i]` is the index into `members` of the vnode at `tokens[i]`.
    owners: Box<[usize]>,
    /// One instance per hostname, in insertion order.
    members: Box<[Instance]>,
    vnode_count: u32,
}

impl Ring {
    /// Builds a ring from instance strings (or [`Instance`]s), normalising each.
    ///
    /// An empty list gives an empty ring, whose lookups fail with [`RingError::NoInstances`].
    /// Any instance that cannot be normalised fails the whole build; callers that want Go's
    /// behaviour of skipping such instances can filter with [`Instance::parse`] first.
    pub fn new<I>(instances: I, options: &RingOptions) -> Result<Ring, RingError>
    where
        I: IntoIterator,
        I::Item: AsRef<str>,
    {
        options.validate()?;
        let mut parsed = instances
            .into_iter()
            .map(|raw| Instance::parse(raw.as_ref(), &options.default_scheme))
            .collect::<Result<Vec<_>, _>>()?;
        // Go sorts the normalised instances (sort.Strings) before adding them one by one.
        parsed.sort();

        let mut members: Vec<Instance> = Vec::with_capacity(parsed.len());
        let mut rank_of: HashMap<String, usize> = HashMap::with_capacity(parsed.len());
        for instance in parsed {
            match rank_of.get(instance.hostname()) {
                // consistentHash.Add ignores a known hostname, but the accessor's
                // hostname→URL map is overwritten: the vnodes stay, the URL is the last one.
                Some(&rank) => members[rank] = instance,
                None => {
                    rank_of.insert(instance.hostname().to_owned(), members.len());
                    members.push(instance);
                }
            }
        }

        let mut vnodes = Vec::with_capacity(members.len() * options.vnode_count as usize);
        for (rank, member) in members.iter().enumerate() {
            for i in 0..options.vnode_count {
                let token = sum64(format!("{i}={}", member.hostname()).as_bytes());
                vnodes.push((token, rank));
            }
        }
        sort_vnodes(&mut vnodes);

        Ok(Ring {
            tokens: vnodes.iter().map(|&(token, _)| token).collect(),
            owners: vnodes.iter().map(|&(_, rank)| rank).collect(),
            members: members.into_boxed_slice(),
            vnode_count: options.vnode_count,
        })
    }

    /// The instance owning `key` (the canonical device id bytes, e.g. `mac:112233445566`).
    pub fn owner(&self, key: &[u8]) -> Result<&Instance, RingError> {
        let index = lookup_index(&self.tokens, sum64(key)).ok_or(RingError::NoInstances)?;
        Ok(&self.members[self.owners[index]])
    }

    /// Number of members (distinct hostnames).
    pub fn len(&self) -> usize {
        self.members.len()
    }

    /// Whether the ring has no members.
    pub fn is_empty(&self) -> bool {
        self.members.is_empty()
    }

    /// The members, one per hostname, in insertion order (sorted by normalised URL).
    pub fn instances(&self) -> &[Instance] {
        &self.members
    }

    /// Virtual nodes per member.
    pub fn vnode_count(&self) -> u32 {
        self.vnode_count
    }
}

/// Orders vnodes by token; equal tokens put the later-inserted member (higher rank) first,
/// because consistentHash inserts each vnode before the first token that is `>=` it.
fn sort_vnodes(vnodes: &mut [(u64, usize)]) {
    vnodes.sort_unstable_by(|a, b| a.0.cmp(&b.0).then(b.1.cmp(&a.1)));
}

/// Index of the first token `>= token`, wrapping to 0; `None` for an empty ring.
fn lookup_index(tokens: &[u64], token: u64) -> Option<usize> {
    if tokens.is_empty() {
        return None;
    }
    let index = tokens.partition_point(|&t| t < token);
    Some(if index == tokens.len() { 0 } else { index })
}

#[cfg(test)]
mod tests {
    use super::*;

    const TALARIAS: [&str; 3] = [
        "http://talaria-0:6200",
        "http://talaria-1:6200",
        "http://talaria-2:6200",
    ];

    #[test]
    fn ring_is_send_and_sync() {
        fn assert_send_sync<T: Send + Sync>() {}
        assert_send_sync::<Ring>();
    }

    #[test]
    fn empty_ring_has_no_owner() {
        let ring = Ring::new(Vec::<String>::new(), &RingOptions::default());
        let ring = ring.expect("an empty instance list is a valid ring");
        assert!(ring.is_empty());
        assert_eq!(ring.len(), 0);
        assert_eq!(ring.owner(b"mac:112233445566"), Err(RingError::NoInstances));
    }

    #[test]
    fn options_are_validated() {
        let options = |vnode_count, scheme: &str| RingOptions {
            vnode_count,
            default_scheme: scheme.to_owned(),
        };
        assert_eq!(
            Ring::new(TALARIAS, &options(0, "https")).map(|_| ()),
            Err(RingError::InvalidVnodeCount(0))
        );
        assert_eq!(
            Ring::new(TALARIAS, &options(MAX_VNODE_COUNT + 1, "https")).map(|_| ()),
            Err(RingError::InvalidVnodeCount(MAX_VNODE_COUNT + 1))
        );
        assert_eq!(
            Ring::new(TALARIAS, &options(1, "h ttp")).map(|_| ()),
            Err(RingError::InvalidDefaultScheme("h ttp".to_owned()))
        );
        let ring = Ring::new(TALARIAS, &options(MAX_VNODE_COUNT, "https"));
        assert_eq!(ring.map(|r| r.vnode_count()), Ok(MAX_VNODE_COUNT));
    }

    #[test]
    fn invalid_instance_fails_the_build() {
        let result = Ring::new(
            ["http://talaria-0:6200", "http://bad host"],
            &RingOptions::default(),
        );
        assert_eq!(
            result.map(|_| ()),
            Err(RingError::InvalidInstance(InstanceError::InvalidHost(
                "http://bad host".to_owned()
            )))
        );
    }

    #[test]
    fn input_order_and_duplicates_do_not_matter() {
        let options = RingOptions::default();
        let forward = Ring::new(TALARIAS, &options).expect("valid");
        let shuffled = [
            TALARIAS[2],
            TALARIAS[0],
            " http://talaria-1:6200 ",
            TALARIAS[0],
        ];
        let backward = Ring::new(shuffled, &options).expect("valid");
        assert_eq!(forward.instances(), backward.instances());
        assert_eq!(forward.tokens, backward.tokens);
        assert_eq!(forward.owners, backward.owners);
        assert_eq!(forward.tokens.len(), 3 * DEFAULT_VNODE_COUNT as usize);
    }

    #[test]
    fn shared_hostname_keeps_first_rank_and_last_url() {
        let ring = Ring::new(
            [
                "https://talaria-0",
                "http://talaria-1:6200",
                "http://talaria-0:6200",
            ],
            &RingOptions::default(),
        )
        .expect("valid");
        let urls: Vec<&str> = ring.instances().iter().map(Instance::as_str).collect();
        // Sorted: http://talaria-0:6200 (rank 0), http://talaria-1:6200, https://talaria-0.
        assert_eq!(urls, ["https://talaria-0", "http://talaria-1:6200"]);
        assert_eq!(ring.tokens.len(), 2 * DEFAULT_VNODE_COUNT as usize);
    }

    #[test]
    fn tokens_are_murmur_of_index_and_hostname() {
        let options = RingOptions {
            vnode_count: 3,
            default_scheme: "http".to_owned(),
        };
        let ring = Ring::new(["talaria-0:6200"], &options).expect("valid");
        let mut expected: Vec<u64> = ["0=talaria-0", "1=talaria-0", "2=talaria-0"]
            .iter()
            .map(|k| sum64(k.as_bytes()))
            .collect();
        expected.sort_unstable();
        assert_eq!(&*ring.tokens, expected.as_slice());
    }

    #[test]
    fn equal_tokens_put_the_later_member_first() {
        let mut vnodes = vec![(7, 0), (3, 1), (7, 2), (7, 1), (1, 0)];
        sort_vnodes(&mut vnodes);
        assert_eq!(vnodes, [(1, 0), (3, 1), (7, 2), (7, 1), (7, 0)]);
    }

    #[test]
    fn lookup_takes_first_token_at_or_above_and_wraps() {
        let tokens = [10, 20, 20, 30];
        assert_eq!(lookup_index(&tokens, 0), Some(0));
        assert_eq!(lookup_index(&tokens, 10), Some(0));
        assert_eq!(lookup_index(&tokens, 11), Some(1));
        assert_eq!(lookup_index(&tokens, 20), Some(1));
        assert_eq!(lookup_index(&tokens, 30), Some(3));
        assert_eq!(lookup_index(&tokens, 31), Some(0));
        assert_eq!(lookup_index(&tokens, u64::MAX), Some(0));
        assert_eq!(lookup_index(&[], 5), None);
    }
}
