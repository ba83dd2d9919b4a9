//! Presence, subscriptions and service discovery for number JIDs.
