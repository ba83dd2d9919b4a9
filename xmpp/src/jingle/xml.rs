//! Small helpers over `minidom` shared by the Jingle, JMI and session code.

use minidom::rxml::{Namespace, NcName};
use minidom::Element;
use std::str::FromStr;

use crate::error::Error;

/// Sets attribute `name` (a static, valid NCName) to `value`.
pub(crate) fn set_attr(el: &mut Element, name: &'static str, value: impl Into<String>) {
    // The names passed here are string literals of attribute names from the
    // XEPs; they are valid NCNames, so this conversion cannot fail.
    if let Ok(name) = NcName::try_from(name) {
        el.set_attr(Namespace::NONE, name, value.into());
    }
}

/// Sets attribute `name` when `value` is `Some`.
pub(crate) fn set_opt(el: &mut Element, name: &'static str, value: Option<impl ToString>) {
    if let Some(v) = value {
        set_attr(el, name, v.to_string());
    }
}

/// A new element `name` in namespace `ns` with the given attributes.
pub(crate) fn elem(name: &str, ns: &str, attrs: &[(&'static str, &str)]) -> Element {
    let mut el = Element::bare(name, ns);
    for (k, v) in attrs {
        set_attr(&mut el, k, *v);
    }
    el
}

/// The attribute `name`, or a [`Error::Malformed`] naming the element.
pub(crate) fn required<'a>(el: &'a Element, name: &'static str) -> Result<&'a str, Error> {
    el.attr(name)
        .ok_or_else(|| Error::Malformed(format!("<{}/> lacks the '{}' attribute", el.name(), name)))
}

/// The attribute `name` parsed as a number; absent → `Ok(None)`, unparsable →
/// [`Error::Malformed`].
pub(crate) fn number<T: FromStr>(el: &Element, name: &'static str) -> Result<Option<T>, Error> {
    match el.attr(name) {
        None => Ok(None),
        Some(v) => v.trim().parse::<T>().map(Some).map_err(|_| {
            Error::Malformed(format!(
                "<{}/> attribute '{}' is not a number: {:?}",
                el.name(),
                name,
                truncate(v)
            ))
        }),
    }
}

/// The attribute `name` parsed as a number, or `None` when absent or
/// unparsable (for attributes where a bad value is harmless).
pub(crate) fn lenient_number<T: FromStr>(el: &Element, name: &'static str) -> Option<T> {
    el.attr(name).and_then(|v| v.trim().parse().ok())
}

/// Truncates a peer-supplied value for error messages.
pub(crate) fn truncate(v: &str) -> &str {
    match v.char_indices().nth(64) {
        Some((i, _)) => &v[..i],
        None => v,
    }
}
