//! `full_name` parsing, with Hugging Face split instructions
//! (`train[:-100000]`, `train[10%:20%]`, `train[:5]+test`).
//!
//! The grammar and arithmetic are those of HF datasets'
//! `ReadInstruction` (`arrow_reader.py`: `_SUB_SPEC_RE`,
//! `_str_to_read_instruction`, `_rel_to_abs_instr`):
//!
//! - an instruction is parts joined by `+` (spaces around `+` allowed); a
//!   part is `split`, `split[from:to]` or `split[from:to](rounding)`; the
//!   colon is required (`train[5]` is an error, as in HF);
//! - a bound is `-?digits`, optionally with `%`; as in Python integer
//!   literals, single `_` may separate digits (`train[:-100_000]`; HF's own
//!   regex rejects `_`, so this is a superset);
//! - if either bound has `%`, both are percentages (at most 100 in absolute
//!   value), turned into rows with round-half-to-even of `b * n / 100`
//!   (`closest`, the default: 50% of 5 is 2, 10% of 15 is 2, 10% of 25 is
//!   2) or with `b * trunc(n / 100)` (`(pct1_dropremainder)`, which needs
//!   `n >= 100`); all percent parts of one instruction share one rounding;
//! - a negative bound `b` is `max(n + b, 0)`; both bounds are clamped to `n`;
//! - differences from HF: `from > to` is an error (HF returns a surprise),
//!   and an instruction that selects no row at all is an error naming it
//!   (HF: "corresponds to no data").

use super::SourceError;
use std::fmt;
use std::ops::Range;

/// A parsed `full_name`: `repo/dataset/split` or `repo/dataset/config/split`,
/// where the split segment may be a split instruction (`train[:-10]`).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct FullName {
    /// Repository (or owner) segment.
    pub repo: String,
    /// Dataset segment.
    pub dataset: String,
    /// Optional configuration segment.
    pub config: Option<String>,
    /// The bare split sources look up (`train` for `train[:-10]`; the first
    /// part's split when the instruction joins several with `+`).
    pub split: String,
    /// The split instruction when the split segment slices or concatenates
    /// (`train[:-10]`, `train+test`); `None` for a bare split.
    pub instruction: Option<SplitInstruction>,
}

/// Characters that make a split segment an instruction rather than a bare
/// split name.
const INSTRUCTION_CHARS: [char; 5] = ['[', ']', '(', ')', '+'];

impl FullName {
    /// Parses a full name; any other number of non-empty segments is an error
    /// naming how many were found, and a malformed split instruction an error
    /// naming the full name and what is wrong.
    pub fn parse(name: &str) -> Result<Self, SourceError> {
        let parts: Vec<&str> = name.trim_matches('/').split('/').collect();
        let bad = || SourceError::FullName {
            name: name.to_string(),
            segments: if name.trim_matches('/').is_empty() {
                0
            } else {
                parts.len()
            },
        };
        if parts.iter().any(|p| p.is_empty()) {
            return Err(bad());
        }
        let (repo, dataset, config, split) = match parts.as_slice() {
            [r, d, s] => (r, d, None, s),
            [r, d, c, s] => (r, d, Some(c.to_string()), s),
            _ => return Err(bad()),
        };
        let (split, instruction) = if split.contains(INSTRUCTION_CHARS) {
            let i = SplitInstruction::parse(split).map_err(|reason| SourceError::Slice {
                name: name.to_string(),
                reason,
            })?;
            (i.parts[0].split.clone(), Some(i))
        } else {
            (split.to_string(), None)
        };
        Ok(Self {
            repo: repo.to_string(),
            dataset: dataset.to_string(),
            config,
            split,
            instruction,
        })
    }

    /// The same dataset with another (bare) split and no instruction.
    pub fn with_split(&self, split: &str) -> Self {
        Self {
            split: split.to_string(),
            instruction: None,
            ..self.clone()
        }
    }

    /// `repo/dataset[/config]` without the split.
    pub fn dataset_path(&self) -> String {
        match &self.config {
            Some(c) => format!("{}/{}/{}", self.repo, self.dataset, c),
            None => format!("{}/{}", self.repo, self.dataset),
        }
    }

    /// The split segment as written: `train`, or the instruction
    /// (`train[:-10]`) verbatim. Cache directories use it, so two slices of
    /// a split never share a cache.
    pub fn split_segment(&self) -> &str {
        match &self.instruction {
            Some(i) => i.as_str(),
            None => &self.split,
        }
    }

    /// `repo/dataset[/config]/split` with the bare split (what a registry of
    /// whole splits is keyed by).
    pub fn split_path(&self) -> String {
        format!("{}/{}", self.dataset_path(), self.split)
    }
}

impl fmt::Display for FullName {
    /// The full name as written (with its instruction, if any).
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}/{}", self.dataset_path(), self.split_segment())
    }
}

/// How percent bounds become row numbers (HF's `rounding`).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Rounding {
    /// Round-half-to-even of `b * n / 100` (the default).
    Closest,
    /// `b * trunc(n / 100)`: every 1% has the same size; needs `n >= 100`.
    Pct1DropRemainder,
}

/// One `+`-separated part of a split instruction: `split[from:to]`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SplitSlice {
    /// The part as written (for messages).
    text: String,
    /// The split it reads.
    pub split: String,
    /// The start bound (`None`: the start of the split).
    pub from: Option<i64>,
    /// The end bound, exclusive (`None`: the end of the split).
    pub to: Option<i64>,
    /// Both bounds are percentages.
    pub percent: bool,
    /// How percentages are rounded.
    pub rounding: Rounding,
}

/// A split instruction: one or more [`SplitSlice`]s, concatenated in order.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SplitInstruction {
    text: String,
    parts: Vec<SplitSlice>,
}

impl SplitInstruction {
    /// Parses `train[:-10]`, `train[10%:20%](pct1_dropremainder)`,
    /// `train[:5] + test`; the error says what is wrong.
    pub fn parse(text: &str) -> Result<Self, String> {
        let parts = text
            .split('+')
            .map(|p| SplitSlice::parse(p.trim()))
            .collect::<Result<Vec<_>, _>>()?;
        let mut roundings = parts.iter().filter(|p| p.percent).map(|p| p.rounding);
        if let Some(first) = roundings.next() {
            if roundings.any(|r| r != first) {
                return Err(format!(
                    "split instruction `{text}` mixes percent roundings; use one for every part"
                ));
            }
        }
        Ok(Self {
            text: text.to_string(),
            parts,
        })
    }

    /// The instruction as written.
    pub fn as_str(&self) -> &str {
        &self.text
    }

    /// Its parts, in order.
    pub fn parts(&self) -> &[SplitSlice] {
        &self.parts
    }
}

impl fmt::Display for SplitInstruction {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.text)
    }
}

/// `digits(_digits)*` with an optional leading `-`, as an i64.
fn parse_bound(s: &str) -> Option<i64> {
    let digits = s.strip_prefix('-').unwrap_or(s);
    let groups_ok = digits
        .split('_')
        .all(|g| !g.is_empty() && g.bytes().all(|b| b.is_ascii_digit()));
    if !groups_ok {
        return None;
    }
    s.replace('_', "").parse().ok()
}

fn is_split_name(s: &str) -> bool {
    !s.is_empty()
        && s.chars()
            .all(|c| c.is_alphanumeric() || matches!(c, '_' | '-' | '.'))
}

impl SplitSlice {
    /// Parses one part: `split`, `split[from:to]`, `split[from:to](rounding)`.
    pub fn parse(text: &str) -> Result<Self, String> {
        let bad = |why: &str| format!("split instruction part `{text}`: {why}");
        let mut rest = text;
        let mut rounding_name = None;
        if let Some(r) = rest.strip_suffix(')') {
            let open = r.rfind('(').ok_or_else(|| bad("`)` without `(`"))?;
            rounding_name = Some(&r[open + 1..]);
            rest = &r[..open];
        }
        let (split, bounds) = match rest.strip_suffix(']') {
            Some(r) => {
                let open = r.find('[').ok_or_else(|| bad("`]` without `[`"))?;
                (&r[..open], Some(&r[open + 1..]))
            }
            None => (rest, None),
        };
        if !is_split_name(split) {
            return Err(bad(
                "expected `split`, `split[from:to]` or `split[from:to](rounding)` with a split name of letters, digits, `_`, `-` or `.`",
            ));
        }
        let (mut from, mut to, mut percent) = (None, None, false);
        if let Some(b) = bounds {
            let (f, t) = b.split_once(':').ok_or_else(|| {
                bad("a slice needs a colon (`split[from:to]`, `split[from:]`, `split[:to]`); `split[n]` is not a slice")
            })?;
            let mut bound = |s: &str| -> Result<Option<i64>, String> {
                if s.is_empty() {
                    return Ok(None);
                }
                let (num, pct) = match s.strip_suffix('%') {
                    Some(n) => (n, true),
                    None => (s, false),
                };
                percent |= pct;
                parse_bound(num).map(Some).ok_or_else(|| {
                    bad(&format!(
                        "bound `{s}` is not an integer (`-?digits`, `_` between digits allowed, optionally followed by `%`)"
                    ))
                })
            };
            from = bound(f)?;
            to = bound(t)?;
        }
        let rounding = match rounding_name {
            None | Some("closest") => Rounding::Closest,
            Some("pct1_dropremainder") => Rounding::Pct1DropRemainder,
            Some(other) => {
                return Err(bad(&format!(
                    "unknown rounding `{other}`; expected `closest` or `pct1_dropremainder`"
                )))
            }
        };
        if rounding_name.is_some() && !percent {
            return Err(bad("a rounding only applies to percent bounds"));
        }
        if percent && [from, to].iter().flatten().any(|b| b.unsigned_abs() > 100) {
            return Err(bad("percent bounds must be between -100% and 100%"));
        }
        // Bounds of the same sign compare the same way for every split size:
        // reject a reversed slice before any I/O.
        if let (Some(f), Some(t)) = (from, to) {
            if (f >= 0) == (t >= 0) && f > t {
                return Err(bad(&format!(
                    "the start ({f}) is after the end ({t}); HF datasets would return a surprise, xlm refuses"
                )));
            }
        }
        Ok(Self {
            text: text.to_string(),
            split: split.to_string(),
            from,
            to,
            percent,
            rounding,
        })
    }

    /// The part as written.
    pub fn as_str(&self) -> &str {
        &self.text
    }

    /// True when resolving the bounds needs the split's row count (a
    /// percent or a negative bound); otherwise rows can be streamed and the
    /// read stopped at `to`.
    pub fn needs_len(&self) -> bool {
        self.percent || [self.from, self.to].iter().flatten().any(|&b| b < 0)
    }

    /// The rows selected from a split of `n` rows (HF's `_rel_to_abs_instr`):
    /// percentages to rows, negative bounds from the end (`max(n + b, 0)`),
    /// both clamped to `n`. A start after the end is an error.
    pub fn absolute(&self, n: usize) -> Result<Range<usize>, String> {
        let n_i = n as i128;
        let rows = |b: i64| -> Result<i128, String> {
            let b = b as i128;
            if !self.percent {
                return Ok(b);
            }
            match self.rounding {
                Rounding::Closest => Ok(round_half_even(b * n_i, 100)),
                Rounding::Pct1DropRemainder if n < 100 => Err(format!(
                    "split instruction part `{}`: pct1_dropremainder rounding needs at least 100 rows, the split has {n} (it would select nothing)",
                    self.text
                )),
                Rounding::Pct1DropRemainder => Ok(b * (n_i / 100)),
            }
        };
        let resolve = |b: i128| {
            let b = if b < 0 { (n_i + b).max(0) } else { b };
            b.min(n_i) as usize
        };
        let from = resolve(self.from.map(rows).transpose()?.unwrap_or(0));
        let to = resolve(self.to.map(rows).transpose()?.unwrap_or(n_i));
        if from > to {
            return Err(format!(
                "split instruction part `{}` resolves to rows {from}..{to} of a split of {n} rows: the start is after the end",
                self.text
            ));
        }
        Ok(from..to)
    }
}

/// `x / d` rounded to the nearest integer, ties to even (Python's `round`),
/// exactly, for `d > 0`.
fn round_half_even(x: i128, d: i128) -> i128 {
    let q = x.div_euclid(d);
    let r = x.rem_euclid(d);
    match (2 * r).cmp(&d) {
        std::cmp::Ordering::Less => q,
        std::cmp::Ordering::Greater => q + 1,
        std::cmp::Ordering::Equal => q + (q & 1),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_three_and_four_segments() {
        let n = FullName::parse("mem/raw/train").unwrap();
        assert_eq!(
            (n.repo.as_str(), n.dataset.as_str(), n.split.as_str()),
            ("mem", "raw", "train")
        );
        assert_eq!(n.instruction, None);
        let n = FullName::parse("a/b/c/d").unwrap();
        assert_eq!(n.config.as_deref(), Some("c"));
        assert_eq!(n.to_string(), "a/b/c/d");
    }

    #[test]
    fn other_shapes_name_the_segment_count() {
        for (name, n) in [("a/b", 2), ("a/b/c/d/e", 5), ("", 0), ("x", 1)] {
            let e = FullName::parse(name).unwrap_err().to_string();
            assert!(e.contains(&format!("has {n} path segment")), "{e}");
        }
    }

    fn part(s: &str) -> SplitSlice {
        SplitSlice::parse(s).unwrap_or_else(|e| panic!("{s}: {e}"))
    }

    fn abs(s: &str, n: usize) -> Range<usize> {
        part(s)
            .absolute(n)
            .unwrap_or_else(|e| panic!("{s} of {n}: {e}"))
    }

    #[test]
    fn sliced_full_name_keeps_the_bare_split_and_the_instruction() {
        let n = FullName::parse("openwebtext/openwebtext/train[:-100000]").unwrap();
        assert_eq!(n.split, "train");
        assert_eq!(n.split_path(), "openwebtext/openwebtext/train");
        assert_eq!(n.split_segment(), "train[:-100000]");
        assert_eq!(n.to_string(), "openwebtext/openwebtext/train[:-100000]");
        let i = n.instruction.as_ref().unwrap();
        assert_eq!(i.parts().len(), 1);
        assert_eq!((i.parts()[0].from, i.parts()[0].to), (None, Some(-100000)));
        // Config segment and `with_split` (which drops the instruction).
        let n = FullName::parse("org/ds/cfg/validation[10%:]").unwrap();
        assert_eq!(n.config.as_deref(), Some("cfg"));
        assert_eq!(n.split, "validation");
        assert_eq!(n.with_split("train").to_string(), "org/ds/cfg/train");
        assert_eq!(n.with_split("train").instruction, None);
    }

    #[test]
    fn bounds_follow_hf_grammar_with_underscores() {
        let p = part("train[1_000:-100_000]");
        assert_eq!(
            (p.from, p.to, p.percent),
            (Some(1000), Some(-100_000), false)
        );
        let p = part("train[:]");
        assert_eq!((p.from, p.to), (None, None));
        let p = part("train");
        assert_eq!((p.from, p.to), (None, None));
        let p = part("validation.clean[-5:]");
        assert_eq!((p.split.as_str(), p.from), ("validation.clean", Some(-5)));
        // One `%` makes both bounds percentages, as in HF.
        let p = part("train[10:20%]");
        assert_eq!((p.from, p.to, p.percent), (Some(10), Some(20), true));
        assert_eq!(abs("train[10:20%]", 100), 10..20);
        assert_eq!(
            part("train[:33%](pct1_dropremainder)").rounding,
            Rounding::Pct1DropRemainder
        );
        assert_eq!(part("train[:33%](closest)").rounding, Rounding::Closest);
    }

    #[test]
    fn malformed_parts_are_errors_that_say_why() {
        for (s, why) in [
            ("train[5]", "needs a colon"),
            ("train[a:]", "bound `a`"),
            ("train[:_5]", "bound `_5`"),
            ("train[:5_]", "bound `5_`"),
            ("train[:1__0]", "bound `1__0`"),
            ("train[:--5]", "bound `--5`"),
            ("train[:5%%]", "bound `5%%`"),
            ("train[:99999999999999999999]", "not an integer"),
            ("train[1:2:3]", "bound `2:3`"),
            ("[1:2]", "split name"),
            ("train]", "without `[`"),
            ("tr ain[1:2]", "split name"),
            ("train[:5](fast)", "unknown rounding `fast`"),
            ("train[:5](closest)", "only applies to percent"),
            ("train[:101%]", "between -100% and 100%"),
            ("train[-101%:]", "between -100% and 100%"),
            ("train[10:5]", "start (10) is after the end (5)"),
            ("train[-5:-10]", "start (-5) is after the end (-10)"),
            ("train[50%:10%]", "start (50) is after the end (10)"),
        ] {
            let e = SplitSlice::parse(s).unwrap_err();
            assert!(e.contains(why) && e.contains(s), "{s}: {e}");
        }
    }

    #[test]
    fn malformed_instructions_name_the_full_name() {
        for name in [
            "mem/raw/train[5]",
            "mem/raw/train[:5]+",
            "mem/raw/train[+5:]",
            "mem/raw/train[:1%]+test[:1%](pct1_dropremainder)",
            "mem/raw/train[10:5]",
        ] {
            let e = FullName::parse(name).unwrap_err().to_string();
            assert!(e.contains(&format!("full_name `{name}`")), "{e}");
        }
    }

    #[test]
    fn percent_rounds_half_to_even() {
        // The literal examples: 50% of 5, 10% of 15 and 10% of 25 are all 2.
        assert_eq!(abs("train[:50%]", 5), 0..2);
        assert_eq!(abs("train[:10%]", 15), 0..2);
        assert_eq!(abs("train[:10%]", 25), 0..2);
        assert_eq!(abs("train[50%:]", 5), 2..5);
        // Not a tie: nearest.
        assert_eq!(abs("train[:10%]", 16), 0..2); // 1.6
        assert_eq!(abs("train[:10%]", 14), 0..1); // 1.4
        assert_eq!(abs("train[:10%]", 35), 0..4); // 3.5 -> 4
                                                  // Negative percentages round half to even too (round(-2.5) = -2):
                                                  // -10% of 25 -> -2 -> 23.
        assert_eq!(abs("train[-10%:]", 25), 23..25);
        assert_eq!(abs("train[:-10%]", 25), 0..23);
        assert_eq!(abs("train[:100%]", 7), 0..7);
        assert_eq!(abs("train[-100%:]", 7), 0..7);
        assert_eq!(round_half_even(-250, 100), -2);
        assert_eq!(round_half_even(-350, 100), -4);
        assert_eq!(round_half_even(-251, 100), -3);
        // pct1_dropremainder: b * trunc(n / 100).
        assert_eq!(abs("train[:33%](pct1_dropremainder)", 250), 0..66);
        assert_eq!(abs("train[-10%:](pct1_dropremainder)", 250), 230..250);
        let e = part("train[:10%](pct1_dropremainder)")
            .absolute(99)
            .unwrap_err();
        assert!(e.contains("at least 100 rows"), "{e}");
    }

    #[test]
    fn negative_bounds_count_from_the_end_and_everything_clamps() {
        assert_eq!(abs("train[:-10]", 60), 0..50);
        assert_eq!(abs("train[-10:]", 60), 50..60);
        assert_eq!(abs("train[-100:]", 60), 0..60); // max(n + b, 0)
        assert_eq!(abs("train[:-100]", 60), 0..0);
        assert_eq!(abs("train[10:100]", 60), 10..60); // clamped to n
        assert_eq!(abs("train[100:]", 60), 60..60);
        assert_eq!(abs("train[-5:58]", 60), 55..58);
        assert_eq!(abs("train", 60), 0..60);
        assert_eq!(abs("train[:]", 0), 0..0);
        // `[:-k]` and `[-k:]` are disjoint and cover the split, for any n.
        for n in 0..40 {
            for k in 0..45 {
                let (a, b) = (
                    abs(&format!("train[:-{k}]"), n),
                    abs(&format!("train[-{k}:]"), n),
                );
                assert_eq!(a.start, 0);
                assert_eq!(a.end, b.start, "n={n} k={k}");
                assert_eq!(b.end, n);
            }
        }
    }

    #[test]
    fn mixed_sign_reversal_is_an_error_at_resolution() {
        // -5 of 20 is 15, after 10.
        let p = part("train[-5:10]");
        assert_eq!(p.absolute(12).unwrap(), 7..10);
        let e = p.absolute(20).unwrap_err();
        assert!(
            e.contains("train[-5:10]") && e.contains("15..10") && e.contains("20 rows"),
            "{e}"
        );
    }

    #[test]
    fn plus_concatenates_parts_in_order() {
        let i = SplitInstruction::parse("train[:5] + test[-2:]+train[50%:]").unwrap();
        let parts: Vec<(&str, Option<i64>, Option<i64>, bool)> = i
            .parts()
            .iter()
            .map(|p| (p.split.as_str(), p.from, p.to, p.percent))
            .collect();
        assert_eq!(
            parts,
            [
                ("train", None, Some(5), false),
                ("test", Some(-2), None, false),
                ("train", Some(50), None, true)
            ]
        );
        assert_eq!(i.as_str(), "train[:5] + test[-2:]+train[50%:]");
        let n = FullName::parse("mem/raw/train[:5]+test").unwrap();
        assert_eq!(n.split, "train");
        assert_eq!(n.split_segment(), "train[:5]+test");
        for bad in ["train[:5]+", "+train", "train[:5]++test"] {
            assert!(SplitInstruction::parse(bad).is_err(), "{bad}");
        }
    }

    #[test]
    fn needs_len_only_for_percent_or_negative_bounds() {
        for (s, needs) in [
            ("train[:10]", false),
            ("train[10:]", false),
            ("train[10:20]", false),
            ("train[:]", false),
            ("train[:-10]", true),
            ("train[-10:]", true),
            ("train[:10%]", true),
        ] {
            assert_eq!(part(s).needs_len(), needs, "{s}");
        }
    }
}
