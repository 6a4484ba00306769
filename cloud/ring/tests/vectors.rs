//! Known answers from an independent implementation (test-data/gen_vectors.py, PyPI `mmh3`).

use serde::Deserialize;
use xmidt_ring::{sum64, Instance, Ring, RingOptions};

const VECTORS: &str = include_str!("../test-data/vectors.json");

#[derive(Deserialize)]
struct Vectors {
    sum64: Vec<Sum64Case>,
    rings: Vec<RingCase>,
}

#[derive(Deserialize)]
struct Sum64Case {
    input: String,
    sum64: u64,
}

#[derive(Deserialize)]
struct RingCase {
    name: String,
    default_scheme: String,
    vnode_count: u32,
    instances: Vec<String>,
    members: Vec<Member>,
    last_token: u64,
    owners: Vec<OwnerCase>,
}

#[derive(Deserialize)]
struct Member {
    hostname: String,
    instance: String,
}

#[derive(Deserialize)]
struct OwnerCase {
    key: String,
    owner: String,
}

fn vectors() -> Vectors {
    match serde_json::from_str(VECTORS) {
        Ok(v) => v,
        Err(e) => panic!("test-data/vectors.json: {e}"),
    }
}

#[test]
fn sum64_known_answers() {
    let cases = vectors().sum64;
    assert!(cases.len() >= 40, "every tail length is covered");
    for case in cases {
        assert_eq!(
            sum64(case.input.as_bytes()),
            case.sum64,
            "input {:?}",
            case.input
        );
    }
}

#[test]
fn ring_owners_known_answers() {
    let rings = vectors().rings;
    assert!(rings.len() >= 5);
    for case in rings {
        let options = RingOptions {
            vnode_count: case.vnode_count,
            default_scheme: case.default_scheme.clone(),
        };
        let ring = match Ring::new(&case.instances, &options) {
            Ok(ring) => ring,
            Err(e) => panic!("ring {}: {e}", case.name),
        };
        let members: Vec<(&str, &str)> = ring
            .instances()
            .iter()
            .map(|i| (i.hostname(), i.as_str()))
            .collect();
        let expected: Vec<(&str, &str)> = case
            .members
            .iter()
            .map(|m| (m.hostname.as_str(), m.instance.as_str()))
            .collect();
        assert_eq!(members, expected, "ring {}", case.name);

        assert!(case.owners.len() >= 200, "ring {}", case.name);
        let mut wrapped = 0;
        for owner in &case.owners {
            let got = ring.owner(owner.key.as_bytes()).map(Instance::as_str);
            assert_eq!(
                got,
                Ok(owner.owner.as_str()),
                "ring {} key {:?}",
                case.name,
                owner.key
            );
            if sum64(owner.key.as_bytes()) > case.last_token {
                wrapped += 1;
            }
        }
        assert!(
            wrapped >= 1,
            "ring {} has a key that wraps around",
            case.name
        );
    }
}

#[test]
fn xmidt_compose_readme_redirect() {
    // xmidt's docker-compose README: petasos (seeing talaria-0 and talaria-1 in its datacenter)
    // redirects mac:112233445566 to talaria-0.
    let ring = Ring::new(
        ["http://talaria-0:6200", "http://talaria-1:6200"],
        &RingOptions::default(),
    );
    let owner = ring.and_then(|r| r.owner(b"mac:112233445566").map(|i| i.to_string()));
    assert_eq!(owner.as_deref(), Ok("http://talaria-0:6200"));
}
