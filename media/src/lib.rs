//! The sans-IO media engine: demux (RFC 7983), DTLS-SRTP, RTP/RTCP, codecs.
#![forbid(unsafe_code)]
#![deny(missing_docs)]
