//! XEP-0115 entity capabilities.
//!
//! [`DiscoInfo`] holds what a `disco#info` result announces (identities,
//! features, XEP-0128 extension forms); [`DiscoInfo::ver`] computes the
//! `ver` attribute of the `<c/>` element as in
//! [XEP-0115 §5.1](https://xmpp.org/extensions/xep-0115.html#ver-gen)
//! (SHA-1, base64). Clients such as Conversations drop a disco#info result
//! whose hash does not match the advertised `ver`, so both come from the same
//! [`DiscoInfo`].

use base64::Engine as _;
use minidom::{Element, ElementBuilder};
use sha1::{Digest, Sha1};

use crate::error::Error;

/// The XEP-0115 namespace, also announced as a feature.
pub const NS_CAPS: &str = "http://jabber.org/protocol/caps";
/// The XEP-0030 disco#info namespace.
pub const NS_DISCO_INFO: &str = "http://jabber.org/protocol/disco#info";
/// The XEP-0030 disco#items namespace.
pub const NS_DISCO_ITEMS: &str = "http://jabber.org/protocol/disco#items";
/// The XEP-0004 data forms namespace.
pub const NS_DATA_FORMS: &str = "jabber:x:data";
const NS_XML: &str = "http://www.w3.org/XML/1998/namespace";

/// A service discovery identity
/// ([XEP-0030 §3.1](https://xmpp.org/extensions/xep-0030.html#info-basic)).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Identity {
    /// The category, e.g. `client` or `gateway`.
    pub category: String,
    /// The type within the category, e.g. `phone` or `pstn`.
    pub kind: String,
    /// The `xml:lang` of the name, if any.
    pub lang: Option<String>,
    /// The human-readable name, if any.
    pub name: Option<String>,
}

impl Identity {
    /// An identity without language.
    pub fn new(category: &str, kind: &str, name: Option<&str>) -> Self {
        Self {
            category: category.to_owned(),
            kind: kind.to_owned(),
            lang: None,
            name: name.map(str::to_owned),
        }
    }
}

/// An XEP-0128 extension form: its `FORM_TYPE` and its other fields with
/// their values.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Form {
    /// The value of the hidden `FORM_TYPE` field.
    pub form_type: String,
    /// `(var, values)` of every other field.
    pub fields: Vec<(String, Vec<String>)>,
}

/// The content of a disco#info result.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct DiscoInfo {
    /// The identities.
    pub identities: Vec<Identity>,
    /// The feature `var`s.
    pub features: Vec<String>,
    /// XEP-0128 extension forms.
    pub forms: Vec<Form>,
}

impl DiscoInfo {
    /// The verification string S of
    /// [XEP-0115 §5.1](https://xmpp.org/extensions/xep-0115.html#ver-gen):
    /// identities, features and forms sorted by octets, each item followed
    /// by `<`.
    pub fn verification_string(&self) -> String {
        let mut s = String::new();
        let mut ids: Vec<String> = self
            .identities
            .iter()
            .map(|i| {
                format!(
                    "{}/{}/{}/{}<",
                    i.category,
                    i.kind,
                    i.lang.as_deref().unwrap_or(""),
                    i.name.as_deref().unwrap_or("")
                )
            })
            .collect();
        ids.sort();
        ids.iter().for_each(|i| s.push_str(i));
        let mut features: Vec<&str> = self.features.iter().map(String::as_str).collect();
        features.sort_unstable();
        for f in features {
            s.push_str(f);
            s.push('<');
        }
        let mut forms: Vec<&Form> = self.forms.iter().collect();
        forms.sort_by(|a, b| a.form_type.cmp(&b.form_type));
        for form in forms {
            s.push_str(&form.form_type);
            s.push('<');
            let mut fields: Vec<&(String, Vec<String>)> = form.fields.iter().collect();
            fields.sort_by(|a, b| a.0.cmp(&b.0));
            for (var, values) in fields {
                s.push_str(var);
                s.push('<');
                let mut values: Vec<&str> = values.iter().map(String::as_str).collect();
                values.sort_unstable();
                for v in values {
                    s.push_str(v);
                    s.push('<');
                }
            }
        }
        s
    }

    /// The `ver` attribute: base64 of the SHA-1 of
    /// [`Self::verification_string`]
    /// ([XEP-0115 §5.1](https://xmpp.org/extensions/xep-0115.html#ver-gen)).
    pub fn ver(&self) -> String {
        let digest = Sha1::digest(self.verification_string().as_bytes());
        base64::engine::general_purpose::STANDARD.encode(digest)
    }

    /// The `<query xmlns='http://jabber.org/protocol/disco#info'/>` payload
    /// of a disco#info result, with `node` when given. Extension forms are
    /// written as `jabber:x:data` forms of type `result`.
    pub fn to_query(&self, node: Option<&str>) -> Element {
        let mut q = Element::builder("query", NS_DISCO_INFO);
        if let Some(node) = node {
            q = with_attr(q, "node", node);
        }
        for i in &self.identities {
            let mut e = Element::builder("identity", NS_DISCO_INFO);
            e = with_attr(e, "category", &i.category);
            e = with_attr(e, "type", &i.kind);
            if let Some(name) = &i.name {
                e = with_attr(e, "name", name);
            }
            let mut e = e.build();
            if let (Some(lang), Ok(n)) = (&i.lang, rxml::NcName::try_from("lang")) {
                e.set_attr(rxml::Namespace::from(NS_XML), n, lang.as_str());
            }
            q = q.append(e);
        }
        for f in &self.features {
            q = q.append(with_attr(Element::builder("feature", NS_DISCO_INFO), "var", f).build());
        }
        for form in &self.forms {
            let mut x = with_attr(Element::builder("x", NS_DATA_FORMS), "type", "result");
            let ft = with_attr(Element::builder("field", NS_DATA_FORMS), "var", "FORM_TYPE");
            let ft = with_attr(ft, "type", "hidden")
                .append(Element::builder("value", NS_DATA_FORMS).append(form.form_type.as_str()));
            x = x.append(ft.build());
            for (var, values) in &form.fields {
                let mut f = with_attr(Element::builder("field", NS_DATA_FORMS), "var", var);
                for v in values {
                    f = f.append(Element::builder("value", NS_DATA_FORMS).append(v.as_str()));
                }
                x = x.append(f.build());
            }
            q = q.append(x.build());
        }
        q.build()
    }

    /// Reads a disco#info `<query/>` element.
    ///
    /// # Errors
    /// [`Error::Malformed`] when `query` is not a disco#info query or an
    /// identity lacks `category`/`type`, a feature lacks `var`, or an
    /// extension form lacks `FORM_TYPE`.
    pub fn from_query(query: &Element) -> Result<Self, Error> {
        if !query.is("query", NS_DISCO_INFO) {
            return Err(Error::Malformed("not a disco#info query".into()));
        }
        let mut info = Self::default();
        for child in query.children() {
            if child.is("identity", NS_DISCO_INFO) {
                let (Some(category), Some(kind)) = (child.attr("category"), child.attr("type"))
                else {
                    return Err(Error::Malformed("identity without category or type".into()));
                };
                info.identities.push(Identity {
                    category: category.to_owned(),
                    kind: kind.to_owned(),
                    lang: child.attr_ns(NS_XML, "lang").map(str::to_owned),
                    name: child.attr("name").map(str::to_owned),
                });
            } else if child.is("feature", NS_DISCO_INFO) {
                let var = child
                    .attr("var")
                    .ok_or_else(|| Error::Malformed("feature without var".into()))?;
                info.features.push(var.to_owned());
            } else if child.is("x", NS_DATA_FORMS) {
                let mut form_type = None;
                let mut fields = Vec::new();
                for field in child.children().filter(|f| f.is("field", NS_DATA_FORMS)) {
                    let var = field.attr("var").unwrap_or_default().to_owned();
                    let values: Vec<String> = field
                        .children()
                        .filter(|v| v.is("value", NS_DATA_FORMS))
                        .map(Element::text)
                        .collect();
                    if var == "FORM_TYPE" {
                        form_type = values.into_iter().next();
                    } else {
                        fields.push((var, values));
                    }
                }
                let form_type = form_type
                    .ok_or_else(|| Error::Malformed("extension form without FORM_TYPE".into()))?;
                info.forms.push(Form { form_type, fields });
            }
        }
        Ok(info)
    }
}

/// The `<c xmlns='http://jabber.org/protocol/caps' hash='sha-1'/>` element
/// for presence
/// ([XEP-0115 §4](https://xmpp.org/extensions/xep-0115.html#protocol)).
pub fn caps_element(node: &str, ver: &str) -> Element {
    let c = Element::builder("c", NS_CAPS);
    let c = with_attr(c, "hash", "sha-1");
    let c = with_attr(c, "node", node);
    with_attr(c, "ver", ver).build()
}

/// Adds an unnamespaced attribute to a builder.
///
/// # Panics
/// If `name` is not a valid XML NCName (all callers pass literals).
pub(crate) fn with_attr(b: ElementBuilder, name: &str, value: &str) -> ElementBuilder {
    let name = rxml::NcName::try_from(name).expect("attribute names are valid NCNames");
    b.attr(name, value)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn parse(xml: &str) -> Element {
        xml.parse().expect("test xml parses")
    }

    /// XEP-0115 §5.2, the simple generation example.
    #[test]
    fn xep0115_simple_example() {
        let info = DiscoInfo::from_query(&parse(
            "<query xmlns='http://jabber.org/protocol/disco#info' node='http://code.google.com/p/exodus#QgayPKawpkPSDYmwT/WM94uAlu0='>\
               <identity category='client' name='Exodus 0.9.1' type='pc'/>\
               <feature var='http://jabber.org/protocol/caps'/>\
               <feature var='http://jabber.org/protocol/disco#info'/>\
               <feature var='http://jabber.org/protocol/disco#items'/>\
               <feature var='http://jabber.org/protocol/muc'/>\
             </query>",
        ))
        .unwrap();
        assert_eq!(
            info.verification_string(),
            "client/pc//Exodus 0.9.1<http://jabber.org/protocol/caps<http://jabber.org/protocol/disco#info<http://jabber.org/protocol/disco#items<http://jabber.org/protocol/muc<"
        );
        assert_eq!(info.ver(), "QgayPKawpkPSDYmwT/WM94uAlu0=");
    }

    /// XEP-0115 §5.3, the complex generation example (two languages, one
    /// extension form), with features and identities out of order.
    #[test]
    fn xep0115_complex_example() {
        let info = DiscoInfo::from_query(&parse(
            "<query xmlns='http://jabber.org/protocol/disco#info' node='http://psi-im.org#q07IKJEyjvHSyhy//CH0CxmKi8w='>\
               <identity xml:lang='en' category='client' name='Psi 0.11' type='pc'/>\
               <identity xml:lang='el' category='client' name='Ψ 0.11' type='pc'/>\
               <feature var='http://jabber.org/protocol/disco#items'/>\
               <feature var='http://jabber.org/protocol/caps'/>\
               <feature var='http://jabber.org/protocol/muc'/>\
               <feature var='http://jabber.org/protocol/disco#info'/>\
               <x xmlns='jabber:x:data' type='result'>\
                 <field var='FORM_TYPE' type='hidden'><value>urn:xmpp:dataforms:softwareinfo</value></field>\
                 <field var='ip_version'><value>ipv6</value><value>ipv4</value></field>\
                 <field var='os'><value>Mac</value></field>\
                 <field var='os_version'><value>10.5.1</value></field>\
                 <field var='software'><value>Psi</value></field>\
                 <field var='software_version'><value>0.11</value></field>\
               </x>\
             </query>",
        ))
        .unwrap();
        assert_eq!(
            info.verification_string(),
            "client/pc/el/Ψ 0.11<client/pc/en/Psi 0.11<http://jabber.org/protocol/caps<http://jabber.org/protocol/disco#info<http://jabber.org/protocol/disco#items<http://jabber.org/protocol/muc<urn:xmpp:dataforms:softwareinfo<ip_version<ipv4<ipv6<os<Mac<os_version<10.5.1<software<Psi<software_version<0.11<"
        );
        assert_eq!(info.ver(), "q07IKJEyjvHSyhy//CH0CxmKi8w=");
    }

    /// What we announce hashes the same after a serialize/parse round trip,
    /// so a client recomputing `ver` from our disco#info result agrees.
    #[test]
    fn round_trip_keeps_ver() {
        let info = DiscoInfo {
            identities: vec![Identity {
                category: "client".into(),
                kind: "pc".into(),
                lang: Some("en".into()),
                name: Some("Psi 0.11".into()),
            }],
            features: vec![
                "urn:xmpp:jingle:1".into(),
                "http://jabber.org/protocol/caps".into(),
            ],
            forms: vec![Form {
                form_type: "urn:xmpp:dataforms:softwareinfo".into(),
                fields: vec![("os".into(), vec!["Linux".into()])],
            }],
        };
        let query = info.to_query(Some("https://gw.example.com/caps#x"));
        let mut bytes = Vec::new();
        query.write_to(&mut bytes).unwrap();
        let back = DiscoInfo::from_query(&parse(std::str::from_utf8(&bytes).unwrap())).unwrap();
        assert_eq!(back, info);
        assert_eq!(back.ver(), info.ver());
        assert_eq!(query.attr("node"), Some("https://gw.example.com/caps#x"));
    }

    #[test]
    fn malformed_queries_are_errors() {
        assert!(DiscoInfo::from_query(&parse("<query xmlns='jabber:iq:roster'/>")).is_err());
        assert!(DiscoInfo::from_query(&parse(
            "<query xmlns='http://jabber.org/protocol/disco#info'><feature/></query>"
        ))
        .is_err());
        assert!(DiscoInfo::from_query(&parse(
            "<query xmlns='http://jabber.org/protocol/disco#info'><identity category='client'/></query>"
        ))
        .is_err());
    }

    #[test]
    fn caps_element_shape() {
        let c = caps_element("https://gw.example.com/caps", "abc=");
        assert!(c.is("c", NS_CAPS));
        assert_eq!(c.attr("hash"), Some("sha-1"));
        assert_eq!(c.attr("node"), Some("https://gw.example.com/caps"));
        assert_eq!(c.attr("ver"), Some("abc="));
    }
}
