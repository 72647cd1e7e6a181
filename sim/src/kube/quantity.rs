//! Resource quantities (`cpu: 2000m`, `memory: 1024Mi`) in the form the apiserver stores and
//! returns them. The real server decodes every `resource.Quantity` field of a built-in type
//! into Go's `Quantity` and encodes it back, so `2000m` is written `2` and `1024Mi` `1Gi`;
//! the deployment controller then hashes and compares templates in that form, and
//! `kubectl rollout undo` (which round-trips a ReplicaSet's template through Go) finds the
//! ReplicaSet it came from only if the Deployment held the same form.
//!
//! The rules follow github.com/kubernetes/kubernetes
//! `staging/src/k8s.io/apimachinery/pkg/api/resource/quantity.go` (`ParseQuantity`,
//! `CanonicalizeBytes`) and `suffix.go`, including their quirks: a string the parser's fast
//! path judges canonical is kept verbatim (`+100m`, `1.500`), and a DecimalSI value past `E`
//! loses its suffix. Which fields are quantities comes from the protobuf schema table
//! (`protobuf_schema.rs`), so every built-in kind is covered; custom resources are not
//! typed by the server and keep what they were sent.

use serde_json::Value;

use super::protobuf::{self, Kind, Message};

const QUANTITY: &str = "apimachinery.pkg.api.resource.Quantity";

/// Why a string is not a quantity; the messages are apimachinery's `ErrFormatWrong` and
/// `ErrSuffix` (its `ErrNumeric` needs a number part that fits neither int64 nor `inf.Dec`,
/// which the split here never yields).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum QuantityError {
    /// Does not match `^([+-]?[0-9.]+)([eEinumkKMGTP]*[-+]?[0-9]*)$`.
    Format,
    /// Matches the pattern but the suffix is unknown (`192i`, `2iK`).
    Suffix,
}

impl std::fmt::Display for QuantityError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(match self {
            QuantityError::Format => {
                "quantities must match the regular expression '^([+-]?[0-9.]+)([eEinumkKMGTP]*[-+]?[0-9]*)$'"
            }
            QuantityError::Suffix => "unable to parse quantity's suffix",
        })
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Format {
    DecimalSi,
    BinarySi,
    DecimalExponent,
}

/// The pieces `parseQuantityString` splits a quantity into.
struct Pieces<'a> {
    negative: bool,
    /// Integer digits without leading zeros ("0" when there are none).
    num: &'a str,
    /// Fraction digits.
    denom: &'a str,
    suffix: &'a str,
}

fn split(s: &str) -> Result<Pieces<'_>, QuantityError> {
    let b = s.as_bytes();
    let mut pos = 0;
    let mut negative = false;
    match b.first() {
        Some(b'-') => {
            negative = true;
            pos = 1;
        }
        Some(b'+') => pos = 1,
        _ => {}
    }
    while pos < b.len() && b[pos] == b'0' {
        pos += 1;
    }
    let zero = Pieces {
        negative,
        num: "0",
        denom: "",
        suffix: "",
    };
    if pos == b.len() {
        return Ok(zero);
    }
    let digits_from = |from: usize| {
        b[from..]
            .iter()
            .position(|c| !c.is_ascii_digit())
            .map_or(b.len(), |n| from + n)
    };
    let end = digits_from(pos);
    let num = if end == pos { "0" } else { &s[pos..end] };
    pos = end;
    let mut denom = "";
    if pos < b.len() && b[pos] == b'.' {
        let end = digits_from(pos + 1);
        denom = &s[pos + 1..end];
        pos = end;
    }
    let suffix_start = pos;
    while pos < b.len() && b"eEinumkKMGTP".contains(&b[pos]) {
        pos += 1;
    }
    if pos < b.len() && (b[pos] == b'-' || b[pos] == b'+') {
        pos += 1;
    }
    if digits_from(pos) != b.len() {
        return Err(QuantityError::Format);
    }
    Ok(Pieces {
        num,
        denom,
        suffix: &s[suffix_start..],
        ..zero
    })
}

/// `(base, exponent, format)` of a suffix (`suffix.go` `interpret`).
fn interpret(suffix: &str) -> Option<(u32, i32, Format)> {
    const DECIMAL: &[(&str, i32)] = &[
        ("", 0),
        ("n", -9),
        ("u", -6),
        ("m", -3),
        ("k", 3),
        ("M", 6),
        ("G", 9),
        ("T", 12),
        ("P", 15),
        ("E", 18),
    ];
    const BINARY: &[&str] = &["Ki", "Mi", "Gi", "Ti", "Pi", "Ei"];
    if let Some((_, e)) = DECIMAL.iter().find(|(s, _)| *s == suffix) {
        return Some((10, *e, Format::DecimalSi));
    }
    if let Some(i) = BINARY.iter().position(|s| *s == suffix) {
        return Some((2, 10 * (i as i32 + 1), Format::BinarySi));
    }
    let rest = suffix
        .strip_prefix('e')
        .or_else(|| suffix.strip_prefix('E'))
        .filter(|r| !r.is_empty())?;
    let e: i64 = rest.parse().ok()?;
    // Go truncates to int32.
    Some((10, e as i32, Format::DecimalExponent))
}

/// An exact non-negative value `mantissa × 10^exp10`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
struct Decimal {
    mantissa: u128,
    exp10: i32,
}

impl Decimal {
    fn normalized(mut self) -> Decimal {
        if self.mantissa == 0 {
            return Decimal {
                mantissa: 0,
                exp10: 0,
            };
        }
        while self.mantissa.is_multiple_of(10) {
            self.mantissa /= 10;
            self.exp10 += 1;
        }
        self
    }

    /// The value as an integer, None when it has a fraction or does not fit.
    fn integer(self) -> Option<u128> {
        let d = self.normalized();
        if d.exp10 < 0 {
            return None;
        }
        10u128
            .checked_pow(d.exp10.unsigned_abs())
            .and_then(|p| d.mantissa.checked_mul(p))
    }

    /// Whether the value is below `limit`.
    fn less_than(self, limit: u128) -> bool {
        let d = self.normalized();
        if d.exp10 >= 0 {
            return d.integer().is_some_and(|v| v < limit);
        }
        match 10u128.checked_pow(d.exp10.unsigned_abs()) {
            Some(p) => d.mantissa / p < limit,
            None => true,
        }
    }
}

/// The form the apiserver stores a quantity in (what `kubectl get -o json` shows).
///
/// A value too large for 128 bits of mantissa is returned as sent (Go would still
/// canonicalize it; no resource in practice comes near).
pub fn canonical(raw: &str) -> Result<String, QuantityError> {
    let s = raw.trim();
    if s.is_empty() {
        return Err(QuantityError::Format);
    }
    if s == "0" {
        return Ok(s.to_string());
    }
    let p = split(s)?;
    let (base, exponent, mut format) = interpret(p.suffix).ok_or(QuantityError::Suffix)?;
    let digits = format!("{}{}", p.num, p.denom);
    let denom_len = p.denom.len() as i32;
    if fast_path_keeps_string(&p, &digits, base, exponent, format) {
        return Ok(s.to_string());
    }
    let Ok(mut mantissa) = digits.parse::<u128>() else {
        return Ok(s.to_string());
    };
    let mut exp10 = -denom_len;
    if base == 10 {
        exp10 += exponent;
    } else {
        match mantissa.checked_mul(1u128 << exponent) {
            Some(m) => mantissa = m,
            None => return Ok(s.to_string()),
        }
    }
    // Non-zero values below a nano round up (away from zero) to the next nano.
    if exp10 < -9 && mantissa != 0 {
        let p10 = 10u128.checked_pow((-9 - exp10).unsigned_abs());
        mantissa = match p10 {
            Some(p10) => mantissa.div_ceil(p10),
            None => 1,
        };
        exp10 = -9;
    }
    let mut amount = Decimal { mantissa, exp10 };
    if format == Format::BinarySi {
        let max = i64::MAX as u128;
        if !amount.less_than(max) && amount.normalized().integer() != Some(max) {
            amount = Decimal {
                mantissa: max,
                exp10: 0,
            };
        }
        if amount.mantissa != 0 && amount.less_than(1) {
            format = Format::DecimalSi;
        }
    }
    Ok(print(p.negative, amount, format).unwrap_or_else(|| s.to_string()))
}

/// `ParseQuantity` keeps the caller's string when its int64 fast path applies and the
/// number already looks canonical.
fn fast_path_keeps_string(
    p: &Pieces<'_>,
    digits: &str,
    base: u32,
    exponent: i32,
    format: Format,
) -> bool {
    let digits_len = (p.num.len() + p.denom.len()) as i32;
    let (precision, mut scale, multiplier) = match format {
        Format::DecimalSi | Format::DecimalExponent => (18 - digits_len, exponent, 1i64),
        Format::BinarySi if exponent >= 0 && p.denom.is_empty() => {
            let p = 15 - p.num.len() as i32 - (exponent as f32 * 3.0 / 10.0) as i32 - 1;
            (p, 0, 1i64.checked_shl(exponent as u32).unwrap_or(0))
        }
        Format::BinarySi => (-1, 0, 1),
    };
    if precision < 0 {
        return false;
    }
    scale -= p.denom.len() as i32;
    if scale < -9 {
        return false;
    }
    let Ok(value) = digits.parse::<i64>() else {
        return false;
    };
    if value.checked_mul(multiplier).is_none() {
        return false;
    }
    if base == 2 {
        exponent % 10 == 0 && value & 0x07 != 0
    } else {
        scale % 3 == 0 && !digits.ends_with("000") && !digits.starts_with('0')
    }
}

/// `CanonicalizeBytes`: None when the value does not fit the arithmetic here.
fn print(negative: bool, amount: Decimal, format: Format) -> Option<String> {
    let amount = amount.normalized();
    if amount.mantissa == 0 {
        return Some("0".into());
    }
    let sign = if negative { "-" } else { "" };
    let format = match format {
        Format::BinarySi if amount.less_than(1024) || amount.integer().is_none() => {
            Format::DecimalSi
        }
        f => f,
    };
    if format == Format::BinarySi {
        let mut n = amount.integer()?;
        let mut times = 0;
        while n.is_multiple_of(1024) && times < 6 {
            n /= 1024;
            times += 1;
        }
        let suffix = ["", "Ki", "Mi", "Gi", "Ti", "Pi", "Ei"][times];
        return Some(format!("{sign}{n}{suffix}"));
    }
    let (mut mantissa, mut exp10) = (amount.mantissa, amount.exp10);
    while exp10.rem_euclid(3) != 0 {
        mantissa = mantissa.checked_mul(10)?;
        exp10 -= 1;
    }
    let suffix = match format {
        Format::DecimalExponent if exp10 == 0 => String::new(),
        Format::DecimalExponent => format!("e{exp10}"),
        // Go finds no DecimalSI suffix beyond E (10^18) and prints none.
        _ => match exp10 {
            -9 => "n",
            -6 => "u",
            -3 => "m",
            3 => "k",
            6 => "M",
            9 => "G",
            12 => "T",
            15 => "P",
            18 => "E",
            _ => "",
        }
        .to_string(),
    };
    Some(format!("{sign}{mantissa}{suffix}"))
}

/// Rewrites every `resource.Quantity` field of a built-in object (container resources,
/// overhead, emptyDir size limits, quotas, node capacity, …) into its stored form. Objects
/// without a schema (custom resources) are left alone. Stops at the first value that is not
/// a quantity, as the apiserver's decoder does.
pub fn canonicalize_object(
    api_version: &str,
    kind: &str,
    obj: &mut Value,
) -> Result<(), QuantityError> {
    match protobuf::message_for(api_version, kind) {
        Some(message) => walk(message, obj),
        None => Ok(()),
    }
}

fn walk(message: &Message, v: &mut Value) -> Result<(), QuantityError> {
    for field in message.fields {
        if field.inline {
            if let Some(inner) = message_of(&field.kind) {
                walk(inner, v)?;
            }
            continue;
        }
        let Some(x) = v.get_mut(field.json) else {
            continue;
        };
        match (field.repeated, x) {
            (true, Value::Array(items)) => {
                for item in items {
                    visit(&field.kind, item)?;
                }
            }
            (true, _) => {}
            (false, x) => visit(&field.kind, x)?,
        }
    }
    Ok(())
}

fn message_of(kind: &Kind) -> Option<&'static Message> {
    match kind {
        Kind::Message(name) if *name != QUANTITY => protobuf::lookup(name),
        _ => None,
    }
}

fn visit(kind: &Kind, v: &mut Value) -> Result<(), QuantityError> {
    match kind {
        Kind::Message(QUANTITY) => {
            let text = match v {
                Value::String(s) => s.clone(),
                // A JSON number is a quantity too (`cpu: 2` in YAML).
                Value::Number(n) => n.to_string(),
                _ => return Ok(()),
            };
            *v = Value::String(canonical(&text)?);
            Ok(())
        }
        Kind::Map(inner) => match v {
            Value::Object(m) => m.values_mut().try_for_each(|x| visit(inner, x)),
            _ => Ok(()),
        },
        k => match (message_of(k), v.is_object()) {
            (Some(m), true) => walk(m, v),
            _ => Ok(()),
        },
    }
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]

    use serde_json::json;

    use super::*;

    fn c(s: &str) -> String {
        canonical(s).unwrap()
    }

    #[test]
    fn whole_milli_values_become_units() {
        assert_eq!(c("2000m"), "2");
        assert_eq!(c("1500m"), "1500m");
        assert_eq!(c("100m"), "100m");
    }

    #[test]
    fn fractions_become_milli_or_smaller() {
        assert_eq!(c("0.5"), "500m");
        assert_eq!(c("0.1"), "100m");
        assert_eq!(c("10.5"), "10500m");
        assert_eq!(c("0.000001"), "1u");
    }

    #[test]
    fn thousands_take_the_next_decimal_suffix() {
        assert_eq!(c("1000"), "1k");
        assert_eq!(c("1500"), "1500");
        assert_eq!(c("2000k"), "2M");
        assert_eq!(c("5000000000"), "5G");
    }

    #[test]
    fn binary_values_take_the_largest_exact_binary_suffix() {
        assert_eq!(c("1024Mi"), "1Gi");
        assert_eq!(c("1.5Gi"), "1536Mi");
        assert_eq!(c("128Mi"), "128Mi");
        assert_eq!(c("2048Ki"), "2Mi");
        assert_eq!(c("1.5Ki"), "1536");
    }

    #[test]
    fn binary_values_below_1024_or_fractional_print_as_decimal() {
        assert_eq!(c("0.5Ki"), "512");
        assert_eq!(c("0.5Mi"), "512Ki");
        assert_eq!(c("1.0001Ki"), "1024102400u");
    }

    #[test]
    fn strings_the_fast_path_judges_canonical_are_kept_verbatim() {
        assert_eq!(c("+100m"), "+100m");
        assert_eq!(c("1.500"), "1.500");
        assert_eq!(c("12Mi"), "12Mi");
        assert_eq!(c("-5"), "-5");
        assert_eq!(c(" 2 "), "2");
    }

    #[test]
    fn zero_in_any_spelling_is_0() {
        for z in ["0", "000", "0m", "0Mi", "-0", "0.0", "0e3"] {
            assert_eq!(c(z), "0", "{z}");
        }
    }

    #[test]
    fn exponent_suffixes_stay_exponents_in_multiples_of_three() {
        assert_eq!(c("1e3"), "1e3");
        assert_eq!(c("1e4"), "10e3");
        // Already canonical by the fast path's test, so kept as written.
        assert_eq!(c("1E6"), "1E6");
        assert_eq!(c("12e-1"), "1200e-3");
    }

    #[test]
    fn values_below_a_nano_round_up_to_one() {
        assert_eq!(c("0.0000000001"), "1n");
        assert_eq!(c("1.0000000001"), "1000000001n");
        assert_eq!(c("-0.0000000001"), "-1n");
    }

    #[test]
    fn negative_values_keep_their_sign() {
        assert_eq!(c("-2000m"), "-2");
        assert_eq!(c("-1024Mi"), "-1Gi");
    }

    #[test]
    fn malformed_quantities_are_rejected_with_apimachinery_messages() {
        for bad in ["", "abc", "1.2.3", "2 cpu", "1Mi2x", "1Mb"] {
            assert_eq!(canonical(bad), Err(QuantityError::Format), "{bad}");
        }
        for bad in ["192i", "1Mm", "2iK", "1e", "--1"] {
            assert_eq!(canonical(bad), Err(QuantityError::Suffix), "{bad}");
        }
        assert!(
            QuantityError::Format
                .to_string()
                .starts_with("quantities must match")
        );
    }

    #[test]
    fn container_resources_of_a_deployment_template_are_canonicalized() {
        let mut d = json!({"spec": {"template": {"spec": {
            "containers": [{"name": "a", "resources": {
                "requests": {"cpu": "2000m", "memory": "1024Mi"},
                "limits": {"cpu": 2, "memory": "1.5Gi"}}}],
            "initContainers": [{"name": "i", "resources": {"limits": {"cpu": "0.5"}}}],
            "volumes": [{"name": "v", "emptyDir": {"sizeLimit": "1000Mi"}}],
            "overhead": {"cpu": "1000m"}
        }}}});
        canonicalize_object("apps/v1", "Deployment", &mut d).unwrap();
        let spec = &d["spec"]["template"]["spec"];
        assert_eq!(
            spec["containers"][0]["resources"],
            json!({"requests": {"cpu": "2", "memory": "1Gi"}, "limits": {"cpu": "2", "memory": "1536Mi"}})
        );
        assert_eq!(
            spec["initContainers"][0]["resources"]["limits"]["cpu"],
            "500m"
        );
        assert_eq!(spec["volumes"][0]["emptyDir"]["sizeLimit"], "1000Mi");
        assert_eq!(spec["overhead"]["cpu"], "1");
    }

    #[test]
    fn node_status_and_quota_quantities_are_canonicalized() {
        let mut node = json!({"status": {"capacity": {"cpu": "4000m", "pods": "110"}}});
        canonicalize_object("v1", "Node", &mut node).unwrap();
        assert_eq!(
            node["status"]["capacity"],
            json!({"cpu": "4", "pods": "110"})
        );
        let mut quota = json!({"spec": {"hard": {"requests.memory": "2048Mi"}}});
        canonicalize_object("v1", "ResourceQuota", &mut quota).unwrap();
        assert_eq!(quota["spec"]["hard"]["requests.memory"], "2Gi");
    }

    #[test]
    fn strings_that_are_not_quantity_fields_are_untouched() {
        let mut cm = json!({"data": {"cpu": "2000m"}});
        canonicalize_object("v1", "ConfigMap", &mut cm).unwrap();
        assert_eq!(cm["data"]["cpu"], "2000m");
        let mut cr = json!({"spec": {"resources": {"limits": {"cpu": "2000m"}}}});
        canonicalize_object("example.com/v1", "Widget", &mut cr).unwrap();
        assert_eq!(cr["spec"]["resources"]["limits"]["cpu"], "2000m");
    }

    #[test]
    fn an_invalid_quantity_field_is_an_error() {
        let mut pod = json!({"spec": {"containers": [{"name": "a", "resources": {"limits": {"cpu": "two"}}}]}});
        assert_eq!(
            canonicalize_object("v1", "Pod", &mut pod),
            Err(QuantityError::Format)
        );
    }
}
