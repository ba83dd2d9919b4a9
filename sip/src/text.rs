//! Small text helpers over SIP header values (pure).

use rsipstack::sip::Headers;

/// All values of header `name` (case-insensitive; compact forms are already
/// expanded by the parser), in order. A header line holding a comma list
/// stays one value.
pub(crate) fn values(headers: &Headers, name: &str) -> Vec<String> {
    headers
        .iter()
        .filter_map(|h| {
            let line = h.to_string();
            let (n, v) = line.split_once(':')?;
            n.trim()
                .eq_ignore_ascii_case(name)
                .then(|| v.trim().to_string())
        })
        .collect()
}

/// The first value of header `name`.
pub(crate) fn value(headers: &Headers, name: &str) -> Option<String> {
    values(headers, name).into_iter().next()
}

/// Splits a header value at commas outside `<…>` and quotes.
pub(crate) fn split_list(value: &str) -> Vec<String> {
    let mut out = Vec::new();
    let mut depth = 0i32;
    let mut quoted = false;
    let mut cur = String::new();
    for c in value.chars() {
        match c {
            '"' => quoted = !quoted,
            '<' if !quoted => depth += 1,
            '>' if !quoted => depth -= 1,
            ',' if !quoted && depth <= 0 => {
                if !cur.trim().is_empty() {
                    out.push(cur.trim().to_string());
                }
                cur.clear();
                continue;
            }
            _ => {}
        }
        cur.push(c);
    }
    if !cur.trim().is_empty() {
        out.push(cur.trim().to_string());
    }
    out
}

/// The `tag` parameter of a From/To value.
pub(crate) fn tag(value: &str) -> Option<String> {
    let params = match value.rfind('>') {
        Some(i) => &value[i + 1..],
        None => value,
    };
    params.split(';').skip(1).find_map(|p| {
        let (k, v) = p.split_once('=')?;
        k.trim()
            .eq_ignore_ascii_case("tag")
            .then(|| v.trim().to_string())
    })
}

/// The name-addr or addr-spec part of a From/To/Contact value, without its
/// header parameters (e.g. `"Bob" <sip:bob@x>;tag=1` → `"Bob" <sip:bob@x>`).
pub(crate) fn without_params(value: &str) -> String {
    match value.rfind('>') {
        Some(i) => value[..=i].trim().to_string(),
        None => value.split(';').next().unwrap_or("").trim().to_string(),
    }
}

/// The URI inside a name-addr (`<sip:x>` → `sip:x`), or an addr-spec without
/// header parameters.
pub(crate) fn uri(value: &str) -> String {
    match (value.find('<'), value.find('>')) {
        (Some(a), Some(b)) if a < b => value[a + 1..b].trim().to_string(),
        _ => value.split(';').next().unwrap_or("").trim().to_string(),
    }
}

/// The user part of a SIP URI (`sip:+1555@host;user=phone` → `+1555`).
pub(crate) fn user(uri: &str) -> String {
    let rest = uri
        .trim()
        .trim_start_matches("sips:")
        .trim_start_matches("sip:")
        .trim_start_matches("tel:");
    match rest.split_once('@') {
        Some((u, _)) => u.split(';').next().unwrap_or("").to_string(),
        None => rest.split([';', '?']).next().unwrap_or("").to_string(),
    }
}

/// A header parameter such as `expires=600` of a Contact value.
pub(crate) fn param(value: &str, name: &str) -> Option<String> {
    let params = match value.rfind('>') {
        Some(i) => &value[i + 1..],
        None => value,
    };
    params.split(';').skip(1).find_map(|p| {
        let (k, v) = p.split_once('=')?;
        k.trim()
            .eq_ignore_ascii_case(name)
            .then(|| v.trim().to_string())
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn helpers() {
        assert_eq!(
            tag("\"A\" <sip:a@x;tag=no>;tag=abc").as_deref(),
            Some("abc")
        );
        assert_eq!(tag("<sip:a@x>"), None);
        assert_eq!(uri("\"A, B\" <sip:a@x;lr>;expires=3"), "sip:a@x;lr");
        assert_eq!(without_params("<sip:a@x>;tag=1"), "<sip:a@x>");
        assert_eq!(user("sip:+1555@h;user=phone"), "+1555");
        assert_eq!(user("tel:+1555;x=y"), "+1555");
        assert_eq!(
            split_list("<sip:a,b@x;lr>, \"x,y\" <sip:c@y>"),
            vec!["<sip:a,b@x;lr>", "\"x,y\" <sip:c@y>"]
        );
        assert_eq!(
            param("<sip:a@x>;expires=60", "expires").as_deref(),
            Some("60")
        );
    }
}
