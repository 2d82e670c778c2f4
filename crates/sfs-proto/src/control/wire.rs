//! The field codecs that the message declarations name, so that each message
//! declares its fields once and its encoder, decoder and `Debug` follow from them.
//!
//! A field is declared as `name: Type = kind`, where `kind` is one of:
//!
//! | kind               | Rust type    | on the wire                                 |
//! |--------------------|--------------|---------------------------------------------|
//! | `str(max, label)`  | `String`     | `u16` length, UTF-8, at most `max` bytes    |
//! | `secret(max, label)` | `String`   | as `str`; never shown by `Debug`            |
//! | `u16` `u32` `u64` `i64` | integers | big-endian                                 |
//! | `bool(label)`      | `bool`       | one byte, 0 or 1                            |
//! | `rights`           | `Rights`     | one byte, no unknown bits                   |
//! | `code`             | `ErrorCode`  | `u16`                                       |
//! | `sha256`           | `[u8; 32]`   | 32 bytes                                    |
//!
//! `label` names the field in errors ("path is longer than its limit").

/// One field's encoder, decoder or `Debug` line, by codec kind.
macro_rules! wire_field {
    (@put $out:ident, $v:ident, str($max:expr, $label:expr)) => {
        $crate::codec::put_string($out, $v, $max, $label)?
    };
    (@put $out:ident, $v:ident, secret($max:expr, $label:expr)) => {
        $crate::codec::put_string($out, $v, $max, $label)?
    };
    (@put $out:ident, $v:ident, u16) => {
        $crate::codec::put_u16($out, *$v)
    };
    (@put $out:ident, $v:ident, u32) => {
        $crate::codec::put_u32($out, *$v)
    };
    (@put $out:ident, $v:ident, u64) => {
        $crate::codec::put_u64($out, *$v)
    };
    (@put $out:ident, $v:ident, i64) => {
        $crate::codec::put_i64($out, *$v)
    };
    (@put $out:ident, $v:ident, bool($label:expr)) => {
        $crate::codec::put_bool($out, *$v)
    };
    (@put $out:ident, $v:ident, rights) => {
        $crate::codec::put_u8($out, $v.bits())
    };
    (@put $out:ident, $v:ident, code) => {
        $crate::codec::put_u16($out, $v.0)
    };
    (@put $out:ident, $v:ident, sha256) => {
        $out.extend_from_slice($v)
    };

    (@get $r:ident, str($max:expr, $label:expr)) => {
        $r.string($max, $label)?
    };
    (@get $r:ident, secret($max:expr, $label:expr)) => {
        $r.string($max, $label)?
    };
    (@get $r:ident, u16) => {
        $r.u16()?
    };
    (@get $r:ident, u32) => {
        $r.u32()?
    };
    (@get $r:ident, u64) => {
        $r.u64()?
    };
    (@get $r:ident, i64) => {
        $r.i64()?
    };
    (@get $r:ident, bool($label:expr)) => {
        $r.bool($label)?
    };
    (@get $r:ident, rights) => {
        $crate::control::Rights::from_bits($r.u8()?)
            .ok_or($crate::codec::DecodeError::InvalidValue("rights"))?
    };
    (@get $r:ident, code) => {
        $crate::control::ErrorCode($r.u16()?)
    };
    (@get $r:ident, sha256) => {
        $r.array()?
    };

    // `Debug`: a secret is left out, and the caller ends with `..` to say so.
    (@debug $d:ident, $redacted:ident, $v:ident, secret($($arg:tt)*)) => {
        $redacted = true
    };
    (@debug $d:ident, $redacted:ident, $v:ident, $($kind:tt)*) => {
        $d.field(stringify!($v), $v)
    };
}
pub(crate) use wire_field;
