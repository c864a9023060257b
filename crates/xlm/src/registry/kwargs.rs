use super::ProcessError;

/// Keyword arguments of a named function: a JSON object.
pub type Kwargs = serde_json::Map<String, serde_json::Value>;

fn bad(function: &str, kwarg: &str, reason: &str) -> ProcessError {
    ProcessError::BadKwarg {
        function: function.into(),
        kwarg: kwarg.into(),
        reason: reason.into(),
    }
}

/// Optional non-negative integer kwarg.
pub(crate) fn opt_usize(
    kw: &Kwargs,
    function: &str,
    key: &str,
) -> Result<Option<usize>, ProcessError> {
    match kw.get(key) {
        None | Some(serde_json::Value::Null) => Ok(None),
        Some(v) => v.as_u64().map(|x| Some(x as usize)).ok_or_else(|| {
            bad(
                function,
                key,
                &format!("expected a non-negative integer, got {v}"),
            )
        }),
    }
}

/// Optional boolean kwarg with a default.
pub(crate) fn bool_or(
    kw: &Kwargs,
    function: &str,
    key: &str,
    default: bool,
) -> Result<bool, ProcessError> {
    match kw.get(key) {
        None | Some(serde_json::Value::Null) => Ok(default),
        Some(v) => v
            .as_bool()
            .ok_or_else(|| bad(function, key, &format!("expected true or false, got {v}"))),
    }
}

/// Optional string kwarg.
pub(crate) fn opt_str<'a>(
    kw: &'a Kwargs,
    function: &str,
    key: &str,
) -> Result<Option<&'a str>, ProcessError> {
    match kw.get(key) {
        None | Some(serde_json::Value::Null) => Ok(None),
        Some(v) => v
            .as_str()
            .map(Some)
            .ok_or_else(|| bad(function, key, &format!("expected a string, got {v}"))),
    }
}

/// Largest block size a packer or padding collator accepts (2^24 tokens):
/// far past any model's context, small enough that a batch's size cannot
/// overflow.
pub const MAX_BLOCK_SIZE: usize = 1 << 24;

/// `block_size` from the kwargs, else from setup's block_size.
pub(crate) fn block_size(
    kw: &Kwargs,
    function: &str,
    ctx_block: Option<usize>,
) -> Result<usize, ProcessError> {
    let b = opt_usize(kw, function, "block_size")?
        .or(ctx_block)
        .ok_or_else(|| {
            bad(
                function,
                "block_size",
                "not given, and setup was not given a block_size either",
            )
        })?;
    if b == 0 || b > MAX_BLOCK_SIZE {
        return Err(bad(
            function,
            "block_size",
            "must be between 1 and 16777216 tokens",
        ));
    }
    Ok(b)
}
