//! XEP-0115 entity capabilities.
