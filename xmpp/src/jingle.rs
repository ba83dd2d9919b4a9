//! Jingle (XEP-0166/0167/0176/0320) parsing and serialization.
