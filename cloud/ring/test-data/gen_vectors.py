#!/usr/bin/env python3
"""Writes vectors.json: known answers for the xmidt-ring crate.

An implementation independent of the Rust crate: the hash is the `mmh3` package
(MurmurHash3 x64_128, seed 0, first 64 bits = Go's spaolacci/murmur3 Sum64), the
instance normalisation uses the same regular expression as webpa-common's
NormalizeInstance (Python's `re` matches it the way Go's regexp does), and the
ring is built the way billhathaway/consistentHash builds it: members added one
by one in sorted order, each vnode inserted before the first equal-or-greater
token. Lookups are a bisection with wrap-around.

Usage: python3 gen_vectors.py   (writes vectors.json next to this file)
"""

import bisect
import importlib.metadata
import json
import pathlib
import random
import re
import uuid

import mmh3

DEFAULT_VNODE_COUNT = 211

# webpa-common service.NormalizeInstance's pattern.
INSTANCE_PATTERN = re.compile(r"^((?P<scheme>.+)://)?(?P<address>[^:]+)(:(?P<port>[0-9]+))?$")
# What Go's url.Parse accepts as a scheme; anything else makes the Go accessor panic.
SCHEME_PATTERN = re.compile(r"^[A-Za-z][A-Za-z0-9+.-]*$")


def sum64(data: bytes) -> int:
    """Go murmur3.Sum64: h1 of MurmurHash3 x64_128 with seed 0."""
    h1, _h2 = mmh3.hash64(data, seed=0, x64arch=True, signed=False)
    return h1


def normalize(default_scheme: str, instance: str):
    """Returns (url, hostname) for an instance string, as Go would build them."""
    instance = instance.strip()
    match = INSTANCE_PATTERN.match(instance)
    if not instance or match is None:
        raise ValueError(f"invalid instance {instance!r}")
    scheme = match.group("scheme") or default_scheme
    address = match.group("address")
    port = int(match.group("port") or "0")
    if not SCHEME_PATTERN.match(scheme):
        raise ValueError(f"invalid scheme in {instance!r}")
    # url.Parse lower-cases the scheme when the accessor re-parses the instance.
    scheme = scheme.lower()
    default_port = {"http": 80, "https": 443}.get(scheme)
    if port > 0 and port != default_port:
        return f"{scheme}://{address}:{port}", address
    return f"{scheme}://{address}", address


class Ring:
    def __init__(self, instances, default_scheme="https", vnode_count=DEFAULT_VNODE_COUNT):
        normalized = sorted(normalize(default_scheme, i) for i in instances)
        self.tokens = []
        self.hosts = []
        self.url_of = {}
        self.order = []  # hostnames in the order they were first added
        for url, host in normalized:
            if host not in self.url_of:
                self.order.append(host)
                for i in range(vnode_count):
                    token = sum64(f"{i}={host}".encode("ascii"))
                    at = bisect.bisect_left(self.tokens, token)
                    self.tokens.insert(at, token)
                    self.hosts.insert(at, host)
            # The side map keeps the last URL seen for a hostname.
            self.url_of[host] = url

    def owner(self, key: bytes) -> str:
        at = bisect.bisect_left(self.tokens, sum64(key))
        if at == len(self.tokens):
            at = 0
        return self.url_of[self.hosts[at]]


def device_ids(rng: random.Random):
    ids = ["", "mac:112233445566", "serial:ABC123", "uuid:00000000-0000-0000-0000-000000000000"]
    for _ in range(80):
        ids.append("mac:%012x" % rng.getrandbits(48))
    for _ in range(40):
        ids.append("serial:%s" % "".join(rng.choice("ABCDEFGHJKLMNPQRSTUVWXYZ0123456789") for _ in range(rng.randint(4, 20))))
    for _ in range(40):
        ids.append("uuid:%s" % uuid.UUID(int=rng.getrandbits(128), version=4))
    for _ in range(36):
        ids.append("dns:device-%d.example.net" % rng.randint(0, 10**6))
    return ids


def wrap_probe(ring: Ring) -> str:
    """A key hashing above every token, so its lookup must wrap to the first vnode."""
    top = ring.tokens[-1]
    n = 0
    while sum64(f"mac:{n:012x}".encode()) <= top:
        n += 1
    return f"mac:{n:012x}"


RINGS = [
    {
        "name": "three-talarias",
        "instances": ["http://talaria-0:6200", "http://talaria-1:6200", "http://talaria-2:6200"],
    },
    {
        # What petasos sees in xmidt's docker-compose (talaria-2 is in the other datacenter);
        # that README's smoke test redirects mac:112233445566 to talaria-0.
        "name": "compose-datacenter-0",
        "instances": ["http://talaria-0:6200", "http://talaria-1:6200"],
    },
    {
        "name": "one-member",
        "instances": ["http://talaria-0:6200"],
    },
    {
        "name": "seven-mixed",
        "instances": [
            "https://talaria-a.example.com:443",
            "talaria-b.example.com:8443",
            "http://10.0.0.7:80",
            "http://10.0.0.8:6200",
            "HTTPS://Talaria-E:443",
            "  talaria-f.example.com  ",
            "https://talaria-g.example.com:06200",
        ],
    },
    {
        "name": "shared-hostname",
        "instances": ["http://talaria-1:6200", "https://talaria-0", "http://talaria-0:6200"],
    },
    {
        "name": "fifty-vnodes-http-default",
        "default_scheme": "http",
        "vnode_count": 50,
        "instances": ["talaria-0:6200", "talaria-1:6200", "talaria-2:80", "https://talaria-3"],
    },
]

SUM64_INPUTS = [
    "",
    "a",
    "hello",
    "hello, world",
    "19 Jan 2038 at 3:14:07 AM",
    "The quick brown fox jumps over the lazy dog.",
    "mac:112233445566",
    "serial:ABC123",
    "0=talaria-0",
    "210=talaria-2",
    "uuid:1f0e8a4c-9b3d-4f6a-8e2b-7c5d3a1b0f9e",
    "dns:example.com",
    "caf\u00e9 \u2615",
] + ["x" * n for n in range(1, 34)]


def main():
    rng = random.Random(20260613)
    keys = device_ids(rng)
    rings = []
    for spec in RINGS:
        default_scheme = spec.get("default_scheme", "https")
        vnode_count = spec.get("vnode_count", DEFAULT_VNODE_COUNT)
        ring = Ring(spec["instances"], default_scheme, vnode_count)
        # A key equal to a vnode's own hash input lands exactly on that token (">=" not ">").
        on_token = [f"{i}={host}" for host in ring.order[:3] for i in (0, 1)]
        ring_keys = keys + on_token + [wrap_probe(ring)]
        rings.append(
            {
                "name": spec["name"],
                "default_scheme": default_scheme,
                "vnode_count": vnode_count,
                "instances": spec["instances"],
                "members": [{"hostname": h, "instance": ring.url_of[h]} for h in ring.order],
                "last_token": ring.tokens[-1],
                "owners": [{"key": k, "owner": ring.owner(k.encode())} for k in ring_keys],
            }
        )
    vectors = {
        "generator": "test-data/gen_vectors.py, mmh3 %s" % importlib.metadata.version("mmh3"),
        "sum64": [{"input": s, "sum64": sum64(s.encode())} for s in SUM64_INPUTS],
        "rings": rings,
    }
    out = pathlib.Path(__file__).with_name("vectors.json")
    out.write_text(json.dumps(vectors, indent=1, ensure_ascii=False) + "\n", encoding="utf-8")


if __name__ == "__main__":
    main()
