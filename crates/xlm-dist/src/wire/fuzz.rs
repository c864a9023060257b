//! Structured fuzzing of the decoders that read network input: arbitrary
//! bytes and mutated valid encodings go to [`read_frame`], [`parse_hello`]
//! and [`unpack_list`]. Each must return a value or an error, never panic,
//! and whatever it accepts must re-encode to exactly the bytes it consumed.
//!
//! Every target runs [`CASES`] generated inputs in the normal `cargo test`
//! run (and asserts that it did).

use super::*;
use proptest::prelude::*;
use proptest::sample::Index;
use proptest::test_runner::{Config, TestCaseError, TestRunner};
use std::sync::atomic::{AtomicUsize, Ordering};

/// Generated inputs per target.
const CASES: u32 = 10_000;

/// Runs `check` over `CASES` values of `strategy` and asserts they all ran;
/// panics (with proptest's shrunk input) on a failure or a panic. `check`
/// says whether the decoder accepted the input (counted for the report).
fn fuzz<S: Strategy>(name: &str, strategy: S, check: impl Fn(S::Value) -> Result<bool, String>) {
    let config = Config {
        cases: CASES,
        failure_persistence: None,
        ..Config::default()
    };
    let (tried, accepted) = (AtomicUsize::new(0), AtomicUsize::new(0));
    let result = TestRunner::new(config).run(&strategy, |v| {
        tried.fetch_add(1, Ordering::Relaxed);
        if check(v).map_err(TestCaseError::fail)? {
            accepted.fetch_add(1, Ordering::Relaxed);
        }
        Ok(())
    });
    if let Err(e) = result {
        panic!("fuzz target {name}: {e}");
    }
    let tried = tried.into_inner();
    let accepted = accepted.into_inner();
    eprintln!(
        "fuzz target {name}: {tried} inputs, {accepted} accepted, the rest refused, no panic"
    );
    assert!(tried >= CASES as usize, "{name}: only {tried} inputs ran");
}

/// One edit of a valid encoding.
#[derive(Debug, Clone)]
enum Mutation {
    Flip(Index, u8),
    Set(Index, u8),
    Truncate(Index),
    Insert(Index, Vec<u8>),
    Remove(Index, usize),
    /// Overwrite a header field with an extreme value (lengths, kind, version).
    Field(usize, u32),
}

fn mutation() -> impl Strategy<Value = Mutation> {
    prop_oneof![
        (any::<Index>(), 0u8..8).prop_map(|(i, b)| Mutation::Flip(i, b)),
        (any::<Index>(), any::<u8>()).prop_map(|(i, v)| Mutation::Set(i, v)),
        any::<Index>().prop_map(Mutation::Truncate),
        (any::<Index>(), prop::collection::vec(any::<u8>(), 1..16))
            .prop_map(|(i, b)| Mutation::Insert(i, b)),
        (any::<Index>(), 1usize..16).prop_map(|(i, n)| Mutation::Remove(i, n)),
        (
            prop::sample::select(vec![4usize, 5, 6, 7, 24]),
            prop_oneof![Just(0u32), Just(1), Just(255), Just(u32::MAX), any::<u32>()]
        )
            .prop_map(|(at, v)| Mutation::Field(at, v)),
    ]
}

fn apply(mut b: Vec<u8>, muts: &[Mutation]) -> Vec<u8> {
    for m in muts {
        match m {
            Mutation::Flip(i, bit) if !b.is_empty() => {
                let at = i.index(b.len());
                b[at] ^= 1 << bit;
            }
            Mutation::Set(i, v) if !b.is_empty() => {
                let at = i.index(b.len());
                b[at] = *v;
            }
            Mutation::Truncate(i) => b.truncate(i.index(b.len() + 1)),
            Mutation::Insert(i, bytes) => {
                let at = i.index(b.len() + 1);
                b.splice(at..at, bytes.iter().copied());
            }
            Mutation::Remove(i, n) if !b.is_empty() => {
                let at = i.index(b.len());
                let end = (at + n).min(b.len());
                b.drain(at..end);
            }
            Mutation::Field(at, v) => {
                if *at == 24 && b.len() >= 28 {
                    b[24..28].copy_from_slice(&v.to_le_bytes());
                } else if *at < b.len() {
                    b[*at] = *v as u8;
                }
            }
            _ => {}
        }
    }
    b
}

fn kind() -> impl Strategy<Value = Kind> {
    prop::sample::select(vec![
        Kind::Hello,
        Kind::Welcome,
        Kind::Reject,
        Kind::Data,
        Kind::Error,
    ])
}

/// A valid frame's encoding.
fn valid_frame() -> impl Strategy<Value = Vec<u8>> {
    (
        kind(),
        any::<u64>(),
        any::<u64>(),
        "[a-z_ ]{0,40}|\\PC{0,20}",
        prop::collection::vec(any::<u8>(), 0..200),
    )
        .prop_map(|(k, nonce, seq, op, payload)| {
            encode(k, nonce, seq, &op, &payload).expect("small frames encode")
        })
}

/// Decodes `input`; anything accepted must re-encode to the bytes consumed.
fn check_frame(input: &[u8]) -> Result<bool, String> {
    let mut r = input;
    match read_frame(&mut r) {
        Ok(f) => {
            let consumed = &input[..input.len() - r.len()];
            let again = encode(f.kind, f.nonce, f.seq, &f.op, &f.payload)
                .map_err(|e| format!("accepted a frame it cannot encode: {e}"))?;
            if again != consumed {
                return Err(format!("{f:?} re-encodes differently from its input"));
            }
            Ok(true)
        }
        Err(_) => Ok(false),
    }
}

fn check_list(input: &[u8]) -> Result<bool, String> {
    match unpack_list(input) {
        Some(items) if pack_list(&items) != input => {
            Err(format!("{items:?} re-packs differently from its input"))
        }
        Some(_) => Ok(true),
        None => Ok(false),
    }
}

/// A header that passes the magic and version checks, with plausible but
/// unchecked fields (kinds, tag and payload lengths, the reserved byte),
/// then arbitrary bytes.
fn structured_header() -> impl Strategy<Value = Vec<u8>> {
    (
        prop_oneof![9 => 1u8..=5, 1 => any::<u8>()],
        prop_oneof![8 => 0u8..12, 2 => any::<u8>()],
        prop_oneof![9 => Just(0u8), 1 => any::<u8>()],
        any::<[u8; 16]>(),
        prop_oneof![
            8 => 0u32..400,
            1 => any::<u32>(),
            1 => Just(MAX_PAYLOAD as u32 + 1)
        ],
        prop::collection::vec(any::<u8>(), 0..420),
    )
        .prop_map(|(kind, op_len, reserved, ids, len, tail)| {
            let mut b = MAGIC.to_vec();
            b.extend_from_slice(&[VERSION, kind, op_len, reserved]);
            b.extend_from_slice(&ids);
            b.extend_from_slice(&len.to_le_bytes());
            b.extend_from_slice(&tail);
            b
        })
}

#[test]
fn fuzz_frames_from_arbitrary_bytes() {
    fuzz(
        "read_frame(arbitrary bytes)",
        prop::collection::vec(any::<u8>(), 0..256),
        |b| check_frame(&b),
    );
}

#[test]
fn fuzz_frames_with_a_structured_header() {
    // Random bytes rarely pass the magic check; these reach the header
    // fields, the lengths, the tag and the payload.
    fuzz(
        "read_frame(structured header + arbitrary bytes)",
        structured_header(),
        |b| check_frame(&b),
    );
}

#[test]
fn fuzz_mutated_valid_frames() {
    fuzz(
        "read_frame(mutated valid frames)",
        (valid_frame(), prop::collection::vec(mutation(), 0..4)),
        |(frame, muts)| {
            if muts.is_empty() && read_frame(&mut frame.as_slice()).is_err() {
                return Err("a valid frame failed to decode".into());
            }
            check_frame(&apply(frame, &muts))
        },
    );
}

#[test]
fn fuzz_hello_payloads() {
    fuzz(
        "parse_hello(arbitrary bytes)",
        prop::collection::vec(any::<u8>(), 0..16),
        |b| match parse_hello(&b) {
            Some((r, w)) if hello_payload(r, w) != b => Err("hello re-encodes differently".into()),
            found => Ok(found.is_some()),
        },
    );
}

#[test]
fn fuzz_lists_from_arbitrary_bytes() {
    fuzz(
        "unpack_list(arbitrary bytes)",
        prop::collection::vec(any::<u8>(), 0..256),
        |b| check_list(&b),
    );
}

#[test]
fn fuzz_mutated_valid_lists() {
    fuzz(
        "unpack_list(mutated valid lists)",
        (
            prop::collection::vec(prop::collection::vec(any::<u8>(), 0..20), 0..8),
            prop::collection::vec(mutation(), 0..4),
        ),
        |(items, muts)| {
            let packed = pack_list(&items);
            if muts.is_empty() && unpack_list(&packed).as_ref() != Some(&items) {
                return Err("a valid list failed to unpack".into());
            }
            check_list(&apply(packed, &muts))
        },
    );
}
