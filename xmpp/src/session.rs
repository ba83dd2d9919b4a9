//! The sans-IO Jingle session state machine.
